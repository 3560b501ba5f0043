//! `rayon[:N]`: work runs on a dedicated rayon thread pool of N threads (default: the cores).
//!
//! However many handler threads there are, at most N pieces of work run at once, so the cores
//! are used fully and never oversubscribed; the handlers wait suspended. With `nice=K` the pool
//! threads run at a lower OS priority (`setpriority` on each thread as it starts), so a flood of
//! heavy work cannot delay the handler threads' I/O and short requests stay responsive.
//!
//! Trade-off: a hand-off to another thread and back costs a few microseconds per piece of work
//! (two wake-ups), which matters only for tiny work. Nothing is serialised; closures work. A
//! panic in the work is caught on the pool thread and comes back as an error at the yield point.

use ythread::{CpuApply, Work};

use crate::Error;

/// The rayon strategy. See the [module docs](self).
pub struct RayonPool {
    pool: rayon::ThreadPool,
    threads: usize,
    nice: Option<i32>,
}

impl RayonPool {
    /// A pool of `threads` threads (`None`: one per core), at `nice` priority if given.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for `Some(0)` threads or a nice value
    /// outside -20..=19,
    /// [`ErrorKind::Start`](crate::ErrorKind::Start) if the threads cannot be started.
    pub fn new(threads: Option<usize>, nice: Option<i32>) -> Result<Self, Error> {
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
        let threads = threads.unwrap_or_else(crate::config::default_parallelism);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("ythread-rayon-{i}"))
            .start_handler(move |_| {
                if let Some(nice) = nice {
                    lower_priority(nice);
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
        })
    }

    /// How many threads the pool has.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl CpuApply for RayonPool {
    fn apply(&self, work: &mut dyn Work) {
        self.pool.install(|| work.run_here());
    }

    fn describe(&self) -> String {
        match self.nice {
            Some(nice) => format!("rayon:{},nice={nice}", self.threads),
            None => format!("rayon:{}", self.threads),
        }
    }
}

/// Sets the calling thread's nice value. On Linux `setpriority(PRIO_PROCESS, tid)` applies to
/// one thread. Failure (a lower value than allowed without privileges) leaves the priority as
/// it was: a slower pool is better than none.
fn lower_priority(nice: i32) {
    // SAFETY: `gettid` has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    // SAFETY: `setpriority` reads only its integer arguments; a thread id from `gettid` is a
    // valid `PRIO_PROCESS` target on Linux. The result is ignored on purpose (see above).
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
    }
}
