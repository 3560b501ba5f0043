//! The server's lock: std's futex mutex, without poisoning.
//!
//! Why not parking_lot's, as elsewhere: on a machine with more runnable threads than cores
//! (the usual state of a busy thread-per-connection server), parking_lot's waiter calls
//! `sched_yield` while it spins, and a yielding thread can wait a whole time slice (several
//! milliseconds) to run again, even when the lock was free a microsecond later. std's waiter
//! spins briefly and then sleeps on a futex that the unlock wakes at once. Measured on the sum
//! server's new-connection load: see `docs/server.md`.

use std::sync::{MutexGuard, PoisonError};

#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
    }

    /// A panic while the lock was held leaves nothing half-done that the next holder could
    /// trip over (every critical section is a few table operations), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}
