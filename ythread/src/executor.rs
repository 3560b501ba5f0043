//! Strategies (`cpu_apply`) and the shareable [`Executor`] handle that carries one.

use std::fmt;
use std::sync::Arc;

use crate::work::{ClosureWork, EncodedWork, TaskWork, Work};
use crate::{Error, Metrics, Task, TaskRegistry, portable};

/// A way to run yielded CPU work: the article's `cpu_apply`.
///
/// An implementation receives each descriptor on the handler's own OS thread (the driver) and
/// must leave exactly one outcome in it before returning; see [`Work`]. It may block the
/// calling thread for as long as the work takes: that thread's handler is suspended anyway.
pub trait CpuApply: Send + Sync + 'static {
    /// Runs `work` somewhere and stores its outcome in it.
    fn apply(&self, work: &mut dyn Work);

    /// The strategy in its configuration form, as in `inline` or `rayon:4`, for messages.
    fn describe(&self) -> String;

    /// What the strategy has run and what waits in it now. The default records nothing.
    fn metrics(&self) -> Metrics {
        Metrics::unrecorded(self.describe())
    }
}

/// The default strategy: run the work on the handler's own thread, like a plain call.
///
/// No parallelism bound, no isolation, no serialisation; a yield costs two stack switches
/// (a few nanoseconds). A panic in the work comes back as an error at the yield point.
#[derive(Clone, Copy, Debug, Default)]
pub struct Inline;

impl CpuApply for Inline {
    #[inline]
    fn apply(&self, work: &mut dyn Work) {
        work.run_here();
    }

    fn describe(&self) -> String {
        "inline".to_owned()
    }
}

/// A cheap, shareable handle to one strategy. Clone it into every handler thread.
///
/// The strategy lives as long as its last handle: dropping the last clone of a subprocess
/// executor shuts its worker pool down.
#[derive(Clone)]
pub struct Executor {
    strategy: Arc<dyn CpuApply>,
}

impl Executor {
    /// An executor for `strategy`.
    pub fn new(strategy: impl CpuApply) -> Self {
        Executor {
            strategy: Arc::new(strategy),
        }
    }

    /// The inline strategy.
    pub fn inline() -> Self {
        Self::new(Inline)
    }

    /// The strategy in its configuration form, as in `rayon:4`.
    pub fn describe(&self) -> String {
        self.strategy.describe()
    }

    /// What the strategy has run, per task, and what waits and runs in it now. The inline
    /// strategy keeps no metrics (it times nothing, so that its yield stays as cheap as a
    /// call); the scheduling strategies of `ythread-executors` keep them all the time.
    pub fn metrics(&self) -> Metrics {
        self.strategy.metrics()
    }

    /// Hands `work` to the strategy. Used by the driver; strategies may also wrap one another.
    #[inline]
    pub fn apply(&self, work: &mut dyn Work) {
        self.strategy.apply(work);
    }

    /// Runs `task` through the strategy from any thread, without a yieldable thread: the
    /// blocking equivalent of [`Yielder::apply`](crate::Yielder::apply), useful in `main`,
    /// tests and benchmarks.
    ///
    /// # Errors
    /// Whatever the strategy reports; see [`ErrorKind`](crate::ErrorKind).
    pub fn run<T: Task>(&self, _task: T, args: T::Args) -> Result<T::Output, Error> {
        let mut work = TaskWork::<T>::new(args);
        // Refused work is failed in place rather than returned early, so that the descriptor
        // is built the same way whatever the check says.
        match portable::check_task::<T>() {
            Ok(()) => self.apply(&mut work),
            Err(refused) => work.fail(refused),
        }
        work.into_outcome(self)
    }

    /// Runs the task named `task` in `registry` on postcard-encoded `args` through the
    /// strategy, and appends its postcard-encoded result to `out`: how a process that serves
    /// work for others (a worker node) runs what it receives through its own strategy. A
    /// strategy that sends work elsewhere forwards the bytes without decoding them.
    ///
    /// ```
    /// ythread::task!(fn double(x: u64) -> u64 { x * 2 });
    /// let registry = ythread::TaskRegistry::new().with(double);
    /// let mut out = Vec::new();
    /// let args = postcard::to_stdvec(&21u64).unwrap();
    /// let name = <double as ythread::Task>::NAME;
    /// ythread::Executor::inline().run_encoded(&registry, name, &args, &mut out).unwrap();
    /// assert_eq!(postcard::from_bytes::<u64>(&out).unwrap(), 42);
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::UnknownTask`](crate::ErrorKind::UnknownTask) if `registry` has no task
    /// `task`; otherwise whatever the strategy or the task reports, as for [`Executor::run`].
    pub fn run_encoded(
        &self,
        registry: &TaskRegistry,
        task: &str,
        args: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let found = registry.find(task).ok_or_else(|| {
            Error::unknown_task(task, format!("in process {}", std::process::id()))
        })?;
        portable::check_named((found.cost_model)(), found.name)?;
        let mut work = EncodedWork::new(found, args, out);
        self.apply(&mut work);
        work.into_outcome(self)
    }

    /// Runs the closure `f` through the strategy from any thread. In-process strategies only.
    /// `f` may run on another thread, so it must be `Send`:
    ///
    /// ```compile_fail
    /// let shared = std::rc::Rc::new(1);
    /// let _ = ythread::Executor::inline().run_closure(move || *shared);
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::NotPortable`](crate::ErrorKind::NotPortable) on a strategy that needs a
    /// portable task; [`ErrorKind::Panicked`](crate::ErrorKind::Panicked) if `f` panics.
    pub fn run_closure<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R, Error> {
        portable::check_closure(&f)?;
        let mut work = ClosureWork::new(f);
        self.apply(&mut work);
        work.into_outcome(self)
    }
}

impl Default for Executor {
    fn default() -> Self {
        Self::inline()
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Executor").field(&self.describe()).finish()
    }
}
