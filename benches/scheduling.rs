//! What learned scheduling costs on the hot path, side by side in one run.
//!
//! - `predict`: one `CostModel::predict` for a size class that was learned, and for one that
//!   was not (the search for a neighbour), against reading one atomic (the floor).
//! - `scheduled_inline`: `Executor::run(tiny, x)` with the inline strategy (which schedules
//!   nothing) against `rayon:1,inline_below=1s`, where the same work is predicted, run on the
//!   calling thread, timed and counted: the difference is what the scheduler adds to work it
//!   keeps inline.
//! - `hand_off_or_not`: the tiny round trip of `rayon:1` (default, `inline_below=auto`) against
//!   `rayon:1,inline_below=off` (every piece of work handed to the pool): what inlining saves.
//!
//! Run: `cargo bench --bench scheduling`; figures in `docs/benchmarks.md`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::Criterion;
use ythread::{CostModel, Executor};
use ythread_executors::ExecutorConfig;
use ythread_suite::tasks::tiny;

fn executor(config: &str) -> Executor {
    config
        .parse::<ExecutorConfig>()
        .and_then(|c| c.build())
        .unwrap_or_else(|e| panic!("`{config}`: {e}"))
}

fn predict(criterion: &mut Criterion) {
    static MODEL: CostModel = CostModel::new("bench::model");
    for size in [1_u64, 1_000, 1_000_000] {
        MODEL.record(Some(size), Duration::from_micros(size));
    }
    let floor = AtomicU64::new(7);
    let mut group = criterion.benchmark_group("predict");
    group.bench_function("atomic_load_floor", |b| {
        b.iter(|| black_box(&floor).load(Ordering::Relaxed))
    });
    group.bench_function("learned_class", |b| {
        b.iter(|| MODEL.predict(black_box(Some(1_000))))
    });
    group.bench_function("unlearned_class", |b| {
        b.iter(|| MODEL.predict(black_box(Some(40))))
    });
    group.finish();
}

fn scheduled_inline(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("scheduled_inline");
    for config in ["inline", "rayon:1,inline_below=1s"] {
        let executor = executor(config);
        executor.run(tiny, 0).unwrap(); // learned, so the scheduled form keeps it inline
        group.bench_function(config, |b| {
            b.iter(|| executor.run(tiny, black_box(1)).unwrap())
        });
    }
    group.finish();
}

fn hand_off_or_not(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("hand_off_or_not");
    for config in ["rayon:1", "rayon:1,inline_below=off"] {
        let executor = executor(config);
        for _ in 0..100 {
            executor.run(tiny, 0).unwrap(); // learn the task and the hand-off
        }
        group.bench_function(config, |b| {
            b.iter(|| executor.run(tiny, black_box(1)).unwrap())
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
        .configure_from_args();
    predict(&mut criterion);
    scheduled_inline(&mut criterion);
    hand_off_or_not(&mut criterion);
    criterion.final_summary();
}
