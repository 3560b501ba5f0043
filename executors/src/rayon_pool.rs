//! `rayon[:N]`: work runs on a dedicated rayon thread pool of N threads (default: the cores).
//!
//! However many handler threads there are, at most N pieces of work run at once, so the cores
//! are used fully and never oversubscribed; the handlers wait suspended in the shared
//! [waiting line](crate::schedule) of N slots, shortest predicted work first (`order=fifo`:
//! in arrival order). With `nice=K` the pool threads run at a lower OS priority (`setpriority`
//! on each thread as it starts), so a flood of heavy work cannot delay the handler threads' I/O.
//!
//! Trade-off: a hand-off to another thread and back costs microseconds per piece of work (two
//! wake-ups), which would dominate tiny work. So by default (`inline_below=auto`) work
//! predicted cheaper than the hand-off, as measured in this process, runs on the handler's own
//! thread instead, outside the pool's bound on parallelism but never for longer than a
//! hand-off would have taken. Nothing is serialised; closures work (they are never predicted,
//! so never inlined). A panic in the work is caught on the pool thread and comes back as an
//! error at the yield point.

use std::fmt;

use ythread::{CpuApply, Metrics, Work};

use crate::Error;
use crate::schedule::{InlineBelow, Line, Scheduler, Scheduling};

/// The rayon strategy. See the [module docs](self).
pub struct RayonPool {
    pool: rayon::ThreadPool,
    threads: usize,
    nice: Option<i32>,
    scheduling: Scheduling,
    line: Line<()>,
    scheduler: Scheduler,
}

impl RayonPool {
    /// A pool of `threads` threads (`None`: one per core), at `nice` priority if given, with
    /// the default scheduling.
    ///
    /// # Errors
    /// As [`RayonPool::with_scheduling`].
    pub fn new(threads: Option<usize>, nice: Option<i32>) -> Result<Self, Error> {
        Self::with_scheduling(threads, nice, Scheduling::default())
    }

    /// A pool of `threads` threads (`None`: one per core), at `nice` priority if given, with
    /// these scheduling options (defaults: `order=shortest`, `inline_below=auto`).
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for `Some(0)` threads or a nice value
    /// outside -20..=19,
    /// [`ErrorKind::Start`](crate::ErrorKind::Start) if the threads cannot be started.
    pub fn with_scheduling(
        threads: Option<usize>,
        nice: Option<i32>,
        scheduling: Scheduling,
    ) -> Result<Self, Error> {
        // rayon itself reads 0 as "one per core", which would make `describe` lie.
        if threads == Some(0) {
            return Err(Error::config(
                "a rayon pool needs at least 1 thread; give a count of 1 or more, or none for \
                 one per core",
            ));
        }
        // The kernel would clamp it silently, and `describe` would name a value not in force.
        if let Some(nice) = nice.filter(|n| !(-20..=19).contains(n)) {
            return Err(Error::config(format!(
                "nice {nice} is out of range; give a whole number from -20 to 19"
            )));
        }
        let threads = threads.unwrap_or_else(crate::sys::default_parallelism);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("ythread-rayon-{i}"))
            .start_handler(move |_| {
                if let Some(nice) = nice {
                    crate::priority::set_own_nice(nice);
                }
            })
            .build()
            .map_err(|e| {
                Error::start(format!("could not start a rayon pool of {threads} threads"))
                    .with_source(e)
            })?;
        Ok(RayonPool {
            pool,
            threads,
            nice,
            scheduling,
            line: Line::with_slots(threads),
            scheduler: Scheduler::new(
                scheduling.order.unwrap_or_default(),
                scheduling.inline_below.unwrap_or(InlineBelow::Auto),
                false,
            ),
        })
    }

    /// How many threads the pool has.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl std::fmt::Debug for RayonPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RayonPool")
            .field("config", &self.describe())
            .finish_non_exhaustive()
    }
}

impl CpuApply for RayonPool {
    fn apply(&self, work: &mut dyn Work) {
        if self.pool.current_thread_index().is_some() {
            // Nested work of work on this pool: it holds a slot already, and waiting for
            // another could deadlock the pool. rayon runs it on this thread.
            return self.scheduler.run_inline(work);
        }
        let plan = self.scheduler.plan(work);
        if plan.inline {
            return self.scheduler.run_inline(work);
        }
        let (_permit, turn) = match self.scheduler.wait_permit(&self.line, work, plan) {
            Ok(granted) => granted,
            Err(error) => return work.fail(error),
        };
        let ran = self.pool.install(|| work.run_here_learning());
        turn.finish(Some(ran));
    }

    fn describe(&self) -> String {
        fmt::from_fn(|f| write_spec(f, Some(self.threads), self.nice, &self.scheduling)).to_string()
    }

    fn metrics(&self) -> Metrics {
        self.scheduler.metrics(self.describe(), self.line.waiting())
    }
}

/// Writes the strategy's configuration form, `rayon[:THREADS][,nice=N][,SCHEDULING]`, with
/// the options given only: what [`describe`](CpuApply::describe) returns (threads resolved),
/// and what [`ExecutorConfig`](crate::ExecutorConfig) writes for it (threads as configured).
pub(crate) fn write_spec(
    f: &mut fmt::Formatter<'_>,
    threads: Option<usize>,
    nice: Option<i32>,
    scheduling: &Scheduling,
) -> fmt::Result {
    f.write_str("rayon")?;
    if let Some(threads) = threads {
        write!(f, ":{threads}")?;
    }
    if let Some(nice) = nice {
        write!(f, ",nice={nice}")?;
    }
    scheduling.write(f)
}
