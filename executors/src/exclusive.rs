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
//! built from the same configuration still serialise against each other. Work that itself runs
//! work through an exclusive executor (a task built from other tasks) runs that inner work
//! directly: it already holds the lock, and waiting for it again would deadlock its thread.

use std::cell::Cell;

use parking_lot::FairMutex;
use ythread::{CpuApply, Work};

static LOCK: FairMutex<()> = FairMutex::new(());

thread_local! {
    /// Whether this thread holds [`LOCK`]. The lock is not reentrant.
    static HOLDING: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as holding the lock until dropped, even if the work unwinds.
struct Holding;

impl Holding {
    fn enter() -> Self {
        HOLDING.with(|h| h.set(true));
        Holding
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        HOLDING.with(|h| h.set(false));
    }
}

/// The exclusive strategy. See the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct Exclusive;

impl CpuApply for Exclusive {
    fn apply(&self, work: &mut dyn Work) {
        if HOLDING.with(Cell::get) {
            // Nested work of work that holds the lock: it runs alone already.
            return work.run_here();
        }
        let _turn = LOCK.lock();
        let _holding = Holding::enter(); // dropped before `_turn`: cleared before unlocking
        work.run_here();
    }

    fn describe(&self) -> String {
        "exclusive".to_owned()
    }
}
