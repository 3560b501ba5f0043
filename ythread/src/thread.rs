//! `YieldableThread`: an OS thread whose driver runs one handler as a stackful coroutine.
//!
//! The driver loop is the article's `run()` method: resume the handler; when it yields a work
//! descriptor, hand it to the strategy; resume the handler with the outcome; stop when it
//! returns. The coroutine never leaves its OS thread, so the handler's thread-locals, blocking
//! sockets and locks behave exactly as on a plain thread.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use corosensei::stack::Stack;
use corosensei::{Coroutine, CoroutineResult};
use parking_lot::{Condvar, Mutex};

use crate::join::JoinHandle;
use crate::unwind::{catch_handler, panic_error};
use crate::yielder::{CancelSignal, CoYielder, Yielder};
use crate::{Error, Executor, overflow, stack_pool};

/// Default usable size of a handler's coroutine stack: 1 MiB, committed page by page as used.
pub const DEFAULT_STACK_SIZE: usize = 1 << 20;

/// State shared by a handler thread and its [`JoinHandle`].
pub(crate) struct Control {
    pub(crate) cancelled: AtomicBool,
}

/// Where a handler's outcome waits for `join`.
pub(crate) struct Outcome<R> {
    pub(crate) slot: Mutex<Option<Result<R, Error>>>,
    pub(crate) ready: Condvar,
}

/// Starts handler threads. See [`YieldableThread::spawn`] and [`YieldableThread::builder`].
#[derive(Debug)]
pub struct YieldableThread;

impl YieldableThread {
    /// Runs `handler` on a new OS thread as a coroutine whose yielded work goes to `executor`.
    ///
    /// ```
    /// use ythread::{Executor, YieldableThread};
    /// ythread::task!(fn sumn(n: u64) -> u64 { (1..=n).sum() });
    ///
    /// let handle = YieldableThread::spawn(&Executor::inline(), |y| {
    ///     let total = y.apply(sumn, 100)?;   // yield the CPU work
    ///     Ok::<_, ythread::Error>(total * 2) // back on the handler's stack
    /// });
    /// assert_eq!(handle.join().unwrap().unwrap(), 10100);
    /// ```
    ///
    /// Like `std::thread::spawn`, the handler must own what it uses (`'static`):
    ///
    /// ```compile_fail
    /// let local = String::from("borrowed");
    /// let exec = ythread::Executor::inline();
    /// ythread::YieldableThread::spawn(&exec, |_| local.len());
    /// ```
    ///
    /// # Panics
    /// If the OS cannot start a thread or map a stack (use [`Builder::spawn`] to get the
    /// error instead). A panic in `handler` ends only its thread: `join` returns it as
    /// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked).
    pub fn spawn<F, R>(executor: &Executor, handler: F) -> JoinHandle<R>
    where
        F: FnOnce(&Yielder<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        Builder::new().spawn(executor, handler).expect(
            "could not start a yieldable thread; check the process's thread and memory limits",
        )
    }

    /// A builder to name the thread and size its stacks.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

/// Configures a yieldable thread before it starts.
#[derive(Clone, Debug)]
pub struct Builder {
    name: Option<String>,
    stack_size: usize,
    thread_stack_size: Option<usize>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Defaults: unnamed, a [`DEFAULT_STACK_SIZE`] coroutine stack, the OS thread stack size
    /// Rust's `std::thread` would use.
    pub fn new() -> Self {
        Builder {
            name: None,
            stack_size: DEFAULT_STACK_SIZE,
            thread_stack_size: None,
        }
    }

    /// The OS thread's name (shown by debuggers, `top -H` and panic messages).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Usable bytes of the handler's coroutine stack, where the handler's own frames live.
    /// Raise it if a handler recurses deeply or keeps large arrays on its stack.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Bytes of the OS thread's own stack, where the driver and inline work run.
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.thread_stack_size = Some(bytes);
        self
    }

    /// Starts the thread; see [`YieldableThread::spawn`].
    ///
    /// # Errors
    /// When the OS cannot map the coroutine stack or start the thread.
    pub fn spawn<F, R>(self, executor: &Executor, handler: F) -> io::Result<JoinHandle<R>>
    where
        F: FnOnce(&Yielder<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        let stack = stack_pool::take(self.stack_size)?;
        let control = Arc::new(Control {
            cancelled: AtomicBool::new(false),
        });
        let outcome = Arc::new(Outcome {
            slot: Mutex::new(None),
            ready: Condvar::new(),
        });
        let mut os = std::thread::Builder::new();
        if let Some(name) = self.name {
            os = os.name(name);
        }
        if let Some(bytes) = self.thread_stack_size {
            os = os.stack_size(bytes);
        }
        let job = Job {
            executor: executor.clone(),
            control: Arc::clone(&control),
            stack_size: self.stack_size,
        };
        let publish = Arc::clone(&outcome);
        let thread = os.spawn(move || {
            let result = job.drive(stack, handler);
            *publish.slot.lock() = Some(result);
            publish.ready.notify_all();
        })?;
        Ok(JoinHandle::new(thread, control, outcome))
    }
}

/// What a driver needs besides the handler and its stack.
struct Job {
    executor: Executor,
    control: Arc<Control>,
    stack_size: usize,
}

impl Job {
    /// The driver loop. Returns the handler's result, or why it did not return one.
    fn drive<F, R>(self, stack: corosensei::stack::DefaultStack, handler: F) -> Result<R, Error>
    where
        F: FnOnce(&Yielder<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        let Job {
            executor,
            control,
            stack_size,
        } = self;
        let (co_executor, co_control) = (executor.clone(), Arc::clone(&control));
        let _watch = overflow::watch(stack.limit().get(), stack_size);
        let mut coroutine = Coroutine::with_stack(stack, move |co: &CoYielder, ()| {
            handler(&Yielder::new(co, &co_control, &co_executor))
        });
        let driven = catch_handler(|| {
            loop {
                match coroutine.resume(()) {
                    CoroutineResult::Yield(mut work) => {
                        // Already inside `catch_handler`, so the hook records the location.
                        let applied = panic::catch_unwind(AssertUnwindSafe(|| {
                            // SAFETY: the coroutine that yielded `work` stays suspended until
                            // the next `resume` above, and the reference dies with this call.
                            executor.apply(unsafe { work.as_work() });
                        }));
                        if let Err(payload) = applied {
                            let what = format!("the {} strategy", executor.describe());
                            return Err(panic_error(what, payload.as_ref()));
                        }
                    }
                    CoroutineResult::Return(result) => return Ok(result),
                }
            }
        });
        let outcome = driven.unwrap_or_else(|payload| {
            Err(if payload.is::<CancelSignal>() {
                Error::cancelled()
            } else {
                panic_error("the handler".to_owned(), payload.as_ref())
            })
        });
        // A coroutine still suspended (its strategy panicked) is unwound here, inside a catch:
        // corosensei's `Drop` aborts the process if the unwinding panics, which it does when
        // the handler catches the unwind and panics with a payload of its own. The first error
        // stands; the hook has printed the second panic.
        let _ = catch_handler(|| coroutine.force_unwind());
        // Returned, panicked or unwound: the coroutine is done and its stack can serve again.
        if coroutine.done() {
            stack_pool::give_back(stack_size, coroutine.into_stack());
        }
        outcome
    }
}
