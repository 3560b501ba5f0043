//! [`Scheduler`]: the decision for each piece of work (inline, or a turn in the line) and
//! the timing of its run, which teaches the cost model.

use std::time::{Duration, Instant};

use ythread::{CostModel, Error as WorkError, Metrics, Work};

use super::line::{Lane, Line, Permit, Ticket};
use super::settings::{InlineBelow, Order};
use super::stats::{InFlight, Stats};

/// The most that `inline_below=auto` runs inline: work predicted above this always goes to
/// the strategy, however slow the hand-off has been measured. A hand-off slower than this is
/// a machine under such load that keeping work within the strategy's bound matters more.
pub const AUTO_CEILING: Duration = Duration::from_micros(100);

/// Work predicted under this may use an express resource (a rayon pool's express threads, a
/// subprocess pool's express workers), so an express resource is busy for at most about this
/// long before it is free for the next short piece of work.
pub const EXPRESS_BELOW: Duration = Duration::from_micros(500);

/// The scheduling state of one strategy: its settings, its learned hand-off cost, its metrics.
pub(crate) struct Scheduler {
    order: Order,
    inline_below: InlineBelow,
    express: bool,
    /// The hand-off overhead, learned like a task without a declared size.
    handoff: CostModel,
    stats: Stats,
}

/// What the scheduler decided for one piece of work.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) inline: bool,
    ticket: Ticket,
}

impl Plan {
    /// The ticket the plan waits in line with, for a second checkout in the same turn.
    pub(crate) fn ticket(&self) -> Ticket {
        self.ticket
    }
}

impl Scheduler {
    /// A scheduler with `order` and `inline_below`; `express` if the strategy has express
    /// resources, so that short work is marked as allowed to use them.
    pub(crate) fn new(order: Order, inline_below: InlineBelow, express: bool) -> Self {
        Scheduler {
            order,
            inline_below,
            express,
            handoff: CostModel::new("hand-off"),
            stats: Stats::new(),
        }
    }

    /// Predicts `work` and decides where and in what order it runs.
    #[inline]
    pub(crate) fn plan(&self, work: &dyn Work) -> Plan {
        let predicted = work.predicted_cost().map_or(u64::MAX, nanos);
        Plan {
            inline: predicted < self.inline_threshold(),
            ticket: Ticket {
                rank: match self.order {
                    Order::Shortest => predicted,
                    Order::Fifo => 0,
                },
                express: self.express && predicted < nanos(EXPRESS_BELOW),
            },
        }
    }

    /// The current threshold below which work runs inline, in nanoseconds (0: none does).
    fn inline_threshold(&self) -> u64 {
        match self.inline_below {
            InlineBelow::Off => 0,
            InlineBelow::Auto => self
                .handoff
                .predict(None)
                .map_or(0, |d| nanos(d.min(AUTO_CEILING))),
            InlineBelow::Below(threshold) => nanos(threshold),
        }
    }

    /// Runs `work` on this thread, timed and counted as inline.
    pub(crate) fn run_inline(&self, work: &mut dyn Work) {
        work.run_here_learning();
        self.stats.of(work).ran_inline();
    }

    /// Waits for a resource for `work` through `checkout` (a line's, or a wrapper of one),
    /// counting the wait.
    pub(crate) fn wait_turn<W>(
        &self,
        work: &dyn Work,
        plan: Plan,
        checkout: impl FnOnce(Ticket) -> Result<(W, Lane), WorkError>,
    ) -> Result<(W, Lane, Turn<'_>), WorkError> {
        self.timed_wait(work, || checkout(plan.ticket))
            .map(|((resource, lane), turn)| (resource, lane, turn))
    }

    /// Waits in a line of interchangeable turns, counting the wait.
    pub(crate) fn wait_permit<'l>(
        &self,
        line: &'l Line<()>,
        work: &dyn Work,
        plan: Plan,
    ) -> Result<(Permit<'l>, Turn<'_>), WorkError> {
        self.timed_wait(work, || line.permit(plan.ticket))
    }

    fn timed_wait<R>(
        &self,
        work: &dyn Work,
        wait: impl FnOnce() -> Result<R, WorkError>,
    ) -> Result<(R, Turn<'_>), WorkError> {
        let arrived = Instant::now();
        let got = wait()?;
        let granted = Instant::now();
        self.stats.of(work).waited(granted - arrived);
        let turn = Turn {
            scheduler: self,
            granted,
            _in_flight: self.stats.in_flight(),
        };
        Ok((got, turn))
    }

    /// The metrics snapshot, with `waiting` callers in the strategy's line.
    pub(crate) fn metrics(&self, strategy: String, waiting: usize) -> Metrics {
        let mut metrics = self.stats.metrics(strategy, waiting);
        metrics.inline_below = match self.inline_threshold() {
            0 => None,
            threshold => Some(Duration::from_nanos(threshold)),
        };
        metrics
    }
}

/// A piece of work that got its turn and is running (counted in flight until dropped).
pub(crate) struct Turn<'s> {
    scheduler: &'s Scheduler,
    granted: Instant,
    _in_flight: InFlight<'s>,
}

impl Turn<'_> {
    /// Ends the turn of work that ran for `ran` where it was handed to (if known): the rest of
    /// the time since the turn began is the hand-off, which `inline_below=auto` learns from.
    pub(crate) fn finish(self, ran: Option<Duration>) {
        // Only `inline_below=auto` uses the hand-off cost: spare the clock read otherwise.
        if self.scheduler.inline_below == InlineBelow::Auto
            && let Some(ran) = ran
        {
            let overhead = self.granted.elapsed().saturating_sub(ran);
            self.scheduler.handoff.record(None, overhead);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
