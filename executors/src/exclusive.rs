//! `exclusive`: one process-wide fair lock around every piece of work.
//!
//! The article's `exclusive_apply`. Work runs on the handler's own thread, but only one piece
//! at a time in the whole process, so CPU-bound handlers stop fighting over the cores and the
//! caches, and the OS can always schedule the I/O threads. The lock is *fair* (parking_lot's
//! `FairMutex`): waiters get it in the order they asked, so a busy handler cannot starve
//! another; the plain parking_lot `Mutex` lets the releasing thread take the lock straight back.
//!
//! Trade-off: CPU parallelism is exactly one, whatever the cores; latency of a piece of work is
//! its run time plus the queue ahead of it. Nothing is serialised; closures work. A panic in
//! the work releases the lock and comes back as an error at the yield point.
//!
//! The lock is global rather than per executor, as in the article: two exclusive executors
//! built from the same configuration still serialise against each other.

use parking_lot::FairMutex;
use ythread::{CpuApply, Work};

static LOCK: FairMutex<()> = FairMutex::new(());

/// The exclusive strategy. See the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct Exclusive;

impl CpuApply for Exclusive {
    fn apply(&self, work: &mut dyn Work) {
        let _turn = LOCK.lock();
        work.run_here();
    }

    fn describe(&self) -> String {
        "exclusive".to_owned()
    }
}
