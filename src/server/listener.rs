//! [`Server`]: the listening socket, the accept loop, one handler thread per connection, and
//! the graceful stop.
//!
//! Stopping is graceful and bounded; [`Server::run`] tells the steps.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ythread::{Executor, JoinHandle, YieldableThread};

use super::connection::{self, Settings};
use super::running::{RunningServer, ShutdownHandle};
use super::{POLL_INTERVAL, ServerConfig, protocol, sys};

/// How long [`Server::run`] lets in-flight requests finish after a stop unless told otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long cancelled handlers get to unwind before they are left behind.
const CANCEL_WAIT: Duration = Duration::from_secs(1);

/// A bound listening socket and the executor its handlers yield their work to.
///
/// ```
/// use ythread_suite::server::{Server, ServerConfig};
/// use ythread_suite::client::request_once;
/// use std::time::Duration;
///
/// let server = Server::bind(ServerConfig::default(), ythread::Executor::inline())?.spawn();
/// let reply = request_once(server.addr(), b"25000", Duration::from_secs(10))?;
/// assert_eq!(reply, "312512500");
/// server.shutdown()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    settings: Settings,
    executor: Executor,
    stop: ShutdownHandle,
    stop_on_signals: bool,
    grace: Duration,
}

/// A live connection as the accept loop tracks it.
struct Connection {
    handler: JoinHandle<()>,
    /// A second handle on the handler's socket, to shut it down from outside.
    socket: TcpStream,
}

impl Server {
    /// Validates `config` and binds its address. Nothing is accepted until [`Server::run`] or
    /// [`Server::spawn`].
    ///
    /// # Errors
    /// `InvalidInput` for a configuration that cannot work (a max n whose answer overflows, a
    /// zero idle timeout), or the OS error of binding (address in use, no permission).
    pub fn bind(config: ServerConfig, executor: Executor) -> io::Result<Server> {
        config.validate()?;
        let listener = TcpListener::bind(config.addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "could not listen on {}: {e}; pick another address or port 0",
                    config.addr
                ),
            )
        })?;
        // Non-blocking so that the accept loop, woken by poll(2), never blocks in accept.
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        Ok(Server {
            listener,
            local_addr,
            settings: Settings {
                work: config.work,
                max_n: config.max_n,
                idle_timeout: config.idle_timeout,
                direct_below: config.direct_below,
            },
            executor,
            stop: ShutdownHandle::new(),
            stop_on_signals: false,
            grace: DEFAULT_SHUTDOWN_GRACE,
        })
    }

    /// The address actually bound (with the port the OS picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The strategy handlers yield their work to.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// A handle that stops this server from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Makes SIGINT and SIGTERM stop this server gracefully, as its shutdown handle would
    /// (installs the handlers with [`install_signal_handlers`](super::install_signal_handlers)).
    ///
    /// # Errors
    /// If the handlers cannot be installed.
    pub fn stop_on_signals(mut self) -> io::Result<Self> {
        sys::install_signal_handlers()?;
        self.stop_on_signals = true;
        Ok(self)
    }

    /// How long in-flight requests may take to finish once the server is told to stop
    /// (default [`DEFAULT_SHUTDOWN_GRACE`]); handlers still running then are cancelled.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// An upper bound on how long [`Server::run`] takes to return once told to stop.
    pub fn stop_bound(&self) -> Duration {
        POLL_INTERVAL + self.grace + CANCEL_WAIT
    }

    /// Serves connections until the server is told to stop, then stops in three bounded steps
    /// and returns:
    /// 1. stop accepting: the listening socket closes and new connections are refused (one
    ///    still in the kernel's listen backlog is reset, as with any server);
    /// 2. finish: every open connection's read side is shut, so a handler waiting for a
    ///    request sees end-of-stream and returns, and a handler in the middle of a request
    ///    finishes the work, writes the reply, then returns; this gets the grace period;
    /// 3. cancel: handlers still running are cancelled (they unwind at their next yield point)
    ///    and their sockets shut both ways; after one more second, a handler still inside
    ///    work that cannot be interrupted (inline work runs to its end) is left behind, with
    ///    a line on stderr.
    ///
    /// The executor is dropped on return, which shuts a worker pool down unless a handler
    /// left behind still holds it.
    ///
    /// # Errors
    /// If waiting on the listening socket fails; the handlers are stopped before returning.
    pub fn run(self) -> io::Result<()> {
        let mut live: Vec<Connection> = Vec::new();
        let outcome = loop {
            if self.stop_requested() {
                break Ok(());
            }
            reap_finished(&mut live);
            match sys::wait_readable(&self.listener, POLL_INTERVAL) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => break Err(e),
            }
            if let Err(e) = self.accept_waiting(&mut live) {
                break Err(e);
            }
        };
        let Server {
            listener, grace, ..
        } = self;
        drop(listener);
        stop_handlers(live, grace);
        outcome
    }

    /// Runs the server on a background thread; see [`RunningServer`].
    ///
    /// # Panics
    /// If the OS cannot start a thread.
    pub fn spawn(self) -> RunningServer {
        RunningServer::start(self)
    }

    fn stop_requested(&self) -> bool {
        self.stop.is_shutdown() || (self.stop_on_signals && sys::termination_signal().is_some())
    }

    /// Accepts every connection already waiting. Errors that concern one connection or a
    /// passing shortage (file descriptors, memory) are reported and survived; others end the
    /// server.
    fn accept_waiting(&self, live: &mut Vec<Connection>) -> io::Result<()> {
        // A flood of connections must not keep a stop from being noticed.
        while !self.stop_requested() {
            match self.listener.accept() {
                Ok((stream, _peer)) => {
                    if let Some(connection) = self.start_handler(stream) {
                        live.push(connection);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if is_transient_accept_error(&e) => {
                    eprintln!("sumserver: could not accept a connection: {e}; going on");
                    // A shortage would make poll report the same waiting connection at
                    // once; pause so the loop does not spin while it lasts.
                    std::thread::sleep(POLL_INTERVAL);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Starts the handler thread of one connection, or refuses the connection with an
    /// `error:` line if no thread can be started.
    fn start_handler(&self, stream: TcpStream) -> Option<Connection> {
        let settings = self.settings;
        let prepared = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_nodelay(true))
            .and_then(|()| stream.set_read_timeout(Some(settings.idle_timeout)))
            .and_then(|()| stream.set_write_timeout(Some(settings.idle_timeout)))
            .and_then(|()| stream.try_clone());
        // A socket that cannot be set up is already broken (reset by the peer): drop it.
        let socket = prepared.ok()?;
        // One name for every connection: handler threads are reused only under the name they
        // started with, and a name per connection would defeat that.
        let started = YieldableThread::builder()
            .name("sumserver-conn")
            .spawn(&self.executor, move |y| {
                connection::serve(y, stream, settings)
            });
        match started {
            Ok(handler) => Some(Connection { handler, socket }),
            Err(e) => {
                let reply = protocol::error_reply(format_args!(
                    "the server cannot start a thread for this connection ({e}); try again later"
                ));
                let _ = (&socket).write_all(reply.as_bytes());
                None
            }
        }
    }
}

/// Joins the handlers that have returned, so that their threads do not pile up.
fn reap_finished(live: &mut Vec<Connection>) {
    let mut index = 0;
    while index < live.len() {
        if live[index].handler.is_finished() {
            let connection = live.swap_remove(index);
            report_handler_outcome(connection.handler.join());
        } else {
            index += 1;
        }
    }
}

/// Steps 2 and 3 of the stop: finish, then cancel, each bounded.
fn stop_handlers(live: Vec<Connection>, grace: Duration) {
    for connection in &live {
        let _ = connection.socket.shutdown(Shutdown::Read);
    }
    let unfinished = join_all_until(live, Instant::now() + grace);
    if unfinished.is_empty() {
        return;
    }
    for connection in &unfinished {
        connection.handler.cancel();
        let _ = connection.socket.shutdown(Shutdown::Both);
    }
    let stuck = join_all_until(unfinished, Instant::now() + CANCEL_WAIT);
    if !stuck.is_empty() {
        eprintln!(
            "sumserver: {} handler(s) still inside CPU work {:?} after the stop began; leaving \
             them behind (give the strategy a timeout, e.g. subprocess,timeout=5s, to bound work)",
            stuck.len(),
            grace + CANCEL_WAIT
        );
    }
}

/// Joins each handler until `deadline`; returns those still running then.
fn join_all_until(live: Vec<Connection>, deadline: Instant) -> Vec<Connection> {
    let mut unfinished = Vec::new();
    for mut connection in live {
        let left = deadline.saturating_duration_since(Instant::now());
        match connection.handler.join_timeout(left) {
            Err(e) if e.is_timeout() => unfinished.push(connection),
            outcome => report_handler_outcome(outcome),
        }
    }
    unfinished
}

/// A handler returns `()`; the only outcomes worth a word are a panic (a bug in the handler,
/// which ended only its own connection). Cancellation is the stop working as intended.
fn report_handler_outcome(outcome: Result<(), ythread::Error>) {
    if let Err(e) = outcome
        && !e.is_cancelled()
    {
        eprintln!("sumserver: a connection handler failed: {e}");
    }
}

fn is_transient_accept_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::OutOfMemory
    ) || matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EPROTO)
    )
}
