//! `YieldableThread` and its `Builder`: where a handler starts.
//!
//! A spawn takes a coroutine stack from the pool (`stack_pool.rs`), packs the handler into a
//! job for the driver (`driver.rs`), and gives the job to a parked OS thread that fits, or to
//! a new one (`os_thread.rs`). The returned [`JoinHandle`] waits on the outcome the driver
//! publishes (`handler_state.rs`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::driver::HandlerJob;
use crate::handler_state::{Control, Outcome, Publisher};
use crate::join::JoinHandle;
use crate::os_thread::{self, DEFAULT_IDLE_TIMEOUT, Placement};
use crate::yielder::Yielder;
use crate::{Executor, stack_pool};

/// Default usable size of a handler's coroutine stack: 1 MiB, committed page by page as used.
pub const DEFAULT_STACK_SIZE: usize = 1 << 20;

/// Starts handler threads. See [`YieldableThread::spawn`] and [`YieldableThread::builder`].
#[derive(Debug)]
pub struct YieldableThread;

impl YieldableThread {
    /// Runs `handler` on its own OS thread as a coroutine whose yielded work goes to
    /// `executor`. The thread is a parked one that ran an earlier handler if one is idle,
    /// otherwise a new one; see [`Builder::reuse_thread`] for what reuse means.
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
#[must_use = "a builder starts nothing until `spawn` is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: usize,
    thread_stack_size: Option<usize>,
    reuse_thread: bool,
    idle_timeout: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Defaults: unnamed, a [`DEFAULT_STACK_SIZE`] coroutine stack, the OS thread stack size
    /// Rust's `std::thread` would use, on a reused thread that parks for
    /// [`DEFAULT_IDLE_TIMEOUT`] afterwards.
    pub fn new() -> Self {
        Builder {
            name: None,
            stack_size: DEFAULT_STACK_SIZE,
            thread_stack_size: None,
            reuse_thread: true,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// The OS thread's name (shown by debuggers, `top -H` and panic messages).
    ///
    /// `std::thread::current().name()` returns it in full; the kernel keeps its first 15
    /// bytes. A reused thread serves only handlers of the same name, as the name std reports
    /// is fixed when the thread starts; the kernel's name is set again for every handler. An
    /// unnamed handler's thread is called `ythread` by the kernel. So give the handlers of one
    /// kind one name (`"conn"`, not `"conn-1234"`): a name per handler starts a new OS thread
    /// every time, which on a server's accept path cost 2.5 times the CPU per connection.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Usable bytes of the handler's coroutine stack, where the handler's own frames live.
    /// Raise it if a handler recurses deeply or keeps large arrays on its stack. Rounded up to
    /// a power of two (at least 16 KiB), the classes the stack pool keeps.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Bytes of the OS thread's own stack, where the driver and inline work run. A reused
    /// thread serves only handlers that ask for the same size.
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.thread_stack_size = Some(bytes);
        self
    }

    /// Whether the handler may run on a parked thread that ran an earlier handler, and its
    /// thread may park for a later one (default `true`).
    ///
    /// Reuse saves starting and joining an OS thread (tens of microseconds) per spawn. What it
    /// changes: thread-locals belong to the thread, so a value a handler leaves in one is
    /// there for the next handler on that thread, and thread-local destructors run only when
    /// the thread exits, not when `join` returns. With `false` the handler gets a new thread
    /// that exits after it, and `join` returns once the thread has exited, its thread-locals
    /// dropped.
    pub fn reuse_thread(mut self, reuse: bool) -> Self {
        self.reuse_thread = reuse;
        self
    }

    /// How long the handler's thread, once the handler has finished, stays parked waiting
    /// for another handler before it exits (default [`DEFAULT_IDLE_TIMEOUT`], 10 s).
    /// `Duration::ZERO` lets it exit at once; `Duration::MAX` keeps it parked for good (at
    /// most [`MAX_PARKED_THREADS`](crate::MAX_PARKED_THREADS) threads are parked: the
    /// longest-parked one exits to make room).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Starts the handler; see [`YieldableThread::spawn`].
    ///
    /// # Errors
    /// When the name contains a NUL byte, or the OS cannot map the coroutine stack or start a
    /// thread.
    pub fn spawn<F, R>(self, executor: &Executor, handler: F) -> io::Result<JoinHandle<R>>
    where
        F: FnOnce(&Yielder<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        if self.name.as_deref().is_some_and(|name| name.contains('\0')) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a thread name cannot contain a NUL byte; remove it from the name given to \
                 Builder::name",
            ));
        }
        let stack_class = stack_pool::class_of(self.stack_size)?;
        let stack = stack_pool::take(stack_class)?;
        let control = Arc::new(Control::new());
        let outcome = Arc::new(Outcome::new());
        let job = HandlerJob::new(
            handler,
            executor.clone(),
            Arc::clone(&control),
            stack,
            stack_class,
            Publisher::new(Arc::clone(&outcome)),
        );
        let placement = Placement {
            name: self.name,
            stack_size: self.thread_stack_size,
            reuse: self.reuse_thread,
            idle_timeout: self.idle_timeout,
        };
        let started = os_thread::start(placement, Box::new(job))?;
        Ok(JoinHandle::new(
            started.thread,
            started.exits,
            control,
            outcome,
        ))
    }
}
