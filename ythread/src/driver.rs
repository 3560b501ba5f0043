//! The driver loop: runs one handler as a coroutine on the current OS thread.
//!
//! This is the article's `run()` method: resume the handler; when it yields a work descriptor,
//! hand it to the strategy; resume the handler with the outcome; stop when it returns. The
//! coroutine never leaves its OS thread, so the handler's thread-locals, blocking sockets and
//! locks behave exactly as on a plain thread.
//!
//! A strategy that panics instead of running the work cannot give the handler a result, so
//! the driver *abandons* the handler: it resumes it with [`Resume::Unwind`], which unwinds it
//! from its yield point (running its destructors, as a cancellation does), and `join` reports
//! the strategy's panic. Work that the handler yields while it is unwinding (from a
//! destructor) still runs, and is never answered with another unwind, which would abort the
//! process from inside that destructor: if its strategy panics as well, the work fails with
//! the panic as its error. A handler that catches the unwind is unwound again at its next
//! yield, and whatever it returns, `join` reports the first error.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use corosensei::stack::{DefaultStack, Stack};
use corosensei::{Coroutine, CoroutineResult};

use crate::handler_state::{Control, Publisher};
use crate::os_thread::Job;
use crate::unwind::{catch_handler, drop_quietly, panic_error};
use crate::yielder::{CoYielder, Resume, UnwindSignal, WorkPtr, Yielder};
use crate::{Error, Executor, Work, cancel, overflow, stack_pool};

/// One handler, ready to be driven on whichever OS thread runs it.
pub(crate) struct HandlerJob<F, R> {
    /// `None` once driven: the driver drops everything the handler owned before publishing.
    parts: Option<Parts<F>>,
    publisher: Publisher<R>,
}

struct Parts<F> {
    handler: F,
    executor: Executor,
    control: Arc<Control>,
    stack: DefaultStack,
    /// The stack's usable bytes, its size class in the stack pool.
    stack_class: usize,
}

impl<F, R> HandlerJob<F, R>
where
    F: FnOnce(&Yielder<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    pub(crate) fn new(
        handler: F,
        executor: Executor,
        control: Arc<Control>,
        stack: DefaultStack,
        stack_class: usize,
        publisher: Publisher<R>,
    ) -> Self {
        HandlerJob {
            parts: Some(Parts {
                handler,
                executor,
                control,
                stack,
                stack_class,
            }),
            publisher,
        }
    }
}

impl<F, R> Job for HandlerJob<F, R>
where
    F: FnOnce(&Yielder<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    fn run(&mut self) {
        if let Some(parts) = self.parts.take() {
            let result = drive(parts);
            self.publisher.set(result);
        }
    }

    fn publish(self: Box<Self>) {
        // Dropping the publisher publishes; and if `run` never set a result (it panicked),
        // publishes an error saying so.
        drop(self);
    }
}

/// Drives the handler to its end. Returns its result, or why it did not return one.
fn drive<F, R>(parts: Parts<F>) -> Result<R, Error>
where
    F: FnOnce(&Yielder<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    let Parts {
        handler,
        executor,
        control,
        stack,
        stack_class,
    } = parts;
    let _watch = overflow::watch(stack.limit().get(), stack_class);
    // Strategies find the handler's cancellation here while they run its work.
    let _cancellation = cancel::enter(&control);
    let co_executor = executor.clone();
    let mut coroutine = Coroutine::with_stack(stack, move |co: &CoYielder, _: Resume| {
        handler(&Yielder::new(co, &control, &co_executor))
    });
    let mut abandoned = None;
    let driven = catch_handler(
        || {
            let mut answer = Resume::Proceed;
            loop {
                match coroutine.resume(answer) {
                    CoroutineResult::Yield(mut work) => {
                        answer = apply(&executor, &mut work, &mut abandoned);
                    }
                    CoroutineResult::Return(result) => return result,
                }
            }
        },
        |payload| {
            let error = if payload.is::<UnwindSignal>() {
                Error::cancelled()
            } else {
                panic_error("the handler".to_owned(), payload.as_ref())
            };
            drop_quietly(payload);
            error
        },
    );
    // The first error stands: a handler abandoned by its strategy may have caught the unwind
    // and returned, or panicked on its way out.
    let outcome = match (abandoned, driven) {
        (None, driven) => driven,
        (Some(error), Ok(ignored)) => {
            drop_quietly(ignored);
            Err(error)
        }
        (Some(error), Err(_)) => Err(error),
    };
    if coroutine.done() {
        stack_pool::give_back(stack_class, coroutine.into_stack());
    } else {
        // Unreachable: `resume` only comes back without the coroutine done by yielding, and
        // the loop answers every yield. Should it happen, leaking the suspended frames is
        // the one safe way out: unwinding them by force could abort the process.
        std::mem::forget(coroutine);
    }
    outcome
}

/// Hands one yielded descriptor to the strategy; returns how to resume the handler.
///
/// The panic count is per OS thread, and the suspended coroutine runs on this one: so outside
/// the strategy's own panic the thread is "panicking" here exactly when the handler yielded
/// while unwinding (from a destructor). Such a handler must never be unwound again. The
/// count is read only off the common path: every yield comes through here.
#[inline(always)]
fn apply(executor: &Executor, work: &mut WorkPtr, abandoned: &mut Option<Error>) -> Resume {
    if abandoned.is_some() && !std::thread::panicking() {
        // The handler caught the unwind and yielded again: unwind it again, as a cancelled
        // handler is.
        return Resume::Unwind;
    }
    // SAFETY: the coroutine that yielded `work` stays suspended until the caller resumes it
    // with the answer returned below, and the reference dies before this function returns.
    let work = unsafe { work.as_work() };
    // Already inside `catch_handler`, so the hook records the location (and prints it).
    let applied = panic::catch_unwind(AssertUnwindSafe(|| executor.apply(&mut *work)));
    let Err(payload) = applied else {
        return Resume::Proceed;
    };
    strategy_panicked(executor, work, payload, abandoned)
}

/// The strategy panicked on `work`: fail the work of a handler already unwinding, abandon any
/// other.
#[cold]
fn strategy_panicked(
    executor: &Executor,
    work: &mut dyn Work,
    payload: Box<dyn std::any::Any + Send>,
    abandoned: &mut Option<Error>,
) -> Resume {
    // `catch_unwind` has taken the strategy's panic off the count: what is left is the
    // handler's.
    let unwinding = std::thread::panicking();
    let error = panic_error(format!("the {} strategy", executor.describe()), &*payload);
    drop_quietly(payload);
    if unwinding {
        work.fail(error);
        Resume::Proceed
    } else {
        *abandoned = Some(error);
        Resume::Unwind
    }
}
