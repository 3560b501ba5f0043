//! CPU priority for the threads and processes that run heavy work, so that the handlers' I/O
//! and short work preempt them: nice values, and the idle scheduling class.
//!
//! On Linux `setpriority(PRIO_PROCESS, id)` applies to one thread: the calling thread for a
//! rayon pool thread, the main thread of a worker process (which runs its serve loop).
//! Failure (a lower value than allowed without privileges) leaves the priority as it was: a
//! slower pool is better than none.

use crate::sys::{gettid, set_idle, set_nice};

/// The CPU priority of a subprocess pool's regular workers: `nice=idle` or `nice=N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkerPriority {
    /// The idle scheduling class (`SCHED_IDLE`): the worker runs only when nothing else wants
    /// the core, and any other thread that wakes preempts it at once. The default while there
    /// are express workers.
    Idle,
    /// A nice value from -20 to 19 (higher is lower priority).
    Nice(i32),
}

impl WorkerPriority {
    pub(crate) fn parse(text: &str) -> Result<WorkerPriority, String> {
        match text {
            "idle" => Ok(WorkerPriority::Idle),
            _ => match text.parse::<i32>() {
                Ok(n) if (-20..=19).contains(&n) => Ok(WorkerPriority::Nice(n)),
                _ => Err(format!(
                    "nice `{text}` is not `idle` nor a whole number from -20 to 19"
                )),
            },
        }
    }

    /// Whether a nice value is in range (code can build one the parser would refuse).
    pub(crate) fn is_valid(self) -> bool {
        match self {
            WorkerPriority::Idle => true,
            WorkerPriority::Nice(nice) => (-20..=19).contains(&nice),
        }
    }

    /// Gives process `pid` (its main thread) this priority.
    pub(crate) fn apply(self, pid: u32) {
        match self {
            WorkerPriority::Nice(nice) => set_nice(pid, nice),
            WorkerPriority::Idle => set_idle(pid),
        }
    }

    /// Gives the calling thread this priority.
    pub(crate) fn apply_to_this_thread(self) {
        self.apply(gettid());
    }
}

impl std::fmt::Display for WorkerPriority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerPriority::Idle => f.write_str("idle"),
            WorkerPriority::Nice(nice) => write!(f, "{nice}"),
        }
    }
}
