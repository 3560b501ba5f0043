//! The yield point: how a handler hands CPU work to its driver.
//!
//! The descriptor travels from the coroutine to the driver as a pointer into the suspended
//! coroutine's stack frame (this file and `driver.rs` hold that `unsafe`). The driver answers
//! each yield with a [`Resume`]: go on, or unwind, which is how a handler whose strategy
//! panicked is ended. ythread never unwinds a suspended coroutine by force (corosensei's
//! `force_unwind`): a destructor that yields during such an unwind would be unwound a second
//! time from inside the destructor, which aborts the process.

use std::ptr::NonNull;

use crate::handler_state::Control;
use crate::work::{ClosureWork, TaskWork, Work};
use crate::{Error, Executor, Task, portable};

/// A descriptor in flight from a suspended coroutine to its driver.
///
/// The lifetime of the borrowed descriptor is erased because corosensei's yield type must be
/// `'static`; [`WorkPtr::erase`] documents why the pointer stays valid while the driver uses it.
pub(crate) struct WorkPtr(NonNull<dyn Work>);

impl WorkPtr {
    #[inline]
    fn erase<'a>(work: &'a mut (dyn Work + 'a)) -> Self {
        let ptr: NonNull<dyn Work + 'a> = NonNull::from(work);
        // SAFETY: this only changes the trait object's lifetime bound; the layout of the fat
        // pointer is the same. The erased lifetime is restored in spirit by the protocol:
        // the descriptor lives in the frame of `Yielder::submit`, which is suspended inside
        // `suspend` until the driver resumes it, and the driver (`driver::drive`) uses the
        // pointer only between receiving it and that resume. The frame cannot be popped in
        // between: a suspended coroutine only unwinds when it is resumed or dropped, and the
        // driver does neither while it holds the pointer.
        WorkPtr(unsafe {
            std::mem::transmute::<NonNull<dyn Work + 'a>, NonNull<dyn Work + 'static>>(ptr)
        })
    }

    /// The descriptor, for the driver.
    ///
    /// # Safety
    /// Call only between receiving this pointer from `resume` and the next `resume` of the
    /// coroutine that yielded it, and drop the returned reference before that resume.
    pub(crate) unsafe fn as_work(&mut self) -> &mut dyn Work {
        // SAFETY: by this function's contract the coroutine is suspended in `submit`, whose
        // frame owns the descriptor and touches it again only after it is resumed; so the
        // pointer is valid, aligned, and nothing else accesses the descriptor meanwhile.
        unsafe { self.0.as_mut() }
    }
}

/// The driver's answer to a yield.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// The work has its outcome (or the coroutine is starting): go on.
    Proceed,
    /// The work's strategy panicked: unwind the handler from its yield point.
    Unwind,
}

pub(crate) type CoYielder = corosensei::Yielder<Resume, WorkPtr>;

/// What a handler uses to yield CPU work. It exists only inside the handler's coroutine and
/// cannot leave its thread:
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// let exec = ythread::Executor::inline();
/// ythread::YieldableThread::spawn(&exec, |y| needs_send(y));
/// ```
pub struct Yielder<'a> {
    co: &'a CoYielder,
    control: &'a Control,
    executor: &'a Executor,
}

impl std::fmt::Debug for Yielder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Yielder")
            .field("strategy", &self.strategy())
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// Unwinds a cancelled or abandoned handler; recognised by the driver, never shown to users.
pub(crate) struct UnwindSignal;

impl<'a> Yielder<'a> {
    pub(crate) fn new(co: &'a CoYielder, control: &'a Control, executor: &'a Executor) -> Self {
        Yielder {
            co,
            control,
            executor,
        }
    }

    /// Yields `task(args)` to the thread's strategy and returns its result: the article's
    /// `result = yield sumn, (n,)` as `let result = y.apply(sumn, n)?;`.
    ///
    /// The handler is suspended while the work runs; the strategy decides where it runs.
    ///
    /// # Errors
    /// A panic in the task comes back as [`ErrorKind::Panicked`](crate::ErrorKind::Panicked)
    /// and the handler goes on; strategies add their own kinds (worker died, timed out, ...).
    ///
    /// # Panics
    /// Does not return if the handler was [cancelled](crate::JoinHandle::cancel), or if the
    /// strategy panicked instead of running the work: it unwinds the handler (running its
    /// destructors) and `join` reports the cancellation or the strategy's panic. Work yielded
    /// by a destructor while the handler unwinds still runs, and never unwinds it again: if
    /// its strategy panics, that work fails with [`ErrorKind::Panicked`](crate::ErrorKind::Panicked).
    #[inline(always)]
    pub fn apply<T: Task>(&self, _task: T, args: T::Args) -> Result<T::Output, Error> {
        portable::check_task::<T>()?;
        let mut work = TaskWork::<T>::new(args);
        self.submit(&mut work);
        work.into_outcome(self.executor)
    }

    /// Yields the closure `f` as work: for code that only in-process strategies can run.
    ///
    /// `f` may borrow the handler's locals; it may run on another thread (hence `Send`), so
    /// it cannot capture thread-bound values, the yielder itself, or return them:
    ///
    /// ```compile_fail
    /// # let exec = ythread::Executor::inline();
    /// ythread::YieldableThread::spawn(&exec, |y| {
    ///     let shared = std::rc::Rc::new(1);
    ///     y.run(move || *shared) // `Rc` is not `Send`
    /// });
    /// ```
    /// ```compile_fail
    /// # let exec = ythread::Executor::inline();
    /// ythread::YieldableThread::spawn(&exec, |y| y.run(|| y.is_cancelled()).is_ok()); // `Yielder` is not `Sync`
    /// ```
    /// ```compile_fail
    /// # let exec = ythread::Executor::inline();
    /// ythread::YieldableThread::spawn(&exec, |y| { let _ = y.run(|| std::rc::Rc::new(1)); }); // result not `Send`
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::NotPortable`](crate::ErrorKind::NotPortable) under the subprocess
    /// strategy; [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) if `f` panics.
    ///
    /// # Panics
    /// Unwinds the handler if it was cancelled, as [`Yielder::apply`] does.
    #[inline(always)]
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R, Error> {
        portable::check_closure(&f)?;
        let mut work = ClosureWork::new(f);
        self.submit(&mut work);
        work.into_outcome(self.executor)
    }

    /// Whether the handler has been asked to stop. Long loops that rarely yield can poll it.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.control.is_cancelled()
    }

    /// The strategy this handler's work goes to, in its configuration form.
    pub fn strategy(&self) -> String {
        self.executor.describe()
    }

    // Inlined into the yield site (with `apply` and `run`) on purpose: a `ret` out of a frame
    // of its own between the resume and the next suspend unbalances the CPU's return-address
    // predictor, and the two mispredictions per yield cost more than the stack switches.
    #[inline(always)]
    fn submit(&self, work: &mut dyn Work) {
        self.unwind_if_cancelled();
        if self.co.suspend(WorkPtr::erase(work)) == Resume::Unwind {
            unwind_handler();
        }
        self.unwind_if_cancelled();
    }

    #[inline]
    fn unwind_if_cancelled(&self) {
        // A destructor may yield while the handler is already unwinding (from this cancel or
        // a panic); unwinding again out of a destructor would abort the process. Let that
        // work run: the handler is on its way out anyway.
        if self.is_cancelled() && !std::thread::panicking() {
            unwind_handler();
        }
    }
}

/// Unwinds a cancelled or abandoned handler; out of line, as it happens about once per
/// handler.
#[cold]
#[inline(never)]
fn unwind_handler() -> ! {
    // `resume_unwind` skips the panic hook: this is not a crash to report (the driver reports
    // the cancellation, or the strategy's panic, which the hook printed).
    std::panic::resume_unwind(Box::new(UnwindSignal))
}
