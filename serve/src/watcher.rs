//! The watcher: the server's own thread, one epoll over the connections (not the listening
//! socket: acceptors take new connections themselves, see [`super::accept`]). Two kinds of
//! event arrive: a resting connection has input (a handler for its next turn, the close for
//! an end-of-stream), or a served connection's peer closed or reset (its handler is cancelled,
//! which drops its work: queued work leaves the strategy's line unrun, a worker process
//! running it is killed and replaced, and work running in this process finishes with its
//! result discarded). Between waits it joins the handlers that ended, closes connections that
//! rested for a whole idle timeout, and starts an acceptor if none is left. Each event costs
//! constant work, whatever the number of open connections.
//!
//! Acceptors help. Closing a socket is most of the watcher's work (about 40% of the server's
//! CPU under one-request clients), and one thread sharing two cores with many falls behind:
//! the peers' sockets then linger half-closed for milliseconds, which cost the *clients'*
//! machine more CPU than the closes themselves (the loopback's TCP work for them runs on the
//! clients' time). So an acceptor on its way back to `accept` takes up to [`HELP_BATCH`]
//! ready events off the epoll and handles them itself, while the watcher is busy with a
//! batch; a watcher waiting for events sees the next ones at once and is left to them.
//! Trade-off: the acceptor's next connection waits for those few closes (microseconds each),
//! and a stop first waits for helping acceptors to finish (see [`Hub::wait_for_helpers`]).

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ythread::YieldableThread;

use super::accept::{self, HANDLER_NAME, refuse, report_handler_outcome, send_now};
use super::connections::{Admitted, Key};
use super::hub::Hub;
use super::resting::{self, Input};
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
        self.hub.watcher_waiting.store(true, Ordering::SeqCst);
        let waited = self.hub.poller.wait(&mut events, timeout);
        self.hub.watcher_waiting.store(false, Ordering::SeqCst);
        // After the wait: a connection reported in `events` was handed back before its watch
        // began, so it is in the queue now (or already in its slot, moved by a helping
        // acceptor).
        self.hub
            .connections
            .lock()
            .take_resting(self.hub.timeouts.idle);
        for &key in &events {
            connection_event(&self.hub, Key::from_u64(key));
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

/// A resting connection has input: a new handler for a request, the close for an end.
/// Any other connection's event is its peer leaving.
fn connection_event(hub: &Arc<Hub>, key: Key) {
    let woken = {
        let mut connections = hub.connections.lock();
        let woken = connections.wake(key);
        if woken.is_none() {
            connections.peer_left(key);
        }
        woken
    };
    let Some((resting, until, wake)) = woken else {
        return;
    };
    match resting::peek(&resting.socket) {
        Input::Request => {
            // As at admission, a failure only costs noticing a departure during the work.
            let _ = hub.poller.rewatch_hang_up(&*resting.socket, key.to_u64());
            start_handler(hub, resting, wake);
        }
        Input::Closed => resting.close(),
        Input::Nothing => {
            // Back in its slot before the watch: whoever the input is reported to finds it.
            let socket = Arc::clone(&resting.socket);
            hub.connections.lock().rest_again(resting, until);
            let _ = hub.poller.watch_input_once(&*socket, key.to_u64());
        }
    }
}

/// Starts a handler for the next turn of a woken connection; refuses the connection if no
/// thread can be had (the thread cap, derived from the thread and memory-map limits, or the
/// OS said no).
fn start_handler(hub: &Arc<Hub>, admitted: Admitted, wake: u64) {
    let key = admitted.key;
    let socket = Arc::clone(&admitted.socket);
    let threads =
        hub.handlers.fetch_add(1, Ordering::SeqCst) + hub.connections.lock().acceptors.live();
    if threads >= hub.admission.max_threads {
        hub.handlers.fetch_sub(1, Ordering::SeqCst);
        let max = hub.admission.max_threads;
        refuse(
            &socket,
            &hub.busy(format_args!(
                "server busy: all {max} threads are serving requests; try again later"
            )),
        );
        admitted.close();
        return;
    }
    // Counted down when the closure is dropped: after its turns, or unrun.
    let running = RunningHandler(Arc::clone(hub));
    let started = YieldableThread::builder()
        .name(HANDLER_NAME)
        .spawn(&hub.executor, move |y| {
            turns::serve(y, admitted, &running.0)
        });
    match started {
        Ok(handler) => {
            drop(socket);
            let ended = hub.connections.lock().started(key, wake, handler);
            if let Some(handler) = ended {
                report_handler_outcome(handler.join());
            }
        }
        Err(e) => {
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

/// Counts a handler among the running ones for its whole life, however it ends.
struct RunningHandler(Arc<Hub>);

impl Drop for RunningHandler {
    fn drop(&mut self) {
        self.0.handlers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Called by an acceptor on its way back to `accept` after serving a connection: while the
/// watcher is busy with a batch (not waiting for events) and another acceptor waits in
/// `accept`, takes up to [`HELP_BATCH`] ready events off the epoll and handles them the same
/// way, so that closes do not queue behind the watcher (see the module docs).
pub(crate) fn help(hub: &Arc<Hub>, keys: &mut Vec<u64>) {
    // With no acceptor waiting in `accept`, a newcomer would wait for these events.
    if hub.watcher_waiting.load(Ordering::SeqCst) || hub.idle_acceptors.load(Ordering::SeqCst) == 0
    {
        return;
    }
    let Some(_helping) = hub.begin_helping() else {
        return;
    };
    if hub.poller.ready_now(keys, HELP_BATCH).is_err() || keys.is_empty() {
        return;
    }
    hub.connections.lock().take_resting(hub.timeouts.idle);
    for &key in keys.iter() {
        connection_event(hub, Key::from_u64(key));
    }
}

/// The most events an acceptor handles on one way back to `accept`: enough to keep up with
/// the watcher's backlog, few enough that the next connection is not kept waiting.
const HELP_BATCH: usize = 16;
