//! [`Server`]: the listening socket, the acceptors and the watcher, and the graceful stop.
//!
//! The listening socket carries the options every connection needs (no Nagle delay, the idle
//! timeout on reads and writes): Linux copies them to each accepted socket, which saves three
//! system calls per connection. Stopping is graceful and bounded; [`Server::run`] tells the
//! steps.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use ythread::Executor;

use super::connection::Settings;
use super::hub::{Admission, Hub};
use super::running::{RunningServer, ShutdownHandle};
use super::stop::CANCEL_WAIT;
use super::watcher::Watcher;
use super::{POLL_INTERVAL, ServerConfig, limits, sys};

/// How long [`Server::run`] lets in-flight requests finish after a stop unless told otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
    admission: Admission,
    backlog: u32,
    executor: Executor,
    stop: ShutdownHandle,
    stop_on_signals: bool,
    grace: Duration,
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
        let backlog = config.backlog.unwrap_or_else(limits::max_backlog);
        let listener = listen(&config, backlog).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "could not listen on {}: {e}; pick another address or port 0",
                    config.addr
                ),
            )
        })?;
        let local_addr = listener.local_addr()?;
        Ok(Server {
            listener,
            local_addr,
            settings: Settings {
                work: config.work,
                max_n: config.max_n,
                idle_timeout: config.idle_timeout,
                direct_below: config.direct_below,
                framing: config.framing,
            },
            admission: Admission {
                max_connections: config
                    .max_connections
                    .unwrap_or_else(limits::default_max_connections),
                shed_idle_after: config.shed_idle_after,
            },
            backlog,
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

    /// The most connections served at once (the configured cap, or the one derived from the
    /// OS limits).
    pub fn max_connections(&self) -> usize {
        self.admission.max_connections
    }

    /// The listen backlog asked for (Linux shortens it to `net.core.somaxconn`).
    pub fn backlog(&self) -> u32 {
        self.backlog
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
        let stop_requested = || {
            self.stop.is_shutdown() || (self.stop_on_signals && sys::termination_signal().is_some())
        };
        let hub = Hub::new(self.listener, self.executor, self.settings, self.admission)?;
        let mut watcher = Watcher::start(Arc::new(hub));
        let outcome = loop {
            if stop_requested() {
                break Ok(());
            }
            if let Err(e) = watcher.serve_events(POLL_INTERVAL) {
                break Err(e);
            }
        };
        watcher.stop(self.grace);
        outcome
    }

    /// Runs the server on a background thread; see [`RunningServer`].
    ///
    /// # Panics
    /// If the OS cannot start a thread.
    pub fn spawn(self) -> RunningServer {
        RunningServer::start(self)
    }
}

/// A listening socket for `config`, blocking (acceptors wait in `accept`), with the options
/// its connections inherit.
fn listen(config: &ServerConfig, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(config.addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // As std's `TcpListener::bind` does: a restarted server can bind while old connections
    // linger in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_read_timeout(Some(config.idle_timeout))?;
    socket.set_write_timeout(Some(config.idle_timeout))?;
    socket.bind(&config.addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}
