//! What a connection is doing, as the watcher and the acceptors see it: idle since when,
//! busy with a request, or shed; whether its peer has left; and whether the acceptor that
//! admitted it still serves it. The handler and the watcher each change it with one atomic
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

/// The acceptor that admitted the connection serves it.
const SERVED: u8 = 0;
/// The acceptor is done with it: a departure must not cancel that acceptor any more.
const LET_GO: u8 = 1;
/// The watcher (or an acceptor helping it) is cancelling the acceptor for this connection's
/// departure.
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

    /// Said by the acceptor when it is done with the connection: from now on a departure
    /// does not cancel it. Returns whether the watcher claimed a cancellation first, which
    /// may not have reached the acceptor yet: the acceptor must then end rather than take
    /// another connection, or the cancellation could land on that one.
    pub(crate) fn let_go(&self) -> bool {
        self.acceptor.swap(LET_GO, Ordering::SeqCst) == CANCEL_CLAIMED
    }

    /// Said when the connection is handed back to rest: the acceptor that served it is done
    /// with it, even if it has not said so yet, so a later departure must not cancel that
    /// acceptor (it may be serving its next connection by then). A cancellation already
    /// claimed stands: the acceptor still sees it in [`ConnectionState::let_go`].
    pub(crate) fn handed_back(&self) {
        let _ = self
            .acceptor
            .compare_exchange(SERVED, LET_GO, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Whether the watcher has seen the peer leave.
    pub(crate) fn is_peer_gone(&self) -> bool {
        self.peer_gone.load(Ordering::SeqCst)
    }

    /// Said by the watcher (or an acceptor helping it) before it cancels the acceptor for
    /// this connection's departure:
    /// `false` if the acceptor has already let go (it serves another connection now).
    pub(crate) fn claim_acceptor_cancel(&self) -> bool {
        self.acceptor
            .compare_exchange(SERVED, CANCEL_CLAIMED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}
