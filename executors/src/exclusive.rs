//! `exclusive`: one process-wide turn for every piece of work, served shortest-predicted first.
//!
//! The article's `exclusive_apply`. Work runs on the handler's own thread, but only one piece
//! at a time in the whole process, so CPU-bound handlers stop fighting over the cores and the
//! caches, and the OS can always schedule the I/O threads. Waiting handlers queue in the
//! shared [waiting line](crate::schedule) of one slot, which hands the turn over directly (no
//! barging) to the work predicted shortest, with aging so that long work is overtaken at most
//! [`MAX_OVERTAKES`](crate::schedule::MAX_OVERTAKES) times; `order=fifo` serves them in
//! arrival order instead, as a fair lock would.
//!
//! Trade-off: CPU parallelism is exactly one, whatever the cores; latency of a piece of work is
//! its run time plus the line ahead of it. Nothing is serialised; closures work. A panic in
//! the work gives the turn back and comes back as an error at the yield point. `inline_below`
//! is off by default: the one turn may be guarding a library that is not thread-safe, and only
//! the program knows whether skipping it for cheap work is safe.
//!
//! The line is global rather than per executor, as in the article: two exclusive executors
//! still serialise against each other. Work that itself runs work through an exclusive
//! executor (a task built from other tasks) runs that inner work directly: it already holds
//! the turn, and waiting for it again would deadlock its thread.

use std::cell::Cell;
use std::fmt;
use std::sync::LazyLock;

use ythread::{CpuApply, Metrics, Work};

use crate::schedule::{InlineBelow, Line, Scheduler, Scheduling};

/// The one turn of the process.
static LINE: LazyLock<Line<()>> = LazyLock::new(|| Line::with_slots(1));

thread_local! {
    /// Whether this thread holds the turn. It is not reentrant.
    static HOLDING: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as holding the turn until dropped, even if the work unwinds.
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
pub struct Exclusive {
    scheduling: Scheduling,
    scheduler: Scheduler,
}

impl Exclusive {
    /// The strategy with these scheduling options (defaults: `order=shortest`,
    /// `inline_below=off`).
    pub fn new(scheduling: Scheduling) -> Self {
        Exclusive {
            scheduling,
            scheduler: Scheduler::new(
                scheduling.order.unwrap_or_default(),
                scheduling.inline_below.unwrap_or(InlineBelow::Off),
                false,
            ),
        }
    }
}

impl Default for Exclusive {
    fn default() -> Self {
        Exclusive::new(Scheduling::default())
    }
}

impl std::fmt::Debug for Exclusive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Exclusive").field(&self.describe()).finish()
    }
}

impl CpuApply for Exclusive {
    fn apply(&self, work: &mut dyn Work) {
        if HOLDING.with(Cell::get) {
            // Nested work of work that holds the turn: it runs alone already.
            return self.scheduler.run_inline(work);
        }
        let plan = self.scheduler.plan(work);
        if plan.inline {
            return self.scheduler.run_inline(work);
        }
        let (_permit, turn) = match self.scheduler.wait_permit(&LINE, work, plan) {
            Ok(granted) => granted,
            Err(error) => return work.fail(error),
        };
        let _holding = Holding::enter(); // dropped before `_permit`: cleared before the turn goes
        let ran = work.run_here_learning();
        turn.finish(Some(ran));
    }

    fn describe(&self) -> String {
        fmt::from_fn(|f| write_spec(f, &self.scheduling)).to_string()
    }

    fn metrics(&self) -> Metrics {
        self.scheduler.metrics(self.describe(), LINE.waiting())
    }
}

/// Writes the strategy's configuration form, `exclusive[,SCHEDULING]`: what
/// [`describe`](CpuApply::describe) returns, and what
/// [`ExecutorConfig`](crate::ExecutorConfig) writes for it. The strategy keeps its own form so
/// that printing itself needs no import of the configuration that picks it.
pub(crate) fn write_spec(f: &mut fmt::Formatter<'_>, scheduling: &Scheduling) -> fmt::Result {
    f.write_str("exclusive")?;
    scheduling.write(f)
}
