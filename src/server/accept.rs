//! Acceptors: handlers that accept a connection themselves, serve it, and go back to
//! accepting (leader/follower). The kernel wakes one thread blocked in `accept` per incoming
//! connection, and that thread is the one that serves it: no accept thread wakes a handler,
//! and no handler parks and wakes between connections, which on a VM costs more than the
//! rest of a tiny request.
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

use super::acceptors::AcceptorId;
use super::connection;
use super::connections::Admitted;
use super::hub::{Admission, Hub};
use super::protocol;

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
pub(crate) const HANDLER_NAME: &str = "sumserver-conn";

/// Closed to make room for one accept when the process is out of descriptors.
static SPARE_FD: Mutex<Option<File>> = Mutex::new(None);

/// Starts an acceptor, unless the server is stopping.
pub(crate) fn spawn_acceptor(hub: &Arc<Hub>) {
    let id = {
        let mut connections = hub.connections.lock();
        if hub.is_stopping() {
            return;
        }
        connections.acceptors.reserve()
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
                eprintln!("sumserver: handler threads start again");
            }
        }
        Err(e) => {
            connections.acceptors.never_started(id);
            let open = connections.open();
            drop(connections);
            if !hub.out_of_threads.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "sumserver: cannot start a handler thread ({e}); accepting with the \
                     handlers there are while serving the {open} open connections (raise the \
                     thread limit or lower --max-connections)"
                );
            }
        }
    }
}

/// An acceptor's life: accept, admit, serve, and again, until the stop, a cancellation, or
/// enough others waiting.
fn accept_and_serve(y: &Yielder<'_>, hub: &Arc<Hub>, id: AcceptorId) {
    let _end = AcceptorEnd { hub, id };
    let mut ready = Vec::new();
    loop {
        let Some(stream) = next_connection(hub) else {
            return;
        };
        let Some(admitted) = admit(hub, stream, id) else {
            continue;
        };
        let state = Arc::clone(&admitted.state);
        connection::serve(y, admitted, hub.settings);
        // A cancellation meant for the connection just served that came too late to stop its
        // work (or is still on its way) must not reach the next one: this acceptor ends
        // instead.
        let cancelled = state.let_go() || y.is_cancelled();
        if cancelled || hub.idle_acceptors.load(Ordering::SeqCst) >= MAX_IDLE_ACCEPTORS {
            return;
        }
        super::watcher::help(hub, &mut ready);
    }
}

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
                        "sumserver: out of file descriptors ({e}); refusing new connections \
                         while serving the {} open ones (raise `ulimit -n` or lower \
                         --max-connections)",
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
        eprintln!("sumserver: descriptors are available again; accepting");
        return Some(stream);
    }
    refuse(
        &stream,
        format_args!("server busy: out of file descriptors; try again later"),
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
                format_args!(
                    "server busy: all {max_connections} connections are in use; try again later"
                ),
            );
            return None;
        }
    }
    let admitted = connections.admit(stream, acceptor);
    drop(connections);
    if let Some(idlest) = shed {
        send_now(
            &idlest,
            &protocol::error_reply(
                "server busy: closing this idle connection to make room for a new one; \
                 reconnect when you have a request",
            ),
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

/// Tells a client it was not admitted, and closes its connection at once.
pub(crate) fn refuse(stream: &TcpStream, why: std::fmt::Arguments<'_>) {
    send_now(stream, &protocol::error_reply(why));
    // Read what the client already sent: closing with unread input sends a reset, which can
    // make the client lose the line above.
    let mut scratch = [0u8; REFUSAL_DRAIN];
    if stream.set_nonblocking(true).is_ok() {
        let _ = (&*stream).read(&mut scratch);
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Writes `line` if the socket can take it now; never blocks.
pub(crate) fn send_now(stream: &TcpStream, line: &str) {
    let _ = SockRef::from(stream).send_with_flags(line.as_bytes(), libc::MSG_DONTWAIT);
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
