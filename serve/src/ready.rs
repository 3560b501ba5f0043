//! One ready event off the connections' epoll, handled: for the watcher, which waits for
//! events, and for serving threads that carry on (see [`super::turns::carry_on`]), which take
//! one without waiting. A file of its own so that both can use it while neither imports the
//! other: the watcher starts threads that carry on.

use std::io;
use std::sync::Arc;

use super::acceptors::AcceptorId;
use super::connections::{Admitted, Key};
use super::hub::Hub;
use super::resting::Input;

/// Handles the event of `key`: a resting connection with input is returned, woken, its
/// input read, for the caller to serve (or to start a handler for); one with an end closes.
/// Any other connection's event is its peer leaving.
pub(crate) fn connection_event(hub: &Hub, key: Key) -> Option<Admitted> {
    let woken = {
        let mut connections = hub.connections.lock();
        // The connection was handed back before its watch began, so it is in the queue by
        // now if not already in its slot.
        connections.take_resting(hub.timeouts.idle);
        let woken = connections.wake(key);
        if woken.is_none() {
            connections.peer_left(key);
        }
        woken
    };
    let (mut resting, until) = woken?;
    // A read rather than a peek: the turn's first read is then done.
    let input = loop {
        match resting.input.read_now(&resting.socket, FIRST_READ) {
            Ok(0) => break Input::Closed,
            Ok(_) => break Input::Request,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Input::Nothing,
            Err(_) => break Input::Closed,
        }
    };
    match input {
        Input::Request => {
            // As at admission, a failure only costs noticing a departure during the work.
            let _ = hub.poller.rewatch_hang_up(&*resting.socket, key.to_u64());
            Some(resting)
        }
        Input::Closed => {
            resting.close();
            None
        }
        Input::Nothing => {
            resting.input.release();
            // Back in its slot before the watch: whoever the input is reported to finds it.
            let socket = Arc::clone(&resting.socket);
            hub.connections.lock().rest_again(resting, until);
            let _ = hub.poller.watch_input_once(&*socket, key.to_u64());
            None
        }
    }
}

/// How much a woken connection's first read takes: a small request whole, a large one's start.
const FIRST_READ: usize = 4096;

/// Called by a thread whose connection's turns are over (see [`turns::carry_on`]): takes the
/// next ready event off the epoll without waiting, and returns the connection to serve if it
/// is input on a resting one, taken by thread `server`. Other events (ends, departures) are
/// handled on the way, at most [`HELP_BATCH`] in all. `None` when nothing is ready, or once
/// the server is stopping.
pub(crate) fn take_ready(hub: &Hub, server: AcceptorId) -> Option<Admitted> {
    let _helping = hub.begin_helping()?;
    for _ in 0..HELP_BATCH {
        let key = hub.poller.ready_one().ok()??;
        if let Some(admitted) = connection_event(hub, Key::from_u64(key)) {
            hub.connections.lock().serve_by(admitted.key, server);
            return Some(admitted);
        }
    }
    None
}

/// The most events a thread handles on one look for a connection to serve: enough to get
/// past a few ends, few enough that the thread is soon back.
const HELP_BATCH: usize = 16;
