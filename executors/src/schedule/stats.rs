//! Per-task counters of one strategy: runs inline and offloaded, and how long runs waited.
//!
//! Counters live in a fixed table indexed by the task's [`CostModel::id`], each made on the
//! task's first run, so recording is a few relaxed atomic adds with no lock and no lookup.
//! Tasks past the table's size (programs with hundreds of tasks) share one "other tasks" entry.
//! Waits go into a histogram of eighth-of-a-power-of-two buckets, so percentiles are exact to
//! within an eighth at any scale, from nanoseconds to hours, in 4 KiB per task.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use ythread::{CostModel, Metrics, TaskMetrics, Work};

/// Tasks with their own entry; later ones share [`Stats::other`].
const TABLE: usize = 256;

/// Eighths per power of two.
const SUB_BUCKETS: u64 = 8;
const BUCKETS: usize = 64 * SUB_BUCKETS as usize;

/// The counters of one strategy.
pub(crate) struct Stats {
    tasks: Box<[OnceLock<Box<TaskCounters>>]>,
    other: TaskCounters,
    closures: TaskCounters,
    in_flight: AtomicUsize,
}

/// The counters of one task.
pub(crate) struct TaskCounters {
    name: &'static str,
    model: Option<&'static CostModel>,
    inline: AtomicU64,
    offloaded: AtomicU64,
    waits: Box<[AtomicU64]>,
}

impl TaskCounters {
    fn new(name: &'static str, model: Option<&'static CostModel>) -> Self {
        TaskCounters {
            name,
            model,
            inline: AtomicU64::new(0),
            offloaded: AtomicU64::new(0),
            waits: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn ran_inline(&self) {
        self.inline.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn waited(&self, wait: Duration) {
        let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        self.waits[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        self.offloaded.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Option<TaskMetrics> {
        let inline = self.inline.load(Ordering::Relaxed);
        let offloaded = self.offloaded.load(Ordering::Relaxed);
        if inline + offloaded == 0 {
            return None;
        }
        let counts: Vec<u64> = self
            .waits
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        // `TaskMetrics` is non-exhaustive: outside ythread it is built by setting fields.
        let mut metrics = TaskMetrics::default();
        metrics.task = self.name.to_owned();
        metrics.runs = inline + offloaded;
        metrics.inline = inline;
        metrics.offloaded = offloaded;
        metrics.wait_p50 = percentile(&counts, 0.50);
        metrics.wait_p99 = percentile(&counts, 0.99);
        metrics.learned = self.model.map(CostModel::learned).unwrap_or_default();
        Some(metrics)
    }
}

impl Stats {
    pub(crate) fn new() -> Self {
        Stats {
            tasks: (0..TABLE).map(|_| OnceLock::new()).collect(),
            other: TaskCounters::new("(other tasks)", None),
            closures: TaskCounters::new("closure work", None),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// The counters of `work`'s task.
    #[inline]
    pub(crate) fn of(&self, work: &dyn Work) -> &TaskCounters {
        let Some(model) = work.cost_model() else {
            return &self.closures;
        };
        match self.tasks.get(model.id()) {
            Some(slot) => {
                slot.get_or_init(|| Box::new(TaskCounters::new(model.name(), Some(model))))
            }
            None => &self.other,
        }
    }

    /// Counts one piece of work as running until the guard drops.
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// The snapshot, tasks in order of first use in this process.
    pub(crate) fn metrics(&self, strategy: String, waiting: usize) -> Metrics {
        let tables = self.tasks.iter().filter_map(OnceLock::get).map(|b| &**b);
        let tasks = tables
            .chain([&self.other, &self.closures])
            .filter_map(TaskCounters::snapshot)
            .collect();
        let mut metrics = Metrics::unrecorded(strategy);
        metrics.waiting = waiting;
        metrics.in_flight = self.in_flight.load(Ordering::Relaxed);
        metrics.tasks = tasks;
        metrics
    }
}

/// One piece of work counted as in flight.
pub(crate) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Values below 8 have a bucket each; above, each power of two has eight.
fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB_BUCKETS {
        return nanos as usize;
    }
    let power = u64::from(u64::BITS - 1 - nanos.leading_zeros());
    let eighth = (nanos >> (power - 3)) & (SUB_BUCKETS - 1);
    ((power - 2) * SUB_BUCKETS + eighth) as usize
}

/// The smallest value of a bucket.
fn bucket_floor(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB_BUCKETS {
        return bucket;
    }
    let power = bucket / SUB_BUCKETS + 2;
    (SUB_BUCKETS + bucket % SUB_BUCKETS) << (power - 3)
}

fn percentile(counts: &[u64], quantile: f64) -> Duration {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Duration::ZERO;
    }
    let rank = ((total as f64 * quantile).ceil() as u64).max(1);
    let mut seen = 0;
    for (bucket, &count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Duration::from_nanos(bucket_floor(bucket));
        }
    }
    Duration::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_within_an_eighth() {
        let mut last = 0;
        for nanos in (0..200).chain([1_000, 12_345, 1 << 40, u64::MAX]) {
            let bucket = bucket_of(nanos);
            assert!(bucket < BUCKETS && bucket >= last, "{nanos}");
            last = bucket;
            let floor = bucket_floor(bucket);
            assert!(
                floor <= nanos && nanos - floor <= nanos / 8,
                "{nanos}: {floor}"
            );
        }
    }

    #[test]
    fn percentiles_pick_the_ranked_bucket() {
        let mut counts = vec![0; BUCKETS];
        counts[bucket_of(1_000)] = 98;
        counts[bucket_of(5_000_000)] = 2;
        let floor = |nanos| Duration::from_nanos(bucket_floor(bucket_of(nanos)));
        assert_eq!(percentile(&counts, 0.5), floor(1_000));
        assert_eq!(
            percentile(&counts, 0.99),
            Duration::from_nanos(bucket_floor(bucket_of(5_000_000)))
        );
        assert_eq!(percentile(&[0; BUCKETS], 0.99), Duration::ZERO);
    }
}
