//! Acceptors: handlers that accept a connection themselves, serve its first turns, and go
//! back to accepting (leader/follower). The kernel wakes one thread blocked in `accept` per
//! incoming connection, and that thread is the one that serves it: no accept thread wakes a
//! handler, and no handler parks and wakes between connections, which on a VM costs more than
//! the rest of a tiny request.
//!
//! A new connection holds its acceptor only while its first request is in progress. Its
//! client usually sends the request right after the handshake, so the acceptor waits for the
//! first byte [`FIRST_BYTE_WAIT`] at most, and only while fewer than [`MAX_FIRST_BYTE_WAITERS`]
//! acceptors wait so; otherwise, or if nothing comes, the connection rests in the watcher
//! until its first byte (see [`super::resting`]). A flood of silent connections therefore
//! costs descriptors, not threads.
//!
//! One acceptor at least always waits in `accept`: the one that takes the last waiting
//! place starts another before serving its connection, and one that finishes while
//! [`MAX_IDLE_ACCEPTORS`] already wait ends instead of waiting too (its thread parks for
//! reuse). So the acceptors follow the load: as many as connections being served, plus a few.
//!
//! A newcomer is admitted under the cap (see [`super::connections`] for what happens at the
//! cap). Shortages are survived, and said once: out of file descriptors, an acceptor closes a
//! spare descriptor kept for the purpose, accepts the waiting connection, tells it the server
//! is busy and closes it, so that newcomers get an answer instead of hanging in the backlog;
//! unable to start another acceptor, the server accepts with the acceptors it has. One line
//! goes to stderr when a shortage begins and one when it ends.
//!
//! Trade-off: every acceptor serving a connection is its handler, so a departure that
//! cancels the work cancels the acceptor (it unwinds and ends, and another takes its place);
//! and a connection served by an acceptor has no `JoinHandle` of its own.

use std::fs::File;
use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::lock::Mutex;
use socket2::SockRef;
use ythread::{YieldableThread, Yielder};

use std::time::Duration;

use super::acceptors::{AcceptorId, Kind};
use super::connections::Admitted;
use super::hub::{Admission, Hub};
use super::resting::Input;
use super::{sys, turns};

/// The most acceptors waiting in `accept` at once: more end when they finish a connection.
pub(crate) const MAX_IDLE_ACCEPTORS: usize = 4;

/// How far over the cap the connections being shed may take the server: each holds its
/// descriptor (and its thread, if it has a handler) until it has noticed. Past this,
/// newcomers are refused.
const MAX_SHEDDING: usize = 16;

/// At most this much of a refused client's request is read before closing, so that the close
/// does not turn into a reset that could destroy the busy line before the client reads it.
const REFUSAL_DRAIN: usize = 4096;

/// The name of every handler thread. Handler threads are reused only under the name they
/// started with, so a name per connection would defeat reuse.
pub(crate) const HANDLER_NAME: &str = "ythread-serve";

/// How long an acceptor waits for a new connection's first byte before letting it rest: a
/// client's request usually follows its handshake within a fraction of a millisecond.
pub const FIRST_BYTE_WAIT: Duration = Duration::from_millis(2);

/// The most acceptors not serving a turn (waiting in `accept` or for a first byte, admitting,
/// resting a connection): a burst of connections starts no more.
const MAX_SPARE_ACCEPTORS: usize = MAX_IDLE_ACCEPTORS + MAX_FIRST_BYTE_WAITERS + 4;

/// The most acceptors waiting for a first byte at once; past this a new connection rests at
/// once, so that silent connections cannot take threads.
pub const MAX_FIRST_BYTE_WAITERS: usize = 4;

/// Closed to make room for one accept when the process is out of descriptors.
static SPARE_FD: Mutex<Option<File>> = Mutex::new(None);

/// Starts an acceptor, unless the server is stopping.
pub(crate) fn spawn_acceptor(hub: &Arc<Hub>) {
    let id = {
        let mut connections = hub.connections.lock();
        if hub.is_stopping() {
            return;
        }
        // At the thread cap the acceptors there are accept; one is always allowed, so that
        // newcomers are answered (refused, at worst) rather than left in the backlog. Nor
        // does a burst of connections start more than a few acceptors beyond those serving
        // turns: the others are on their way back to `accept` within microseconds.
        let live = connections.acceptors.live();
        let threads = live + hub.handlers.load(Ordering::SeqCst);
        let in_turns = hub.acceptor_turns.load(Ordering::SeqCst);
        if live > 0
            && (threads >= hub.admission.max_threads || live >= in_turns + MAX_SPARE_ACCEPTORS)
        {
            return;
        }
        connections.acceptors.reserve(Kind::Acceptor)
    };
    let for_acceptor = Arc::clone(hub);
    let started = YieldableThread::builder()
        .name(HANDLER_NAME)
        .spawn(&hub.executor, move |y| {
            accept_and_serve(y, &for_acceptor, id)
        });
    let mut connections = hub.connections.lock();
    match started {
        Ok(handle) => {
            // Stopped meanwhile: the acceptor sees it and ends by itself.
            let _ = connections.acceptors.started(id, handle);
            drop(connections);
            if hub.out_of_threads.swap(false, Ordering::SeqCst) {
                eprintln!("{}: handler threads start again", hub.name);
            }
        }
        Err(e) => {
            connections.acceptors.never_started(id);
            let open = connections.open();
            drop(connections);
            if !hub.out_of_threads.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "{}: cannot start a handler thread ({e}); accepting with the handlers \
                     there are while serving the {open} open connections (raise the thread \
                     limit or lower the connection cap)",
                    hub.name
                );
            }
        }
    }
}

/// An acceptor's life: accept, admit, serve, and again, until the stop, a cancellation, or
/// enough others waiting.
fn accept_and_serve(y: &Yielder<'_>, hub: &Arc<Hub>, id: AcceptorId) {
    let _end = AcceptorEnd { hub, id };
    loop {
        let Some(stream) = next_connection(hub) else {
            return;
        };
        let Some(admitted) = admit(hub, stream, id) else {
            continue;
        };
        let mut admitted = admitted;
        let free = match first_input(hub, &mut admitted) {
            Input::Request => {
                hub.acceptor_turns.fetch_add(1, Ordering::SeqCst);
                let _in_turns = AcceptorInTurns(hub);
                turns::serve(y, admitted, hub)
            }
            Input::Closed => admitted.finish(),
            Input::Nothing => admitted.rest(),
        };
        // A cancellation meant for the connection just served that came too late to stop its
        // work (or is still on its way) must not reach the next one: this acceptor ends
        // instead.
        if !free || y.is_cancelled() {
            return;
        }
        // Resting connections with input now, while another acceptor waits for newcomers.
        if hub.idle_acceptors.load(Ordering::SeqCst) > 0 {
            hub.acceptor_turns.fetch_add(1, Ordering::SeqCst);
            let _in_turns = AcceptorInTurns(hub);
            if !turns::carry_on(y, hub, id) {
                return;
            }
        }
        if hub.idle_acceptors.load(Ordering::SeqCst) >= MAX_IDLE_ACCEPTORS {
            return;
        }
    }
}

/// Reads what a new connection has sent into its buffer, for its first turn: waits
/// [`FIRST_BYTE_WAIT`] for it if nothing has come yet and few acceptors are waiting so. The
/// request usually arrives with the handshake, and then this read is the first turn's read:
/// no system call is added to serve a connection at once.
fn first_input(hub: &Hub, admitted: &mut Admitted) -> Input {
    let mut waited = false;
    loop {
        match admitted.input.read_now(&admitted.socket, FIRST_READ) {
            Ok(0) => return Input::Closed,
            Ok(_) => return Input::Request,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !waited => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Input::Nothing,
            Err(_) => return Input::Closed,
        }
        waited = true;
        let waiters = hub.first_byte_waiters.fetch_add(1, Ordering::SeqCst);
        let arrived = waiters < MAX_FIRST_BYTE_WAITERS
            && sys::wait_readable(&*admitted.socket, FIRST_BYTE_WAIT);
        hub.first_byte_waiters.fetch_sub(1, Ordering::SeqCst);
        if !arrived {
            return Input::Nothing;
        }
    }
}

/// How much a new connection's first read takes: a small request whole, a large one's start.
const FIRST_READ: usize = 4096;

/// Waits for the next connection (starting another acceptor if this was the last one
/// waiting); `None` when the acceptor should end: the server stops, or cannot accept any more.
fn next_connection(hub: &Arc<Hub>) -> Option<TcpStream> {
    loop {
        if hub.is_stopping() {
            return None;
        }
        if hub.out_of_fds.load(Ordering::SeqCst) {
            if let Some(stream) = survive_fd_shortage(hub) {
                return Some(stream);
            }
            continue;
        }
        hub.idle_acceptors.fetch_add(1, Ordering::SeqCst);
        let accepted = hub.listener.accept();
        let was_last_waiting = hub.idle_acceptors.fetch_sub(1, Ordering::SeqCst) == 1;
        match accepted {
            Ok((stream, _peer)) => {
                if was_last_waiting && !hub.is_stopping() {
                    spawn_acceptor(hub);
                }
                return Some(stream);
            }
            Err(_) if hub.is_stopping() => return None,
            Err(e) if is_fd_shortage(&e) => {
                if !hub.out_of_fds.swap(true, Ordering::SeqCst) {
                    eprintln!(
                        "{}: out of file descriptors ({e}); refusing new connections while \
                         serving the {} open ones (raise `ulimit -n` or lower the connection \
                         cap)",
                        hub.name,
                        hub.connections.lock().open()
                    );
                }
            }
            // The connection stays in the backlog: pause rather than spin while it lasts.
            Err(e) if is_memory_shortage(&e) => std::thread::sleep(super::POLL_INTERVAL),
            // The listening socket's receive timeout (inherited by every connection) also
            // bounds the wait in `accept`.
            Err(e)
                if is_lost_connection(&e)
                    || matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
            Err(e) => {
                hub.fail(e);
                return None;
            }
        }
    }
}

/// Counts an acceptor among those serving turns until it drops (a cancellation unwinds).
struct AcceptorInTurns<'a>(&'a Hub);

impl Drop for AcceptorInTurns<'_> {
    fn drop(&mut self) {
        self.0.acceptor_turns.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tells the table that its acceptor ended, however it ended (a cancellation unwinds).
struct AcceptorEnd<'a> {
    hub: &'a Hub,
    id: AcceptorId,
}

impl Drop for AcceptorEnd<'_> {
    fn drop(&mut self) {
        self.hub.connections.lock().acceptors.ended(self.id);
    }
}

/// One acceptor at a time, out of descriptors: frees the spare descriptor for one accept,
/// then serves that connection if descriptors are to be had again (the shortage is over) or
/// refuses it, and takes the spare back. The others wait meanwhile: an `accept` of theirs
/// would take the spare's place. (Acceptors already waiting in `accept` are not affected:
/// Linux allots the descriptor before the wait.)
fn survive_fd_shortage(hub: &Hub) -> Option<TcpStream> {
    let Some(_turn) = SHORTAGE_TURN.try_lock() else {
        std::thread::sleep(super::POLL_INTERVAL);
        return None;
    };
    let Some(spare) = SPARE_FD.lock().take() else {
        // The spare could not be taken back last time: wait for a descriptor to free up.
        std::thread::sleep(super::POLL_INTERVAL);
        keep_spare_fd();
        return None;
    };
    drop(spare);
    let accepted = hub.listener.accept();
    let Ok((stream, _peer)) = accepted else {
        keep_spare_fd();
        return None;
    };
    // The connection holds the spare's descriptor: one more to be had means it is over.
    if keep_spare_fd() {
        hub.out_of_fds.store(false, Ordering::SeqCst);
        eprintln!("{}: descriptors are available again; accepting", hub.name);
        return Some(stream);
    }
    refuse(
        &stream,
        &hub.busy(format_args!(
            "server busy: out of file descriptors; try again later"
        )),
    );
    drop(stream);
    keep_spare_fd();
    None
}

/// Taken by the acceptor that deals with a shortage of descriptors.
static SHORTAGE_TURN: Mutex<()> = Mutex::new(());

/// Admits `stream` (making room at the cap if an idle connection can give it up) and watches
/// for its peer leaving; `None` if it was refused.
fn admit(hub: &Hub, stream: TcpStream, acceptor: AcceptorId) -> Option<Admitted> {
    let Admission {
        max_connections,
        shed_idle_after,
        ..
    } = hub.admission;
    let mut connections = hub.connections.lock();
    if hub.is_stopping() {
        return None;
    }
    let open = connections.open();
    let mut shed = None;
    if open >= max_connections {
        shed = shed_idle_after
            .filter(|_| open < max_connections + MAX_SHEDDING)
            .and_then(|after| connections.shed_idlest(after));
        if shed.is_none() {
            drop(connections);
            refuse(
                &stream,
                &hub.busy(format_args!(
                    "server busy: all {max_connections} connections are in use; try again later"
                )),
            );
            return None;
        }
    }
    let admitted = connections.admit(stream, acceptor);
    drop(connections);
    if let Some(idlest) = shed {
        send_now(
            &idlest,
            &hub.busy(format_args!(
                "server busy: closing this idle connection to make room for a new one; \
                 reconnect when you have a request"
            )),
        );
        let _ = idlest.shutdown(Shutdown::Both);
    }
    // If this fails (no memory), the connection is served all the same; only a departure
    // during its work would go unnoticed.
    let _ = hub
        .poller
        .watch_hang_up(&*admitted.socket, admitted.key.to_u64());
    Some(admitted)
}

/// Makes sure a spare descriptor is kept, for [`survive_fd_shortage`]; whether it is.
pub(crate) fn keep_spare_fd() -> bool {
    let mut spare = SPARE_FD.lock();
    if spare.is_none() {
        *spare = File::open("/dev/null").ok();
    }
    spare.is_some()
}

/// Tells a client it was not admitted (`busy`: the protocol's words), and closes its
/// connection at once.
pub(crate) fn refuse(stream: &TcpStream, busy: &[u8]) {
    send_now(stream, busy);
    // Read what the client already sent: closing with unread input sends a reset, which can
    // make the client lose the line above.
    let mut scratch = [0u8; REFUSAL_DRAIN];
    if stream.set_nonblocking(true).is_ok() {
        let _ = (&*stream).read(&mut scratch);
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Writes `bytes` if the socket can take them now; never blocks.
pub(crate) fn send_now(stream: &TcpStream, bytes: &[u8]) {
    let _ = SockRef::from(stream).send_with_flags(bytes, libc::MSG_DONTWAIT);
}

/// A handler returns `()`; the only outcomes worth a word are a panic (a bug in the handler,
/// which ended only its own connection). Cancellation is the stop, or a departed client,
/// working as intended.
pub(crate) fn report_handler_outcome(outcome: Result<(), ythread::Error>) {
    if let Err(e) = outcome
        && !e.is_cancelled()
    {
        eprintln!("a connection handler failed: {e}");
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
