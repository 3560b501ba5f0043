//! What a yield costs: `y.apply(tiny, x)` with the inline strategy against a direct call of the
//! same function, the same with the check of `ythread::portable` on (as `init` turns it on),
//! the closure form `y.run`, and the spawn of a yieldable thread against a plain `std::thread`.
//!
//! A yield only happens inside a handler's coroutine, while criterion's closures run on the
//! bench thread. So each sample of a `yield` benchmark spawns one yieldable thread, times its
//! loop of `iters` calls from the inside with `Instant`, and hands the elapsed time back through
//! `iter_custom`: the spawn and the join are not counted. The direct call is timed in the same
//! harness, so the difference between the rows is the yield and nothing else.
//!
//! Goals (from the design): a yield with the inline strategy at most 20 ns above the direct call;
//! spawn + join of a trivial yieldable handler at most 10 µs and at most 0.15 times that of a
//! `std::thread`, which handler-thread reuse makes possible (the handler runs on a parked
//! thread; `yieldable_thread_fresh` opts out of reuse and shows what a new OS thread costs).
//! Criterion runs its cases one after the other, and on a shared machine the load drifts between
//! them; so after criterion's summary the bench also alternates the two spawns one by one and
//! prints the ratio of their medians (`spawn_join/interleaved`), a second opinion on that goal.
//!
//! Run: `cargo bench --bench yield_overhead`; figures and ratios in `docs/benchmarks.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ythread::{Executor, YieldableThread, Yielder};
use ythread_suite::tasks::tiny;

/// A handler that has not finished after this long is stuck: fail instead of hanging.
const HANDLER_BOUND: Duration = Duration::from_secs(120);

/// The name the interleaved spawn comparison answers to in a filter.
const INTERLEAVED_ID: &str = "spawn_join/interleaved";

/// Criterion options that take a value, so that the value is not mistaken for a filter.
const OPTIONS_WITH_VALUE: [&str; 15] = [
    "--baseline",
    "--color",
    "--confidence-level",
    "--format",
    "--load-baseline",
    "--measurement-time",
    "--noise-threshold",
    "--nresamples",
    "--output-format",
    "--plotting-backend",
    "--profile-time",
    "--sample-size",
    "--save-baseline",
    "--significance-level",
    "--warm-up-time",
];

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        // The HTML plots cost more than the measurements on 2 cores; the figures are in the
        // terminal output and in target/criterion/*/new/estimates.json.
        .without_plots()
        .configure_from_args();
    yields(&mut criterion);
    spawns(&mut criterion);
    criterion.final_summary();
    if measuring_and_selected(INTERLEAVED_ID) {
        spawn_join_interleaved();
    }
}

/// One call of `tiny` per iteration, each way it can be made from inside a handler.
fn yields(criterion: &mut Criterion) {
    let inline = Executor::inline();
    let mut group = criterion.benchmark_group("yield");

    group.bench_function("direct_call", |b| {
        b.iter_custom(|iters| {
            time_in_handler(&inline, iters, |_, iters| {
                for i in 0..iters {
                    black_box(tiny.call(black_box(i)));
                }
            })
        })
    });
    group.bench_function("executor_run_no_switch", |b| {
        let executor = inline.clone();
        b.iter_custom(|iters| {
            let executor = executor.clone();
            time_in_handler(&inline, iters, move |_, iters| {
                for i in 0..iters {
                    black_box(executor.run(tiny, black_box(i)).expect("inline work fails"));
                }
            })
        })
    });
    group.bench_function("apply_inline", |b| {
        b.iter_custom(|iters| {
            time_in_handler(&inline, iters, |y, iters| {
                for i in 0..iters {
                    black_box(y.apply(tiny, black_box(i)).expect("inline work fails"));
                }
            })
        })
    });
    group.bench_function("run_closure_inline", |b| {
        b.iter_custom(|iters| {
            time_in_handler(&inline, iters, |y, iters| {
                for i in 0..iters {
                    let x = black_box(i);
                    black_box(y.run(|| tiny.call(x)).expect("inline work fails"));
                }
            })
        })
    });
    // Last of the yields: it turns on, for the rest of the process, the check that
    // `ythread_executors::init` turns on (a registered task: the verdict cached in its static).
    group.bench_function("apply_inline_checked", |b| {
        let registry = ythread::TaskRegistry::new().with(tiny);
        ythread::portable::require(&registry, ythread::portable::Mode::Warn, |_| {});
        b.iter_custom(|iters| {
            time_in_handler(&inline, iters, |y, iters| {
                for i in 0..iters {
                    black_box(y.apply(tiny, black_box(i)).expect("inline work fails"));
                }
            })
        })
    });
    group.finish();
}

/// Spawn + join of a thread that returns at once: std's, and a yieldable one reused or fresh.
fn spawns(criterion: &mut Criterion) {
    let inline = Executor::inline();
    let mut group = criterion.benchmark_group("spawn_join");

    group.bench_function("std_thread", |b| {
        b.iter(|| {
            std::thread::spawn(|| black_box(1u64))
                .join()
                .expect("the thread does not panic")
        })
    });
    group.bench_function("yieldable_thread", |b| {
        b.iter(|| {
            YieldableThread::spawn(&inline, |_| black_box(1u64))
                .join()
                .expect("the handler does not panic")
        })
    });
    group.bench_function("yieldable_thread_fresh", |b| {
        b.iter(|| {
            YieldableThread::builder()
                .reuse_thread(false)
                .spawn(&inline, |_| black_box(1u64))
                .expect("the OS starts a thread")
                .join()
                .expect("the handler does not panic")
        })
    });
    group.bench_function("yieldable_thread_one_yield", |b| {
        b.iter(|| {
            YieldableThread::spawn(&inline, |y| y.apply(tiny, black_box(1)))
                .join()
                .expect("the handler does not panic")
                .expect("inline work fails")
        })
    });
    group.finish();
}

/// Runs `body(y, iters)` in a fresh yieldable thread on `executor` and returns how long the body
/// took, measured inside the handler.
fn time_in_handler<F>(executor: &Executor, iters: u64, body: F) -> Duration
where
    F: FnOnce(&Yielder<'_>, u64) + Send + 'static,
{
    let mut handle = YieldableThread::spawn(executor, move |y| {
        let start = Instant::now();
        body(y, iters);
        start.elapsed()
    });
    handle
        .join_timeout(HANDLER_BOUND)
        .expect("the benchmark handler failed or is stuck")
}

/// Spawn + join of `std::thread` and of a yieldable thread, alternating one by one so that
/// both see the same load. On a shared machine the load changes between criterion's
/// benchmarks, which run one after the other; this side-by-side ratio of medians is what
/// judges the goal.
fn spawn_join_interleaved() {
    const PAIRS: usize = 20_000;
    let inline = Executor::inline();
    let time = |spawn_join: &dyn Fn()| {
        let start = Instant::now();
        spawn_join();
        start.elapsed()
    };
    let (mut std_times, mut yieldable_times) = (Vec::new(), Vec::new());
    for _ in 0..PAIRS {
        std_times.push(time(&|| {
            let thread = std::thread::spawn(|| black_box(1u64));
            thread.join().expect("the thread does not panic");
        }));
        yieldable_times.push(time(&|| {
            let handle = YieldableThread::spawn(&inline, |_| black_box(1u64));
            handle.join().expect("the handler does not panic");
        }));
    }
    std_times.sort();
    yieldable_times.sort();
    let quartiles = |t: &[Duration]| (t[PAIRS / 4], t[PAIRS / 2], t[PAIRS * 3 / 4]);
    let (std_q1, std_median, std_q3) = quartiles(&std_times);
    let (y_q1, y_median, y_q3) = quartiles(&yieldable_times);
    println!("{INTERLEAVED_ID}: {PAIRS} spawn + join of each kind, alternating one by one");
    println!("  std_thread        median {std_median:?} (quartiles {std_q1:?} .. {std_q3:?})");
    println!("  yieldable_thread  median {y_median:?} (quartiles {y_q1:?} .. {y_q3:?})");
    println!(
        "  ratio of medians  {:.2} (goal: at most 0.15)",
        y_median.as_secs_f64() / std_median.as_secs_f64()
    );
}

/// Whether this run measures (rather than `cargo test --benches` or `--list`) and its filter,
/// if any, selects `id`. Criterion's filter is a regular expression; a plain substring test
/// is enough for the names used here.
fn measuring_and_selected(id: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if !has("--bench") || has("--test") || has("--list") {
        return false;
    }
    let mut filter = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if OPTIONS_WITH_VALUE.contains(&word.as_str()) {
            words.next();
        } else if !word.starts_with('-') {
            filter = Some(word.as_str());
        }
    }
    filter.is_none_or(|f| id.contains(f))
}
