//! Waiting for a handler thread, with or without a bound, and cancelling it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::Error;
use crate::thread::{Control, Outcome};

/// Owns a yieldable thread: join it, join it with a bound, or cancel it.
///
/// Dropping the handle detaches the thread, as with `std::thread::JoinHandle`.
pub struct JoinHandle<R> {
    thread: Option<std::thread::JoinHandle<()>>,
    control: Arc<Control>,
    outcome: Arc<Outcome<R>>,
}

impl<R> JoinHandle<R> {
    pub(crate) fn new(
        thread: std::thread::JoinHandle<()>,
        control: Arc<Control>,
        outcome: Arc<Outcome<R>>,
    ) -> Self {
        JoinHandle {
            thread: Some(thread),
            control,
            outcome,
        }
    }

    /// Waits for the handler and returns what it returned.
    ///
    /// # Errors
    /// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the handler's panic message
    /// and location, or [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled);
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) if
    /// [`join_timeout`](JoinHandle::join_timeout) already took the result.
    pub fn join(mut self) -> Result<R, Error> {
        let Some(thread) = self.thread.take() else {
            return Err(already_taken());
        };
        // The driver publishes the outcome before its OS thread returns, so joining the OS
        // thread is the whole wait: one wake-up, where waiting on `ready` first and joining
        // after costs a second sleep and wake-up while the thread finishes exiting.
        let _ = thread.join();
        self.outcome.slot.lock().take().unwrap_or_else(|| {
            Err(Error::unavailable(
                "the handler thread ended without a result; this is a bug in ythread, please report it",
            ))
        })
    }

    /// Waits at most `timeout` for the handler. The handle stays usable after a timeout.
    ///
    /// # Errors
    /// [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut) if the handler is still running
    /// (the handler goes on), otherwise as [`JoinHandle::join`]. Once a result has been taken,
    /// further calls return [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, Error> {
        if self.thread.is_none() {
            return Err(already_taken());
        }
        // A timeout too long to represent (`Duration::MAX`) means no deadline at all.
        let deadline = Instant::now().checked_add(timeout);
        let mut slot = self.outcome.slot.lock();
        while slot.is_none() {
            let Some(deadline) = deadline else {
                self.outcome.ready.wait(&mut slot);
                continue;
            };
            if self
                .outcome
                .ready
                .wait_until(&mut slot, deadline)
                .timed_out()
                && slot.is_none()
            {
                return Err(Error::timed_out("the handler thread", timeout));
            }
        }
        let result = slot.take().expect("outcome present after wait");
        drop(slot);
        self.reap();
        result
    }

    /// Asks the handler to stop: it unwinds at its next yield point (its destructors run,
    /// its sockets close) and `join` reports [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled).
    ///
    /// A handler blocked in I/O notices only when it next yields; give its sockets timeouts.
    /// Work already running is not interrupted. A handler that returns before yielding again
    /// keeps its result.
    pub fn cancel(&self) {
        self.control.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether the handler has finished (its result is ready for `join`).
    pub fn is_finished(&self) -> bool {
        self.outcome.slot.lock().is_some()
    }

    /// The underlying OS thread, for its name and id.
    pub fn thread(&self) -> Option<&std::thread::Thread> {
        self.thread.as_ref().map(|t| t.thread())
    }

    /// The outcome is published just before the OS thread returns; joining it makes sure the
    /// thread's locals are gone too. The thread cannot panic past the outcome, so this is quick.
    fn reap(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn already_taken() -> Error {
    Error::unavailable("this handler's result was already taken by an earlier join")
}

impl<R> std::fmt::Debug for JoinHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("thread", &self.thread())
            .field("finished", &self.is_finished())
            .finish()
    }
}
