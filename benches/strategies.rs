//! Each strategy side by side: the round trip of tiny work, and throughput as handlers grow.
//!
//! - `round_trip_caller`: `Executor::run(tiny, x)` from the bench thread, no coroutine: what a
//!   strategy costs by itself. Peers beside it: `rayon::ThreadPool::install` of a trivial closure
//!   (the floor of the rayon strategy) and a tokio `spawn_blocking` round trip (for context).
//! - `round_trip_yield`: `y.apply(tiny, x)` inside a handler, timed from inside the handler
//!   (`iter_custom`), so the yield's own switch is included and the spawn is not.
//! - `scaling`: N handler threads (1, 2, 4, 8), each yielding `sumn` of about 1 ms per round;
//!   the time is per round of all N handlers, to set against the core count. `direct_sumn` is
//!   one such job called directly: the unit to divide by.
//!
//! A strategy that cannot start (the subprocess pool, while it is unavailable) is reported and
//! skipped. `main` calls `ythread_executors::init` first, so this binary is its own worker
//! program for the subprocess pools.
//!
//! Run: `cargo bench --bench strategies`; figures and ratios in `docs/benchmarks.md`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use ythread::{Executor, JoinHandle, YieldableThread};
use ythread_executors::ExecutorConfig;
use ythread_suite::tasks::{sumn, tiny};

/// Strategies whose round trip is measured. The `inline_below=off` forms hand every piece of
/// work off, as the defaults do for work they have not learned to be cheap: their figure is
/// the hand-off itself, and the default's is what learned inlining makes of it.
const ROUND_TRIP_STRATEGIES: [&str; 8] = [
    "inline",
    "exclusive",
    "rayon:1",
    "rayon:1,inline_below=off",
    "rayon:2",
    "rayon:2,inline_below=off",
    "subprocess:1",
    "subprocess:2",
];

/// Strategies whose throughput is measured: one of each kind, sized to the 2 cores.
const SCALING_STRATEGIES: [&str; 4] = ["inline", "exclusive", "rayon:2", "subprocess:2"];

/// Handler threads per scaling run.
const HANDLER_COUNTS: [usize; 4] = [1, 2, 4, 8];

/// The argument of `sumn` that costs about 1 ms (about 1 ns per step).
const MILLISECOND_OF_WORK: u64 = 1_000_000;

/// A handler that has not finished after this long is stuck: fail instead of hanging.
const HANDLER_BOUND: Duration = Duration::from_secs(120);

fn main() {
    ythread_executors::init(ythread_suite::tasks::registry());
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        // The HTML plots cost more than the measurements on 2 cores; the figures are in the
        // terminal output and in target/criterion/*/new/estimates.json.
        .without_plots()
        .configure_from_args();
    let started = start(&ROUND_TRIP_STRATEGIES);
    round_trip_caller(&mut criterion, &started);
    round_trip_yield(&mut criterion, &started);
    scaling(&mut criterion, &started);
    criterion.final_summary();
}

/// A strategy that started, with its configuration string.
struct Started {
    name: &'static str,
    executor: Executor,
}

/// Builds each strategy from its configuration string; one that fails is reported and skipped.
fn start(names: &[&'static str]) -> Vec<Started> {
    names
        .iter()
        .filter_map(|&name| {
            let built = name
                .parse::<ExecutorConfig>()
                .and_then(|config| config.build());
            match built {
                Ok(executor) => Some(Started { name, executor }),
                Err(e) => {
                    eprintln!("note: skipping the `{name}` strategy, it did not start: {e}");
                    None
                }
            }
        })
        .collect()
}

fn round_trip_caller(criterion: &mut Criterion, started: &[Started]) {
    let mut group = criterion.benchmark_group("round_trip_caller");
    group.bench_function("direct_call", |b| b.iter(|| tiny.call(black_box(1))));
    for Started { name, executor } in started {
        group.bench_function(*name, |b| {
            b.iter(|| executor.run(tiny, black_box(1)).expect("tiny work fails"))
        });
    }
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool of 1 or 2 threads starts");
        group.bench_function(format!("peer_rayon_install:{threads}"), |b| {
            b.iter(|| pool.install(|| tiny.call(black_box(1))))
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread tokio runtime starts");
    group.bench_function("peer_tokio_spawn_blocking", |b| {
        b.iter(|| {
            runtime.block_on(async {
                tokio::task::spawn_blocking(|| tiny.call(black_box(1)))
                    .await
                    .expect("tiny work does not panic")
            })
        })
    });
    group.finish();
}

fn round_trip_yield(criterion: &mut Criterion, started: &[Started]) {
    let mut group = criterion.benchmark_group("round_trip_yield");
    for Started { name, executor } in started {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut handle = YieldableThread::spawn(executor, move |y| {
                    let start = Instant::now();
                    for i in 0..iters {
                        black_box(y.apply(tiny, black_box(i)).expect("tiny work fails"));
                    }
                    start.elapsed()
                });
                handle
                    .join_timeout(HANDLER_BOUND)
                    .expect("the benchmark handler failed or is stuck")
            })
        });
    }
    group.finish();
}

fn scaling(criterion: &mut Criterion, started: &[Started]) {
    let mut group = criterion.benchmark_group("scaling");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    group.bench_function("direct_sumn", |b| {
        b.iter(|| sumn.call(black_box(MILLISECOND_OF_WORK)))
    });
    let scaled = started
        .iter()
        .filter(|s| SCALING_STRATEGIES.contains(&s.name));
    for Started { name, executor } in scaled {
        for handlers in HANDLER_COUNTS {
            group.throughput(Throughput::Elements(handlers as u64));
            group.bench_function(BenchmarkId::new(*name, handlers), |b| {
                b.iter_custom(|rounds| run_rounds(executor, handlers, rounds))
            });
        }
    }
    group.finish();
}

/// Starts `handlers` threads that each yield `rounds` jobs of `sumn`, lets them go at once,
/// and returns the time until the last one has finished.
fn run_rounds(executor: &Executor, handlers: usize, rounds: u64) -> Duration {
    let start_line = Arc::new(Barrier::new(handlers + 1));
    let threads: Vec<JoinHandle<()>> = (0..handlers)
        .map(|_| {
            let start_line = Arc::clone(&start_line);
            YieldableThread::spawn(executor, move |y| {
                start_line.wait();
                for _ in 0..rounds {
                    let total = y.apply(sumn, black_box(MILLISECOND_OF_WORK));
                    black_box(total.expect("sumn fails"));
                }
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    for mut thread in threads {
        thread
            .join_timeout(HANDLER_BOUND)
            .expect("a scaling handler failed or is stuck");
    }
    start.elapsed()
}
