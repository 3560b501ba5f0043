//! The accept loop's work: one epoll wait, then each event handled in constant time.
//!
//! Two kinds of event arrive: the listening socket has connections waiting, or a connection's
//! peer closed or reset. A newcomer is admitted under the cap (see [`super::connections`] for
//! what happens at the cap) and handed to a handler thread, usually a parked one. A peer that
//! leaves while its request is in progress gets its handler cancelled, which drops its work:
//! queued work leaves the strategy's line unrun, a worker process running it is killed and
//! replaced, and work running in this process finishes with its result discarded.
//!
//! Shortages are survived, and said once. Out of file descriptors, the loop closes a spare
//! descriptor it keeps for the purpose, accepts the waiting connection, tells it the server
//! is busy and closes it, so that newcomers get an answer instead of hanging in the backlog;
//! unable to start a thread, it refuses the newcomer the same way. The connections already
//! open are served throughout. One line goes to stderr when a shortage begins and one when it
//! ends, however many connections it touches.

use std::fs::File;
use std::io::{self, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::SockRef;
use ythread::{Executor, JoinHandle, YieldableThread};

use super::connection::{self, Settings};
use super::connections::{Admitted, Connections, Key};
use super::protocol;
use super::resting::{self, Input};
use super::sys::{LISTENER_KEY, Poller};

/// The most connections accepted per wake of the accept loop.
const ACCEPT_BURST: usize = 128;

/// How far over the cap the connections being shed may take the server: each holds its
/// descriptor and thread until its handler has noticed. Past this, newcomers are refused.
const MAX_SHEDDING: usize = 16;

/// At most this much of a refused client's request is read before closing, so that the close
/// does not turn into a reset that could destroy the busy line before the client reads it.
const REFUSAL_DRAIN: usize = 4096;

/// Who gets in: the cap, and how idle a connection must be to make room at it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admission {
    pub(crate) max_connections: usize,
    pub(crate) shed_idle_after: Option<Duration>,
}

pub(crate) struct Acceptor<'a> {
    listener: &'a TcpListener,
    executor: &'a Executor,
    settings: Settings,
    admission: Admission,
    poller: Arc<Poller>,
    connections: Connections,
    events: Vec<u64>,
    /// Closed to make room for one accept when the process is out of descriptors.
    spare_fd: Option<File>,
    out_of_fds: bool,
    out_of_threads: bool,
}

impl<'a> Acceptor<'a> {
    pub(crate) fn new(
        listener: &'a TcpListener,
        executor: &'a Executor,
        settings: Settings,
        admission: Admission,
    ) -> io::Result<Self> {
        let poller = Arc::new(Poller::new()?);
        poller.watch_listener(listener)?;
        Ok(Acceptor {
            listener,
            executor,
            settings,
            admission,
            connections: Connections::new(Arc::clone(&poller)),
            poller,
            events: Vec::new(),
            spare_fd: open_spare_fd(),
            out_of_fds: false,
            out_of_threads: false,
        })
    }

    /// Waits up to `timeout` for events and handles them; `stop` is asked between accepts so
    /// that a flood of connections cannot hide a stop.
    pub(crate) fn serve_events(
        &mut self,
        timeout: Duration,
        stop: impl Fn() -> bool,
    ) -> io::Result<()> {
        self.connections.collect_ended(report_handler_outcome);
        self.end_long_rests();
        // Woken in time for the earliest rest to end (a millisecond late rather than early:
        // the wait counts whole milliseconds).
        let timeout = self
            .connections
            .next_rest_deadline()
            .map_or(timeout, |until| {
                timeout
                    .min(until.saturating_duration_since(Instant::now()) + Duration::from_millis(1))
            });
        let mut events = std::mem::take(&mut self.events);
        let waited = self.poller.wait(&mut events, timeout);
        // After the wait: a connection reported in `events` was handed back before its watch
        // began, so it is in the queue now.
        self.connections.take_resting(self.settings.idle_timeout);
        let mut outcome = waited;
        for &key in &events {
            if key == LISTENER_KEY {
                if outcome.is_ok() {
                    outcome = self.accept_waiting(&stop);
                }
            } else {
                self.connection_event(Key::from_u64(key));
            }
        }
        self.events = events;
        outcome
    }

    /// The connections still tracked, for the stop.
    pub(crate) fn into_connections(mut self) -> Connections {
        self.connections.collect_ended(report_handler_outcome);
        self.connections
    }

    /// A resting connection has input: a new handler for a request, the close for an end.
    /// Any other connection's event is its peer leaving.
    fn connection_event(&mut self, key: Key) {
        let Some((mut resting, until)) = self.connections.wake(key) else {
            self.connections.peer_left(key);
            return;
        };
        match resting::peek(&resting.socket) {
            Input::Request => {
                // As at admission, a failure only costs noticing a departure during the work.
                let _ = self.poller.rewatch_hang_up(&*resting.socket, key.to_u64());
                resting.may_rest = false;
                self.start_handler(resting);
            }
            Input::Closed => resting.close(),
            Input::Nothing => {
                let _ = self.poller.watch_input_once(&*resting.socket, key.to_u64());
                self.connections.rest_again(resting, until);
            }
        }
    }

    /// Closes the resting connections that sent nothing for an idle timeout, telling them so
    /// as a handler would.
    fn end_long_rests(&mut self) {
        for resting in self.connections.rested_too_long(Instant::now()) {
            send_now(
                &resting.socket,
                &connection::idle_reply(self.settings.idle_timeout),
            );
            resting.close();
        }
    }

    fn accept_waiting(&mut self, stop: &impl Fn() -> bool) -> io::Result<()> {
        // Bounded, so that a flood cannot keep the loop from departures and ended handlers;
        // the listener is level-triggered, so what is left is reported at the next wait.
        for _ in 0..ACCEPT_BURST {
            if stop() {
                break;
            }
            match self.listener.accept() {
                Ok((stream, _peer)) => {
                    if self.out_of_fds {
                        self.out_of_fds = false;
                        eprintln!("sumserver: descriptors are available again; accepting");
                    }
                    self.admit(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if is_fd_shortage(&e) => {
                    self.refuse_for_lack_of_fds(&e);
                    return Ok(());
                }
                // The connection was reset while it waited: it concerns that client only.
                Err(e) if is_lost_connection(&e) => {}
                Err(e) if is_memory_shortage(&e) => {
                    // The connection stays in the backlog, so the listener is still readable:
                    // pause rather than spin while the shortage lasts.
                    std::thread::sleep(super::POLL_INTERVAL);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Admits `stream` (making room at the cap if an idle connection can give it up), watches
    /// for its peer leaving, and starts its handler.
    fn admit(&mut self, stream: TcpStream) {
        let Admission {
            max_connections,
            shed_idle_after,
        } = self.admission;
        let open = self.connections.open();
        if open >= max_connections {
            let idlest = shed_idle_after
                .filter(|_| open < max_connections + MAX_SHEDDING)
                .and_then(|after| self.connections.shed_idlest(after));
            let Some(idlest) = idlest else {
                refuse(
                    &stream,
                    format_args!(
                        "server busy: all {max_connections} connections are in use; try again \
                         later"
                    ),
                );
                return;
            };
            send_now(
                &idlest,
                &protocol::error_reply(
                    "server busy: closing this idle connection to make room for a new one; \
                     reconnect when you have a request",
                ),
            );
            let _ = idlest.shutdown(Shutdown::Both);
        }
        let admitted = self.connections.admit(stream);
        // If this fails (no memory), the connection is served all the same; only a departure
        // during its work would go unnoticed.
        let _ = self
            .poller
            .watch_hang_up(&*admitted.socket, admitted.key.to_u64());
        self.start_handler(admitted);
    }

    /// Starts the handler of an admitted or woken connection; refuses the connection if no
    /// thread can be had.
    fn start_handler(&mut self, admitted: Admitted) {
        let key = admitted.key;
        let socket = Arc::clone(&admitted.socket);
        let settings = self.settings;
        // One name for every connection: handler threads are reused only under the name they
        // started with, and a name per connection would defeat that.
        let started = YieldableThread::builder()
            .name("sumserver-conn")
            .spawn(self.executor, move |y| {
                connection::serve(y, admitted, settings)
            });
        match started {
            Ok(handler) => {
                drop(socket);
                self.started(key, handler);
            }
            Err(e) => {
                if !self.out_of_threads {
                    self.out_of_threads = true;
                    eprintln!(
                        "sumserver: cannot start a handler thread ({e}); refusing new connections \
                         while serving the {} open ones (raise the thread limit or lower \
                         --max-connections)",
                        self.connections.open()
                    );
                }
                refuse(
                    &socket,
                    format_args!(
                        "server busy: cannot start a thread for this connection ({e}); try \
                         again later"
                    ),
                );
            }
        }
    }

    fn started(&mut self, key: Key, handler: JoinHandle<()>) {
        if self.out_of_threads {
            self.out_of_threads = false;
            eprintln!("sumserver: handler threads start again; accepting");
        }
        self.connections.started(key, handler);
    }

    /// Out of descriptors: frees the spare one for one accept, refuses that connection, and
    /// takes the spare back.
    fn refuse_for_lack_of_fds(&mut self, error: &io::Error) {
        if !self.out_of_fds {
            self.out_of_fds = true;
            eprintln!(
                "sumserver: out of file descriptors ({error}); refusing new connections while \
                 serving the {} open ones (raise `ulimit -n` or lower --max-connections)",
                self.connections.open()
            );
        }
        self.spare_fd = None;
        match self.listener.accept() {
            Ok((stream, _peer)) => refuse(
                &stream,
                format_args!("server busy: out of file descriptors; try again later"),
            ),
            // Even the spare was not enough (the system-wide table is full): the connection
            // waits in the backlog. Pause rather than spin on a listener that stays readable.
            Err(_) => std::thread::sleep(super::POLL_INTERVAL),
        }
        self.spare_fd = open_spare_fd();
    }
}

/// Tells a client it was not admitted, and closes its connection at once.
fn refuse(stream: &TcpStream, why: std::fmt::Arguments<'_>) {
    send_now(stream, &protocol::error_reply(why));
    // Read what the client already sent: closing with unread input sends a reset, which can
    // make the client lose the line above.
    let mut scratch = [0u8; REFUSAL_DRAIN];
    if stream.set_nonblocking(true).is_ok() {
        let _ = (&*stream).read(&mut scratch);
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Writes `line` if the socket can take it now; never blocks the accept loop.
fn send_now(stream: &TcpStream, line: &str) {
    let _ = SockRef::from(stream).send_with_flags(line.as_bytes(), libc::MSG_DONTWAIT);
}

fn open_spare_fd() -> Option<File> {
    File::open("/dev/null").ok()
}

/// A handler returns `()`; the only outcomes worth a word are a panic (a bug in the handler,
/// which ended only its own connection). Cancellation is the stop, or a departed client,
/// working as intended.
pub(crate) fn report_handler_outcome(outcome: Result<(), ythread::Error>) {
    if let Err(e) = outcome
        && !e.is_cancelled()
    {
        eprintln!("sumserver: a connection handler failed: {e}");
    }
}

fn is_fd_shortage(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

fn is_memory_shortage(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::OutOfMemory
        || matches!(error.raw_os_error(), Some(libc::ENOBUFS | libc::ENOMEM))
}

/// An error of the connection being accepted, not of the listener: Linux hands a waiting
/// connection's pending network error back from `accept` (see accept(2)). It concerns that
/// client only.
fn is_lost_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || matches!(
        error.raw_os_error(),
        Some(
            libc::EPROTO
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENONET
                | libc::ENOPROTOOPT
                | libc::EOPNOTSUPP
                | libc::EPERM
                | libc::ETIMEDOUT
        )
    )
}
