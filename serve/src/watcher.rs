//! The watcher: the server's own thread, one epoll over the connections (not the listening
//! socket: acceptors take new connections themselves, see [`super::accept`]). Two kinds of
//! event arrive: a resting connection has input (a handler for its next turn, the close for
//! an end-of-stream), or a served connection's peer closed or reset (its thread is cancelled,
//! which drops its work: queued work leaves the strategy's line unrun, a worker process
//! running it is killed and replaced, and work running in this process finishes with its
//! result discarded). Between waits it joins the handlers that ended, closes connections that
//! rested for a whole idle timeout, and starts an acceptor if none is left. Each event costs
//! constant work, whatever the number of open connections.
//!
//! Serving threads help. A thread whose connection's turns are over (a handler, or an acceptor
//! while another waits in `accept`) takes ready events off the same epoll without waiting
//! ([`take_ready`](super::ready::take_ready)): it handles ends and departures the way the watcher would and serves the
//! first resting connection with input itself, so under load the watcher and the hand-off to
//! a new thread are left out (see [`super::turns::carry_on`]). This also keeps closes from
//! queueing behind one thread: closing a socket was most of the watcher's work under
//! one-request clients, and sockets left half-closed for milliseconds cost the clients'
//! machine more CPU than the closes themselves. Trade-off: a stop first waits for helping
//! threads to finish their look (see [`Hub::wait_for_helpers`]).

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ythread::YieldableThread;

use super::accept::{self, HANDLER_NAME, refuse, report_handler_outcome, send_now};
use super::acceptors::{AcceptorId, Kind};
use super::connections::{Admitted, Key};
use super::hub::Hub;
use super::ready::connection_event;
use super::stop::stop_handlers;
use super::turns;

pub(crate) struct Watcher {
    hub: Arc<Hub>,
    events: Vec<u64>,
}

impl Watcher {
    /// Starts the first acceptor.
    pub(crate) fn start(hub: Arc<Hub>) -> Watcher {
        let _ = accept::keep_spare_fd();
        accept::spawn_acceptor(&hub);
        Watcher {
            hub,
            events: Vec::new(),
        }
    }

    /// Waits up to `timeout` for events and handles them.
    ///
    /// # Errors
    /// If waiting fails, or the listening socket failed for good.
    pub(crate) fn serve_events(&mut self, timeout: Duration) -> io::Result<()> {
        let (next_rest_deadline, rested_too_long, acceptors) = {
            let mut connections = self.hub.connections.lock();
            connections.collect_ended(report_handler_outcome);
            let rested_too_long = connections.rested_too_long(Instant::now());
            (
                connections.next_rest_deadline(),
                rested_too_long,
                connections.acceptors.live(),
            )
        };
        for resting in rested_too_long {
            send_now(
                &resting.socket,
                &self.hub.protocol.idle(self.hub.timeouts.idle),
            );
            resting.close();
        }
        // Acceptors keep one of them waiting; this covers the last one ending abnormally (a
        // cancellation, a panic) or failing to start.
        if acceptors == 0 {
            accept::spawn_acceptor(&self.hub);
        }
        // Woken in time for the earliest rest to end (a millisecond late rather than early:
        // the wait counts whole milliseconds).
        let timeout = next_rest_deadline.map_or(timeout, |until| {
            timeout.min(until.saturating_duration_since(Instant::now()) + Duration::from_millis(1))
        });
        let mut events = std::mem::take(&mut self.events);
        let waited = self.hub.poller.wait(&mut events, timeout);
        // Connections handed back to rest start their idle timeout in their slots, whether
        // or not an event comes for them.
        self.hub
            .connections
            .lock()
            .take_resting(self.hub.timeouts.idle);
        for &key in &events {
            if let Some(woken) = connection_event(&self.hub, Key::from_u64(key)) {
                start_handler(&self.hub, woken);
            }
        }
        self.events = events;
        match self.hub.take_failure() {
            Some(failure) => Err(failure),
            None => waited,
        }
    }

    /// Stops accepting, then lets the handlers finish and cancels the rest (see
    /// [`Server::run`](super::Server::run)).
    pub(crate) fn stop(self, grace: Duration) {
        self.hub.stop_accepting();
        // An acceptor helping with events could start a handler for a connection the drain
        // has already taken, which nobody would then join.
        self.hub.wait_for_helpers();
        let drained = self.hub.connections.lock().drain();
        stop_handlers(drained, grace);
    }
}

/// Starts a handler for the turns of a woken connection; refuses the connection if no
/// thread can be had (the thread cap, derived from the thread and memory-map limits, or the
/// OS said no).
fn start_handler(hub: &Arc<Hub>, admitted: Admitted) {
    let key = admitted.key;
    let socket = Arc::clone(&admitted.socket);
    let state = Arc::clone(&admitted.state);
    let id = {
        let mut connections = hub.connections.lock();
        let threads = hub.handlers.fetch_add(1, Ordering::SeqCst) + connections.acceptors.live();
        if threads >= hub.admission.max_threads {
            None
        } else {
            let id = connections.acceptors.reserve(Kind::Handler);
            connections.serve_by(key, id);
            Some(id)
        }
    };
    let Some(id) = id else {
        hub.handlers.fetch_sub(1, Ordering::SeqCst);
        let max = hub.admission.max_threads;
        refuse(
            &socket,
            &hub.busy(format_args!(
                "server busy: all {max} threads are serving requests; try again later"
            )),
        );
        drop(socket);
        let _ = admitted.finish();
        return;
    };
    // Dropped with the closure: after its turns, or unrun.
    let end = HandlerEnd {
        hub: Arc::clone(hub),
        id,
    };
    let started = YieldableThread::builder()
        .name(HANDLER_NAME)
        .spawn(&hub.executor, move |y| {
            let end = end;
            if turns::serve(y, admitted, &end.hub) {
                turns::carry_on(y, &end.hub, end.id);
            }
        });
    match started {
        Ok(handler) => {
            drop(socket);
            let mut connections = hub.connections.lock();
            // Only a stop drains the table, and it waits for the watcher and helpers first.
            let _ = connections.acceptors.started(id, handler);
            // A departure claimed before the handle was in found nothing to cancel.
            if state.is_cancel_claimed() {
                connections.acceptors.cancel(id);
            }
        }
        Err(e) => {
            hub.connections.lock().acceptors.never_started(id);
            if !hub.out_of_threads.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "{}: cannot start a handler thread ({e}); refusing requests on resting \
                     connections (raise the thread limit or lower the connection cap)",
                    hub.name
                );
            }
            refuse(
                &socket,
                &hub.busy(format_args!(
                    "server busy: cannot start a thread for this connection ({e}); try \
                     again later"
                )),
            );
        }
    }
}

/// A handler among the running ones for its whole life, however it ends: counted, and said
/// to have ended when it does.
struct HandlerEnd {
    hub: Arc<Hub>,
    id: AcceptorId,
}

impl Drop for HandlerEnd {
    fn drop(&mut self) {
        self.hub.handlers.fetch_sub(1, Ordering::SeqCst);
        self.hub.connections.lock().acceptors.ended(self.id);
    }
}
