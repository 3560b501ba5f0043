//! What a connection is doing, as the watcher and the acceptors see it: idle since when,
//! busy with a request, or shed; whether its peer has left; and whether the thread that
//! serves its turns (the acceptor that admitted it, or the one that took it after a rest)
//! still serves it. The handler and the watcher each change it with one atomic
//! operation, so neither waits for the other.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a connection is doing, as the watcher and the acceptors see it.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    /// Milliseconds since `epoch` at which the connection went idle, or [`BUSY`] or [`SHED`].
    phase: AtomicU64,
    /// Set by the watcher when the peer closed its side or reset the connection.
    peer_gone: AtomicBool,
    /// [`SERVED`], [`LET_GO`] or [`CANCEL_CLAIMED`]: see [`ConnectionState::let_go`].
    acceptor: AtomicU8,
    epoch: Instant,
}

/// A thread (acceptor or handler) serves the connection.
const SERVED: u8 = 0;
/// The thread is done with it: a departure must not cancel that thread any more.
const LET_GO: u8 = 1;
/// The watcher (or a thread helping it) is cancelling the serving thread for this
/// connection's departure.
const CANCEL_CLAIMED: u8 = 2;

const BUSY: u64 = u64::MAX;
const SHED: u64 = u64::MAX - 1;

impl ConnectionState {
    pub(crate) fn new(epoch: Instant) -> Self {
        let state = ConnectionState {
            phase: AtomicU64::new(0),
            peer_gone: AtomicBool::new(false),
            acceptor: AtomicU8::new(SERVED),
            epoch,
        };
        state.wait_for_request();
        state
    }

    fn millis_now(&self) -> u64 {
        // Far below `SHED` for any server that runs less than half a billion years.
        self.epoch.elapsed().as_millis() as u64
    }

    /// The handler waits for the next request: the connection may be shed from now on.
    pub(crate) fn wait_for_request(&self) {
        self.phase.store(self.millis_now(), Ordering::SeqCst);
    }

    /// The handler has a request: claims the connection so it is no longer shed. `false` if
    /// it was shed first, or if the client has already gone (its request is dropped unread).
    pub(crate) fn begin_request(&self) -> bool {
        let idle_since = self.phase.load(Ordering::SeqCst);
        if idle_since == SHED
            || self
                .phase
                .compare_exchange(idle_since, BUSY, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return false;
        }
        // Pairs with `peer_left`: either this load sees the flag, or the watcher sees
        // `BUSY` and cancels the handler. Both may happen; neither is missed.
        !self.peer_gone.load(Ordering::SeqCst)
    }

    /// The handler is done with the connection: it is no candidate for shedding any more.
    pub(crate) fn end(&self) {
        self.phase.store(BUSY, Ordering::SeqCst);
    }

    /// The watcher saw the peer leave. Returns whether a request is in progress (its work
    /// should be cancelled).
    pub(crate) fn peer_left(&self) -> bool {
        self.peer_gone.store(true, Ordering::SeqCst);
        self.phase.load(Ordering::SeqCst) == BUSY
    }

    /// How long the connection has been idle, if it is.
    pub(crate) fn idle_for(&self) -> Option<(u64, Duration)> {
        match self.phase.load(Ordering::SeqCst) {
            BUSY | SHED => None,
            since => Some((
                since,
                Duration::from_millis(self.millis_now().saturating_sub(since)),
            )),
        }
    }

    /// Marks the connection shed if it is still idle since `since`.
    pub(crate) fn shed(&self, since: u64) -> bool {
        self.phase
            .compare_exchange(since, SHED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Said by the thread serving the connection (an acceptor or a handler) when it is done
    /// with it, before the connection rests or closes: from now on a departure does not
    /// cancel that thread. Returns whether the watcher claimed a cancellation first, which may
    /// not have reached the thread yet: the thread must then end rather than take another
    /// connection, or the cancellation could land on that one.
    pub(crate) fn let_go(&self) -> bool {
        self.acceptor.swap(LET_GO, Ordering::SeqCst) == CANCEL_CLAIMED
    }

    /// Said (under the table's lock) when a thread takes the connection, woken from its rest,
    /// for its next turns: a departure cancels that thread from now on, until it lets go. The
    /// thread that served it before let go before the connection could rest, so no claim of
    /// a cancellation meant for that one is lost.
    pub(crate) fn served(&self) {
        self.acceptor.store(SERVED, Ordering::SeqCst);
    }

    /// Whether a cancellation of the serving thread was claimed (and not yet seen by it).
    pub(crate) fn is_cancel_claimed(&self) -> bool {
        self.acceptor.load(Ordering::SeqCst) == CANCEL_CLAIMED
    }

    /// Said by the watcher (or a thread helping it) before it cancels the serving thread for
    /// this connection's departure: `false` if that thread has already let go (it may serve
    /// another connection now).
    pub(crate) fn claim_cancel(&self) -> bool {
        self.acceptor
            .compare_exchange(SERVED, CANCEL_CLAIMED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}
