//! Connections that rest between turns: when a turn is over and nothing of the next request
//! is buffered, the connection goes back to the watcher (see [`super::watcher`]) and waits for
//! its next input in the watcher's epoll instead of on a thread. Its next input starts a new
//! turn on whichever thread takes it: one that has just finished a turn and carries on (see
//! [`super::turns::carry_on`]), or one the watcher starts (reused, see `ythread`'s handler
//! threads). So a connection holds a thread only while a request is in progress, as in
//! Tomcat's NIO connector.
//!
//! Why: a thread per connection costs a stack, a guard page and a coroutine stack (about six
//! memory maps and 14 KiB) for as long as the client keeps the connection, whether it sends
//! anything or not; a resting connection costs its descriptor and a slot. A new connection
//! rests too until its first byte arrives (see [`super::accept`]).
//!
//! While it rests, the watcher enforces the idle timeout (closing with the protocol's
//! [`idle`](crate::Protocol::idle) bytes), the connection is a candidate for shedding at the
//! cap like any idle one, and a stop closes it.
//!
//! Trade-off: a keep-alive client's every request after the first costs two `epoll_ctl` calls
//! (watch the input, then the hang-up) that a thread per connection would not pay, and a
//! hand-off (the watcher's wake-up and a context switch) when no thread carries on to it; in
//! exchange a quiet connection costs no thread, and the threads follow the requests in
//! progress, not the connections open.

use std::sync::Arc;

use super::connections::Admitted;

impl Admitted {
    /// Hands the connection to the watcher to wait for its next input; the thread that served
    /// it then goes on. If the poller cannot watch it (out of memory), it rests until its idle
    /// timeout, then closes. Returns whether the thread may serve another connection: `false`
    /// if a cancellation meant for this one may be on its way (see
    /// [`ConnectionState::let_go`](crate::state::ConnectionState::let_go)).
    #[must_use]
    pub(crate) fn rest(mut self) -> bool {
        // Before the connection can be woken, and its next turn's thread claimed.
        let free = !self.state.let_go();
        self.input.release();
        let socket = Arc::clone(&self.socket);
        let key = self.key.to_u64();
        let shared = Arc::clone(&self.departure.shared);
        let mut resting = shared.resting.lock();
        if resting.closed {
            // The server is stopping: nobody would wake it.
            drop(resting);
            self.close();
            return free;
        }
        resting.connections.push(self);
        drop(resting);
        // Only now: any input reported from here on finds the connection in the queue, and
        // input that came before is reported too (the watch is level-triggered).
        let _ = shared.poller.watch_input_once(&*socket, key);
        free
    }

    /// Ends the connection for good, letting go of it first; whether the thread may serve
    /// another connection (see [`Admitted::rest`]).
    #[must_use]
    pub(crate) fn finish(self) -> bool {
        let free = !self.state.let_go();
        self.close();
        free
    }
}

/// What a woken connection has for its next handler.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Input {
    /// Bytes of a request.
    Request,
    /// End-of-stream, a reset or another error: the connection is over.
    Closed,
    /// Nothing after all.
    Nothing,
}
