//! How a strategy learns that the handler whose work it holds was cancelled.
//!
//! [`JoinHandle::cancel`](crate::JoinHandle::cancel) sets the handler's flag. A handler that is
//! running notices at its next yield; one whose work waits in a strategy's line, or runs in a
//! worker process, is asleep inside the strategy and would notice only when the work is done.
//! So the driver makes the handler's [`Cancellation`] current on its thread while the handler
//! runs, and a strategy that blocks registers what to do on cancel: leave the line,
//! kill the worker. In-process work that is already running cannot be stopped safely; it
//! finishes, and the handler unwinds when it is resumed, discarding the result.
//!
//! Trade-off: one thread-local read per piece of work the strategy chooses to make
//! cancellable, and a lock only to register and to cancel.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// What to run when the handler is cancelled.
type OnCancel = Box<dyn FnOnce() + Send>;

/// The cancel state of one handler, shared by its driver, its `JoinHandle` and the strategy
/// running its work.
#[derive(Default)]
pub(crate) struct CancelState {
    cancelled: AtomicBool,
    on_cancel: Mutex<Option<OnCancel>>,
}

impl CancelState {
    pub(crate) fn new() -> Self {
        CancelState::default()
    }

    /// Whether the handler was asked to stop.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Asks the handler to stop, and runs what the strategy registered, if anything.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.run_registered();
    }

    /// Runs what is registered, under the lock: a guard that drops meanwhile waits for it, so
    /// a closure never runs after its guard is gone (when the strategy has moved on).
    fn run_registered(&self) {
        let mut slot = self.on_cancel.lock();
        if let Some(on_cancel) = slot.take() {
            on_cancel();
        }
    }
}

thread_local! {
    /// The cancel state of the handler whose work this driver thread is applying.
    static CURRENT: RefCell<Option<Arc<CancelState>>> = const { RefCell::new(None) };
}

/// Makes `state` current on this thread until the guard drops: the driver does it around
/// each `apply`.
pub(crate) fn enter(state: &Arc<CancelState>) -> Current {
    let previous = CURRENT.with(|c| c.replace(Some(Arc::clone(state))));
    Current(previous)
}

/// Restores the previous current state (nested work through another executor).
pub(crate) struct Current(Option<Arc<CancelState>>);

impl Drop for Current {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The cancellation of the handler whose work a strategy is running on this thread.
///
/// ```
/// use ythread::{Cancellation, CpuApply, Work};
///
/// struct Patient;
/// impl CpuApply for Patient {
///     fn apply(&self, work: &mut dyn Work) {
///         let cancellation = Cancellation::current();
///         let _armed = cancellation.as_ref().map(|c| c.on_cancel(|| { /* wake the waiter */ }));
///         work.run_here();
///     }
///     fn describe(&self) -> String {
///         "patient".into()
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Cancellation {
    state: Arc<CancelState>,
}

impl Cancellation {
    /// The cancellation of the handler running on this thread (its driver sets it while the
    /// handler runs, so strategies see it in `apply`, as does [`Executor::run`] called from
    /// the handler), or `None` on any other thread, as under `Executor::run` from `main`.
    ///
    /// [`Executor::run`]: crate::Executor::run
    pub fn current() -> Option<Cancellation> {
        CURRENT.with(|c| {
            c.borrow().as_ref().map(|state| Cancellation {
                state: Arc::clone(state),
            })
        })
    }

    /// Whether the handler was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.state.is_cancelled()
    }

    /// Runs `on_cancel` (on the cancelling thread) if the handler is cancelled before the
    /// returned guard drops; at once, on this thread, if it already is. It never runs after
    /// the guard has dropped: dropping the guard waits for a run in progress. Keep it short
    /// and never register or drop a guard from inside it. Registering again replaces what was
    /// registered (one registration per handler: nest no cancellable waits).
    ///
    /// Bind the guard to a named variable (`let _armed = ...`) for as long as the wait
    /// lasts: `let _ = c.on_cancel(..)` drops it on the spot, which unregisters at once.
    pub fn on_cancel(&self, on_cancel: impl FnOnce() + Send + 'static) -> CancelGuard {
        *self.state.on_cancel.lock() = Some(Box::new(on_cancel));
        // A cancel that came before the registration finds the slot empty; this catches it.
        if self.state.is_cancelled() {
            self.state.run_registered();
        }
        CancelGuard {
            state: Arc::clone(&self.state),
        }
    }
}

impl std::fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellation")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Unregisters what [`Cancellation::on_cancel`] registered when dropped.
///
/// Keep it in a named binding (`let _armed = ...`) until the wait is over; dropping it at once
/// (`let _ = ...`, or not binding it) unregisters at once.
#[must_use = "dropping the guard unregisters the cancel action at once; bind it with `let _armed = ...` for as long as the wait lasts"]
pub struct CancelGuard {
    state: Arc<CancelState>,
}

impl std::fmt::Debug for CancelGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelGuard")
            .field("cancelled", &self.state.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.state.on_cancel.lock().take();
    }
}
