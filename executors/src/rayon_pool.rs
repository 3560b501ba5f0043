//! `rayon[:N]`: work runs on a dedicated rayon thread pool of N threads (default: the cores).
//!
//! However many handler threads there are, at most N pieces of work run at once, so the cores
//! are used fully and never oversubscribed; the handlers wait suspended in the shared
//! [waiting line](crate::schedule) of N slots, shortest predicted work first (`order=fifo`:
//! in arrival order).
//!
//! Short work never waits behind heavy work: the pool keeps `express` extra threads (default 1)
//! that take only work predicted under [`EXPRESS_BELOW`](crate::schedule::EXPRESS_BELOW), and
//! while it has them its N regular threads run at nice [`DEFAULT_REGULAR_NICE`] (10), so
//! that short work and the handlers' I/O win a core from heavy work when they wake. Without
//! them, a 50 µs request that found both threads of `rayon:2` on 20 ms requests waited for
//! one: shortest-first order cannot help work that is already running. The idle scheduling
//! class, which the subprocess pool's regular workers use, preempts sooner, but its threads
//! get almost no CPU while any other process is busy, and an in-process pool is where a
//! program's heavy work runs: in one comparison run beside other work, idle-class threads
//! made 45-74% of the fifo form's heavy throughput where nice 10 made 123-295%, with the same
//! mixed-load gain (see `docs/scheduling.md`). `nice=K` sets the regular threads' nice value;
//! `express=0` makes a plain pool at the process's priority. The express threads may
//! oversubscribe the cores by their count while short work runs; they sleep otherwise.
//!
//! Trade-off: a hand-off to another thread and back costs microseconds per piece of work (two
//! wake-ups), which would dominate tiny work. So by default (`inline_below=auto`) work
//! predicted cheaper than the hand-off, as measured in this process, runs on the handler's own
//! thread instead, outside the pool's bound on parallelism but never for longer than a
//! hand-off would have taken. Nothing is serialised; closures work (they are never predicted,
//! so never inlined, and never express). A panic in the work is caught on the pool thread and
//! comes back as an error at the yield point.

use std::fmt;

use ythread::{CpuApply, Metrics, Work};

use crate::Error;
use crate::priority::WorkerPriority;
use crate::schedule::{InlineBelow, Lane, Line, MAX_EXPRESS, Scheduler, Scheduling};

/// Express threads, unless configured: one, which takes only work predicted short.
pub const DEFAULT_EXPRESS_THREADS: usize = 1;

/// The nice value of the regular threads while there are express threads, unless configured.
pub const DEFAULT_REGULAR_NICE: i32 = 10;

/// The rayon strategy. See the [module docs](self).
pub struct RayonPool {
    pool: rayon::ThreadPool,
    express_pool: Option<rayon::ThreadPool>,
    threads: usize,
    nice: Option<i32>,
    express: Option<usize>,
    scheduling: Scheduling,
    line: Line<()>,
    scheduler: Scheduler,
}

/// Settings for a [`RayonPool`]; from [`RayonPool::builder`].
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RayonBuilder {
    threads: Option<usize>,
    nice: Option<i32>,
    express: Option<usize>,
    scheduling: Scheduling,
}

impl RayonBuilder {
    /// Regular threads (default: one per core).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// The nice value of the regular threads (default: [`DEFAULT_REGULAR_NICE`] while there
    /// are express threads, else the process's priority).
    pub fn nice(mut self, nice: i32) -> Self {
        self.nice = Some(nice);
        self
    }

    /// Express threads, which take only work predicted short (default
    /// [`DEFAULT_EXPRESS_THREADS`]; 0 for none).
    pub fn express(mut self, express: usize) -> Self {
        self.express = Some(express);
        self
    }

    /// Order and inlining of the work (defaults: `order=shortest`, `inline_below=auto`).
    pub fn scheduling(mut self, scheduling: Scheduling) -> Self {
        self.scheduling = scheduling;
        self
    }

    /// Starts the pool.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for 0 threads, a nice value outside
    /// -20..=19 or more than [`MAX_EXPRESS`] express threads,
    /// [`ErrorKind::Start`](crate::ErrorKind::Start) if the threads cannot be started.
    pub fn build(self) -> Result<RayonPool, Error> {
        let RayonBuilder {
            threads,
            nice,
            express,
            scheduling,
        } = self;
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
        if let Some(express) = express.filter(|&n| n > MAX_EXPRESS) {
            return Err(Error::config(format!(
                "{express} express threads are more than {MAX_EXPRESS}; give 0 to {MAX_EXPRESS}"
            )));
        }
        let threads = threads.unwrap_or_else(crate::sys::default_parallelism);
        let express_threads = express.unwrap_or(DEFAULT_EXPRESS_THREADS);
        let priority = match (nice, express_threads) {
            (Some(nice), _) => Some(WorkerPriority::Nice(nice)),
            (None, 0) => None,
            (None, _) => Some(WorkerPriority::Nice(DEFAULT_REGULAR_NICE)),
        };
        let pool = start(threads, "ythread-rayon", priority)?;
        let express_pool = match express_threads {
            0 => None,
            n => Some(start(n, "ythread-rayon-express", None)?),
        };
        Ok(RayonPool {
            pool,
            express_pool,
            threads,
            nice,
            express,
            scheduling,
            line: Line::with_lanes(threads, express_threads),
            scheduler: Scheduler::new(
                scheduling.order.unwrap_or_default(),
                scheduling.inline_below.unwrap_or(InlineBelow::Auto),
                express_threads > 0,
            ),
        })
    }
}

/// A rayon pool of `threads` threads named `name-i`, each at `priority` if given.
fn start(
    threads: usize,
    name: &'static str,
    priority: Option<WorkerPriority>,
) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .start_handler(move |_| {
            if let Some(priority) = priority {
                priority.apply_to_this_thread();
            }
        })
        .build()
        .map_err(|e| {
            Error::start(format!("could not start a rayon pool of {threads} threads"))
                .with_source(e)
        })
}

impl RayonPool {
    /// Settings for a pool, to [`build`](RayonBuilder::build).
    pub fn builder() -> RayonBuilder {
        RayonBuilder::default()
    }

    /// A pool of `threads` threads (`None`: one per core), at `nice` priority if given, with
    /// the default scheduling and express threads.
    ///
    /// # Errors
    /// As [`RayonBuilder::build`].
    pub fn new(threads: Option<usize>, nice: Option<i32>) -> Result<Self, Error> {
        Self::with_scheduling(threads, nice, Scheduling::default())
    }

    /// A pool of `threads` threads (`None`: one per core), at `nice` priority if given, with
    /// these scheduling options (defaults: `order=shortest`, `inline_below=auto`) and the
    /// default express threads.
    ///
    /// # Errors
    /// As [`RayonBuilder::build`].
    pub fn with_scheduling(
        threads: Option<usize>,
        nice: Option<i32>,
        scheduling: Scheduling,
    ) -> Result<Self, Error> {
        let mut builder = Self::builder().scheduling(scheduling);
        if let Some(threads) = threads {
            builder = builder.threads(threads);
        }
        if let Some(nice) = nice {
            builder = builder.nice(nice);
        }
        builder.build()
    }

    /// How many regular threads the pool has.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How many express threads (for work predicted short only) the pool has.
    pub fn express_threads(&self) -> usize {
        self.express_pool
            .as_ref()
            .map_or(0, rayon::ThreadPool::current_num_threads)
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
        let on_express = self
            .express_pool
            .as_ref()
            .is_some_and(|pool| pool.current_thread_index().is_some());
        if on_express || self.pool.current_thread_index().is_some() {
            // Nested work of work on this pool: it holds a slot already, and waiting for
            // another could deadlock the pool. rayon runs it on this thread.
            return self.scheduler.run_inline(work);
        }
        let plan = self.scheduler.plan(work);
        if plan.inline {
            return self.scheduler.run_inline(work);
        }
        let (permit, turn) = match self.scheduler.wait_permit(&self.line, work, plan) {
            Ok(granted) => granted,
            Err(error) => return work.fail(error),
        };
        let pool = match (permit.lane(), &self.express_pool) {
            (Lane::Express, Some(express)) => express,
            _ => &self.pool,
        };
        let ran = pool.install(|| work.run_here_learning());
        turn.finish(Some(ran));
    }

    fn describe(&self) -> String {
        let write = |f: &mut fmt::Formatter<'_>| {
            write_spec(
                f,
                Some(self.threads),
                self.nice,
                self.express,
                &self.scheduling,
            )
        };
        fmt::from_fn(write).to_string()
    }

    fn metrics(&self) -> Metrics {
        self.scheduler.metrics(self.describe(), self.line.waiting())
    }
}

/// Writes the strategy's configuration form,
/// `rayon[:THREADS][,nice=N][,express=N][,SCHEDULING]`, with the options given only: what
/// [`describe`](CpuApply::describe) returns (threads resolved), and what
/// [`ExecutorConfig`](crate::ExecutorConfig) writes for it (threads as configured).
pub(crate) fn write_spec(
    f: &mut fmt::Formatter<'_>,
    threads: Option<usize>,
    nice: Option<i32>,
    express: Option<usize>,
    scheduling: &Scheduling,
) -> fmt::Result {
    f.write_str("rayon")?;
    if let Some(threads) = threads {
        write!(f, ":{threads}")?;
    }
    if let Some(nice) = nice {
        write!(f, ",nice={nice}")?;
    }
    if let Some(express) = express {
        write!(f, ",express={express}")?;
    }
    scheduling.write(f)
}
