//! Steps 2 and 3 of a stop (see [`Server::run`](super::Server::run)): let the handlers
//! finish within the grace period, then cancel those still running, each step bounded.

use std::net::{Shutdown, TcpStream};
use std::sync::Weak;
use std::time::{Duration, Instant};

use ythread::JoinHandle;

use super::accept::report_handler_outcome;
use super::connections::Drained;

/// How long cancelled handlers get to unwind before they are left behind.
pub(crate) const CANCEL_WAIT: Duration = Duration::from_secs(1);

/// Finishes, then cancels, every handler and acceptor the stop drained from the table.
pub(crate) fn stop_handlers(drained: Drained, grace: Duration) {
    let Drained { handlers, sockets } = drained;
    for socket in &sockets {
        shutdown(socket, Shutdown::Read);
    }
    let unfinished = join_all_until(handlers, Instant::now() + grace);
    if unfinished.is_empty() {
        return;
    }
    for handler in &unfinished {
        handler.cancel();
    }
    for socket in &sockets {
        shutdown(socket, Shutdown::Both);
    }
    let stuck = join_all_until(unfinished, Instant::now() + CANCEL_WAIT);
    if !stuck.is_empty() {
        eprintln!(
            "{} handler(s) still inside CPU work {:?} after the stop began; leaving \
             them behind (give the strategy a timeout, e.g. subprocess,timeout=5s, to bound work)",
            stuck.len(),
            grace + CANCEL_WAIT
        );
    }
}

/// Shuts `socket` down if its handler still has it open.
fn shutdown(socket: &Weak<TcpStream>, how: Shutdown) {
    if let Some(socket) = socket.upgrade() {
        let _ = socket.shutdown(how);
    }
}

/// Joins each handler until `deadline`; returns those still running then.
fn join_all_until(handlers: Vec<JoinHandle<()>>, deadline: Instant) -> Vec<JoinHandle<()>> {
    let mut unfinished = Vec::new();
    for mut handler in handlers {
        let left = deadline.saturating_duration_since(Instant::now());
        match handler.join_timeout(left) {
            Err(e) if e.is_timeout() => unfinished.push(handler),
            outcome => report_handler_outcome(outcome),
        }
    }
    unfinished
}
