//! Waiting for a handler, with or without a bound, and cancelling it.
//!
//! A handler's OS thread usually outlives the handler (it parks for the next one), so joining
//! waits for the handler's *outcome*, which its driver publishes only once everything the
//! handler owned has been dropped. A thread that will not be reused
//! ([`Builder::reuse_thread(false)`](crate::Builder::reuse_thread)) is joined as an OS thread
//! too, so that its thread-locals are gone as well when `join` returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Error;
use crate::handler_state::{Control, Outcome};

/// Owns a yieldable thread: join it, join it with a bound, or cancel it.
///
/// Dropping the handle detaches the handler, as with `std::thread::JoinHandle`.
pub struct JoinHandle<R> {
    /// The OS thread the handler runs on; `None` once the result has been taken.
    thread: Option<std::thread::Thread>,
    /// Set when the OS thread exits after this handler: joined before the result is handed out.
    exits: Option<std::thread::JoinHandle<()>>,
    control: Arc<Control>,
    outcome: Arc<Outcome<R>>,
}

impl<R> JoinHandle<R> {
    pub(crate) fn new(
        thread: std::thread::Thread,
        exits: Option<std::thread::JoinHandle<()>>,
        control: Arc<Control>,
        outcome: Arc<Outcome<R>>,
    ) -> Self {
        JoinHandle {
            thread: Some(thread),
            exits,
            control,
            outcome,
        }
    }

    /// Waits for the handler and returns what it returned. When it returns, the handler has
    /// finished and everything it owned has been dropped.
    ///
    /// # Errors
    /// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) with the handler's panic message
    /// and location, or [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled);
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) if
    /// [`join_timeout`](JoinHandle::join_timeout) already took the result.
    pub fn join(mut self) -> Result<R, Error> {
        if self.thread.is_none() {
            return Err(already_taken());
        }
        if let Some(exits) = self.exits.take() {
            // The outcome is published before the thread returns, so joining the OS thread is
            // the whole wait: one wake-up instead of one for the outcome and one for the exit.
            let _ = exits.join();
        }
        self.take_by(None).unwrap_or_else(|| {
            // Unreachable: the driver publishes from a drop guard, and without a deadline
            // `take_by` returns only once the outcome is published.
            Err(Error::unavailable(
                "the handler thread ended without a result; this is a bug in ythread, please \
                 report it",
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
        self.take_by(deadline)
            .unwrap_or_else(|| Err(Error::timed_out("the handler thread", timeout)))
    }

    /// Asks the handler to stop: it unwinds at its next yield point (its destructors run,
    /// its sockets close) and `join` reports [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled).
    ///
    /// A handler blocked in I/O notices only when it next yields; give its sockets timeouts.
    /// A handler whose work waits in a strategy's line leaves the line at once, its work never
    /// run; one whose work runs in a worker process has that worker killed (the pool replaces
    /// it). Work running in this process is not interrupted: it finishes and its result is
    /// discarded. A handler that returns before yielding again keeps its result.
    pub fn cancel(&self) {
        self.control.cancel();
    }

    /// Whether the handler has finished (its result is ready for `join`).
    pub fn is_finished(&self) -> bool {
        self.thread.is_some() && self.outcome.is_published()
    }

    /// The OS thread the handler runs on, for its name and id; `None` once the result has
    /// been taken by [`join_timeout`](JoinHandle::join_timeout).
    pub fn thread(&self) -> Option<&std::thread::Thread> {
        self.thread.as_ref()
    }

    /// Takes the outcome once published (waiting until `deadline`), and then lets go of the
    /// thread: joins it first if it exits after this handler.
    fn take_by(&mut self, deadline: Option<Instant>) -> Option<Result<R, Error>> {
        let result = self.outcome.take_by(deadline)?;
        if let Some(exits) = self.exits.take() {
            // Published just before the thread returns: this wait is short.
            let _ = exits.join();
        }
        self.thread = None;
        Some(result)
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
