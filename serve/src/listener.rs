//! [`Server`]: the listening socket, the acceptors and the watcher, and the graceful stop.
//!
//! The listening socket carries the options every connection needs (no Nagle delay, the idle
//! timeout on reads, the write timeout): Linux copies them to each accepted socket, which
//! saves three system calls per connection. Stopping is graceful and bounded; [`Server::run`]
//! tells the steps.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use ythread::Executor;

use super::connection::Timeouts;
use super::hub::{Admission, Hub};
use super::limits::{self, ConnectionLimits, LimitSource};
use super::running::{RunningServer, ShutdownHandle};
use super::stop::CANCEL_WAIT;
use super::watcher::Watcher;
use super::{POLL_INTERVAL, Protocol, ServeConfig, sys};

/// A bound listening socket, the protocol its turns speak and the executor they yield their
/// work to.
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use ythread::Yielder;
/// use ythread_serve::{Connection, Protocol, ServeConfig, Server, Turn};
///
/// /// Answers each line with its length.
/// struct Lengths;
///
/// impl Protocol for Lengths {
///     fn turn(&self, _y: &Yielder<'_>, connection: &mut Connection<'_>) -> Turn {
///         loop {
///             if let Some(end) = connection.buffered().iter().position(|&b| b == b'\n') {
///                 if !connection.begin_work() {
///                     return Turn::Close;
///                 }
///                 let reply = format!("{end}\n");
///                 connection.consume(end + 1);
///                 connection.end_work();
///                 return match connection.write_all(reply.as_bytes()) {
///                     Ok(()) => Turn::Keep,
///                     Err(_) => Turn::Close,
///                 };
///             }
///             match connection.read_more(4096) {
///                 Ok(0) | Err(_) => return Turn::Close,
///                 Ok(_) => {}
///             }
///         }
///     }
///
///     fn busy(&self, why: &str) -> Vec<u8> {
///         format!("busy: {why}\n").into_bytes()
///     }
/// }
///
/// let addr = "127.0.0.1:0".parse().unwrap();
/// let server = Server::bind(addr, ServeConfig::default(), ythread::Executor::inline(), Lengths)?
///     .spawn();
/// let mut client = std::net::TcpStream::connect(server.addr())?;
/// client.set_read_timeout(Some(Duration::from_secs(10)))?;
/// client.write_all(b"hello\nworld!\n")?;
/// let mut replies = [0u8; 4];
/// client.read_exact(&mut replies)?;
/// assert_eq!(&replies, b"5\n6\n");
/// server.shutdown()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Server {
    name: String,
    listener: TcpListener,
    local_addr: SocketAddr,
    protocol: Arc<dyn Protocol>,
    timeouts: Timeouts,
    admission: Admission,
    limits: ConnectionLimits,
    backlog: u32,
    executor: Executor,
    stop: ShutdownHandle,
    stop_on_signals: bool,
    grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("local_addr", &self.local_addr)
            .field("admission", &self.admission)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Validates `config` and binds `addr` (port 0 lets the OS pick a free port; read it from
    /// [`Server::local_addr`]). Nothing is accepted until [`Server::run`] or [`Server::spawn`].
    ///
    /// # Errors
    /// `InvalidInput` for a configuration that cannot work (see [`ServeConfig::validate`]),
    /// or the OS error of binding (address in use, no permission).
    pub fn bind(
        addr: SocketAddr,
        config: ServeConfig,
        executor: Executor,
        protocol: impl Protocol,
    ) -> io::Result<Server> {
        config.validate()?;
        let backlog = config
            .configured_backlog()
            .unwrap_or_else(limits::max_backlog);
        let listener = listen(addr, &config, backlog).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("could not listen on {addr}: {e}; pick another address or port 0"),
            )
        })?;
        let local_addr = listener.local_addr()?;
        let limits = ConnectionLimits::of_this_process();
        Ok(Server {
            name: "ythread-serve".to_owned(),
            listener,
            local_addr,
            protocol: Arc::new(protocol),
            timeouts: Timeouts {
                idle: config.configured_idle_timeout(),
                turn: config.configured_turn_deadline(),
            },
            admission: Admission {
                max_connections: config
                    .configured_max_connections()
                    .unwrap_or_else(|| limits.max_connections()),
                max_threads: config
                    .configured_max_threads()
                    .unwrap_or_else(|| limits.max_threads().0),
                shed_idle_after: config.configured_shed_idle_after(),
            },
            limits,
            backlog,
            executor,
            stop: ShutdownHandle::new(),
            stop_on_signals: false,
            grace: config.configured_stop_grace(),
        })
    }

    /// How the server names itself in the lines it writes to stderr (shortages, stuck
    /// turns); `ythread-serve` by default.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The line a server prints at start: its caps and the limits they come from.
    pub fn describe_caps(&self) -> String {
        let (derived_threads, thread_source) = self.limits.max_threads();
        let connections = if self.admission.max_connections == self.limits.max_connections() {
            format!(
                "at most {} connections (derived from {} {})",
                self.admission.max_connections,
                LimitSource::Fds,
                self.limits.fd_limit
            )
        } else {
            format!("at most {} connections", self.admission.max_connections)
        };
        let limit = match thread_source {
            LimitSource::Maps => self.limits.map_limit,
            _ => self.limits.thread_limit,
        };
        let threads = if self.admission.max_threads == derived_threads {
            format!(
                "at most {derived_threads} serving threads (derived from {thread_source} {limit})"
            )
        } else {
            format!("at most {} serving threads", self.admission.max_threads)
        };
        format!("{connections}, {threads}, listen backlog {}", self.backlog)
    }

    /// The address actually bound (with the port the OS picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The most connections open at once (the configured cap, or the one derived from the
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

    /// The most threads serving turns at once (configured, or derived from the thread and
    /// memory-map limits); a turn past it is refused with the protocol's busy reply.
    pub fn max_threads(&self) -> usize {
        self.admission.max_threads
    }

    /// How long turns in progress may take to finish once the server is told to stop (the
    /// configuration's stop grace); handlers still running then are cancelled.
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
        let hub = Hub::new(
            self.name.clone(),
            self.listener,
            self.executor,
            Arc::clone(&self.protocol),
            self.timeouts,
            self.admission,
        )?;
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

/// A listening socket on `addr`, blocking (acceptors wait in `accept`), with the options its
/// connections inherit.
fn listen(addr: SocketAddr, config: &ServeConfig, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    // As std's `TcpListener::bind` does: a restarted server can bind while old connections
    // linger in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_read_timeout(Some(config.configured_idle_timeout()))?;
    socket.set_write_timeout(Some(config.configured_write_timeout()))?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}
