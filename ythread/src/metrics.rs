//! A snapshot of what a strategy has run, per task: [`Executor::metrics`](crate::Executor::metrics).
//!
//! Strategies that schedule keep their counters lock-free while they run and assemble this
//! plain data only when asked, so metrics can stay on in production.

use std::fmt;
use std::time::Duration;

use crate::cost::LearnedCost;

/// What one executor has run, and what waits and runs in it now.
///
/// More fields will come; a strategy of your own starts from [`Metrics::unrecorded`] (or
/// `Default`) and sets the fields it keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// The strategy, in its configuration form.
    pub strategy: String,
    /// Pieces of work waiting in the strategy's line right now.
    pub waiting: usize,
    /// Pieces of work handed off and running right now (work run inline is not counted).
    pub in_flight: usize,
    /// Work predicted cheaper than this runs on the handler's thread right now; `None` if no
    /// work does (the option is off, or nothing has been measured yet).
    pub inline_below: Option<Duration>,
    /// One entry per task that has run, in order of first run.
    pub tasks: Vec<TaskMetrics>,
}

/// What one executor has run of one task. More fields will come: start from `Default`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskMetrics {
    /// The task's name, or `closure work` for closures.
    pub task: String,
    /// Runs in all: `inline + offloaded`.
    pub runs: u64,
    /// Runs on the handler's own thread because they were predicted cheaper than a hand-off.
    pub inline: u64,
    /// Runs handed to the strategy's threads, lock or workers.
    pub offloaded: u64,
    /// Median time offloaded runs waited in line (to within an eighth).
    pub wait_p50: Duration,
    /// 99th percentile of that wait (to within an eighth).
    pub wait_p99: Duration,
    /// The task's learned cost by size class (process-wide: every strategy teaches one model).
    pub learned: Vec<LearnedCost>,
}

impl Metrics {
    /// The metrics of a strategy that keeps none: its name and nothing else.
    pub fn unrecorded(strategy: String) -> Self {
        Metrics {
            strategy,
            ..Metrics::default()
        }
    }

    /// The entry for the task whose name ends with `name` (as in `::sumn`), if it ran.
    pub fn task(&self, name: &str) -> Option<&TaskMetrics> {
        self.tasks.iter().find(|t| t.task.ends_with(name))
    }
}

impl fmt::Display for Metrics {
    /// A header line, then one line per task.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} waiting, {} in flight",
            self.strategy, self.waiting, self.in_flight
        )?;
        if let Some(threshold) = self.inline_below {
            write!(f, ", inline below {}", Short(threshold))?;
        }
        for task in &self.tasks {
            write!(f, "\n  {task}")?;
        }
        Ok(())
    }
}

impl fmt::Display for TaskMetrics {
    /// One line: `NAME: R runs (I inline, O offloaded), wait p50 .. p99 .., cost C at SIZES, ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} runs ({} inline, {} offloaded), wait p50 {} p99 {}",
            self.task,
            self.runs,
            self.inline,
            self.offloaded,
            Short(self.wait_p50),
            Short(self.wait_p99)
        )?;
        for (i, learned) in self.learned.iter().enumerate() {
            f.write_str(if i == 0 { ", cost " } else { "; " })?;
            write!(f, "{}", Short(learned.cost))?;
            if let Some((low, high)) = learned.sizes {
                write!(f, " at size {}-{}", Count(low), Count(high))?;
            }
        }
        Ok(())
    }
}

/// A duration with three significant digits in the largest fitting unit.
struct Short(Duration);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos() as f64;
        let (value, unit) = match nanos {
            n if n >= 1e9 => (n / 1e9, "s"),
            n if n >= 1e6 => (n / 1e6, "ms"),
            n if n >= 1e3 => (n / 1e3, "us"),
            n => (n, "ns"),
        };
        let digits = if value >= 100.0 || unit == "ns" {
            0
        } else if value >= 10.0 {
            1
        } else {
            2
        };
        write!(f, "{value:.digits$}{unit}")
    }
}

/// A size, shortened to whole k, M or G once it has five digits or more.
struct Count(u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n >= 10_000_000_000 => write!(f, "{}G", n / 1_000_000_000),
            n if n >= 10_000_000 => write!(f, "{}M", n / 1_000_000),
            n if n >= 10_000 => write!(f, "{}k", n / 1_000),
            n => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_line_says_counts_waits_and_costs() {
        let task = TaskMetrics {
            task: "server::sumn".into(),
            runs: 12,
            inline: 10,
            offloaded: 2,
            wait_p50: Duration::from_micros(3),
            wait_p99: Duration::from_micros(45),
            learned: vec![
                LearnedCost {
                    sizes: Some((1, 1)),
                    cost: Duration::from_nanos(40),
                    runs: 10,
                },
                LearnedCost {
                    sizes: Some((16_777_216, 33_554_431)),
                    cost: Duration::from_micros(20_100),
                    runs: 2,
                },
            ],
        };
        assert_eq!(
            task.to_string(),
            "server::sumn: 12 runs (10 inline, 2 offloaded), wait p50 3.00us p99 45.0us, \
             cost 40ns at size 1-1; 20.1ms at size 16M-33M"
        );
    }
}
