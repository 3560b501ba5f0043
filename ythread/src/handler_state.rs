//! What a handler's driver shares with its [`JoinHandle`](crate::JoinHandle): the cancel flag
//! and the slot the outcome waits in.
//!
//! Handler threads are reused, so `join` cannot wait for an OS thread to exit: it waits for the
//! outcome to be published, and the driver publishes it only after everything the handler
//! owned (its closure, its stack frames, its executor handle) has been dropped. The outcome is
//! published from a drop guard, so even a driver that panics (a bug) leaves an answer behind
//! instead of a `join` that waits forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::{Error, spin};

/// State shared by a handler thread, its [`JoinHandle`](crate::JoinHandle) and the strategy
/// running its work: the cancel flag, and what to do on cancel (see `cancel.rs`).
pub(crate) use crate::cancel::CancelState as Control;

/// Where a handler's outcome waits for `join`.
pub(crate) struct Outcome<R> {
    slot: Mutex<Option<Result<R, Error>>>,
    ready: Condvar,
    /// Set once the outcome is in `slot`; stays set after the outcome is taken.
    published: AtomicBool,
}

impl<R> Outcome<R> {
    pub(crate) fn new() -> Self {
        Outcome {
            slot: Mutex::new(None),
            ready: Condvar::new(),
            published: AtomicBool::new(false),
        }
    }

    /// Whether the driver has published the outcome (taken or not).
    pub(crate) fn is_published(&self) -> bool {
        self.published.load(Ordering::Acquire)
    }

    /// Waits until the outcome is published or `deadline` passes (`None`: no deadline), and
    /// takes it. `None` if the deadline passed first, or if the outcome was already taken.
    pub(crate) fn take_by(&self, deadline: Option<Instant>) -> Option<Result<R, Error>> {
        let spin = deadline.map_or(spin::JOIN_SPIN, |deadline| {
            spin::JOIN_SPIN.min(deadline.saturating_duration_since(Instant::now()))
        });
        if !spin.is_zero() {
            spin::spin_until(spin, || self.is_published());
        }
        let mut slot = self.slot.lock();
        while !self.is_published() {
            match deadline {
                None => self.ready.wait(&mut slot),
                Some(deadline) => {
                    if self.ready.wait_until(&mut slot, deadline).timed_out() {
                        // One last look: the driver may have published just in time.
                        break;
                    }
                }
            }
        }
        slot.take()
    }

    fn publish(&self, result: Result<R, Error>) {
        let mut slot = self.slot.lock();
        *slot = Some(result);
        self.published.store(true, Ordering::Release);
        drop(slot);
        self.ready.notify_all();
    }
}

/// Publishes a handler's outcome when dropped: the result [`set`](Publisher::set) by the
/// driver, or an error that blames ythread if the driver never got that far.
pub(crate) struct Publisher<R> {
    outcome: Arc<Outcome<R>>,
    result: Option<Result<R, Error>>,
}

impl<R> Publisher<R> {
    pub(crate) fn new(outcome: Arc<Outcome<R>>) -> Self {
        Publisher {
            outcome,
            result: None,
        }
    }

    /// The outcome to publish.
    pub(crate) fn set(&mut self, result: Result<R, Error>) {
        self.result = Some(result);
    }
}

impl<R> Drop for Publisher<R> {
    fn drop(&mut self) {
        let result = self.result.take().unwrap_or_else(|| {
            Err(Error::unavailable(
                "the handler thread's driver stopped without a result; this is a bug in \
                 ythread, please report it",
            ))
        });
        self.outcome.publish(result);
    }
}
