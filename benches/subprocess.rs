//! The subprocess strategy against its floor and its peer, side by side in one run.
//!
//! ```text
//! cargo bench --bench subprocess
//! ```
//!
//! | group | cases |
//! |---|---|
//! | `tiny_round_trip` | raw Unix-socket ping-pong between two processes (the floor); the pool with spin 0, 20 µs, 50 µs; procspawn's `Pool` |
//! | `payload` | 64 KiB, 1 MiB and 16 MiB `echo_bytes` round trips through the pool; the same bytes over the raw socket |
//! | `tiny_4_callers_2_workers` | time per job with four callers sharing two workers, spin 0, 20 µs, 50 µs |
//!
//! After criterion's groups, `paired_ratio` alternates the pool and the floor in short rounds
//! for the tiny round trip and for 64 KiB, 1 MiB, 16 MiB and 256 MiB payloads (argument and
//! result of that size), all through a pool with the default settings, and 1 MiB again with
//! `express=0`, and prints each median ratio to the floor: the figures behind the payload
//! bars of `docs/subprocess.md`. To run only those (about a minute):
//!
//! ```text
//! cargo bench --bench subprocess -- paired
//! ```
//!
//! (no criterion case is named `paired`, so the filter skips them all).
//!
//! This binary is its own worker program: `main` hands over to `ythread_executors::init` and
//! `procspawn::init` first, and to the echo loop of the floor when started as its peer.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkGroup, Criterion, measurement::WallTime};
use serde_bytes::ByteBuf;
use ythread::Executor;
use ythread_executors::SubprocessPool;
use ythread_executors::subprocess::DEFAULT_SPIN;
use ythread_suite::echo_floor::EchoFloor;
use ythread_suite::tasks::{self, echo_bytes, tiny};

const SPINS: [(&str, Duration); 3] = [
    ("spin_0", Duration::ZERO),
    ("spin_20us", Duration::from_micros(20)),
    ("spin_50us", Duration::from_micros(50)),
];

fn main() {
    ythread_executors::init(tasks::registry());
    procspawn::init();
    if ythread_suite::echo_floor::serve_if_peer() {
        return;
    }
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    tiny_round_trip(&mut criterion);
    payload(&mut criterion);
    concurrent(&mut criterion);
    criterion.final_summary();
    paired_ratio();
}

/// The pool against the floor, alternating in short rounds so that both see the same
/// machine: on a shared machine the load drifts between criterion's cases, which makes the
/// ratio of two separate medians noisy. Prints the median of the per-round ratios.
fn paired_ratio() {
    let executor = pool(1, DEFAULT_SPIN);
    let mut floor = Floor::start();
    let message = 41u64.to_le_bytes();
    paired(
        "tiny round trip",
        2_000,
        21,
        || {},
        || black_box(floor.round_trip(black_box(&message))),
        |i| black_box(executor.run(tiny, i).unwrap()) as usize,
    );
    // The payload figures are the defaults' (an express worker, the regular one in the idle
    // class); `express=0` is measured beside them for 1 MiB, to show what the lane costs.
    let no_express = Executor::new(
        SubprocessPool::builder()
            .workers(1)
            .express(0)
            .build()
            .expect("the bench binary is its own worker program"),
    );
    let payload_runs = PAYLOADS
        .iter()
        .map(|&(what, len, ops, rounds)| (what.to_owned(), len, ops, rounds, &executor))
        .chain(std::iter::once((
            "1 MiB (express=0)".to_owned(),
            1 << 20,
            20,
            21,
            &no_express,
        )));
    // The caller owns its payload and moves it into the job: copies are made between rounds.
    for (what, len, ops, rounds, executor) in payload_runs {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let payloads = std::cell::RefCell::new(Vec::new());
        let mut floor = Floor::start();
        paired(
            &format!("{what} round trip"),
            ops,
            rounds,
            || *payloads.borrow_mut() = vec![ByteBuf::from(bytes.clone()); ops as usize],
            || floor.round_trip(&bytes),
            |_| {
                let payload = payloads.borrow_mut().pop().expect("one payload per job");
                executor.run(echo_bytes, payload).unwrap().len()
            },
        );
    }
}

/// The paired payload sizes: name, bytes, jobs per round, rounds.
const PAYLOADS: [(&str, usize, u64, usize); 4] = [
    ("64 KiB", 64 << 10, 200, 21),
    ("1 MiB", 1 << 20, 20, 21),
    ("16 MiB", 16 << 20, 4, 11),
    ("256 MiB", 256 << 20, 1, 5),
];

fn paired(
    what: &str,
    ops: u64,
    rounds: usize,
    mut before_round: impl FnMut(),
    mut floor: impl FnMut() -> usize,
    mut ours: impl FnMut(u64) -> usize,
) {
    let count = rounds;
    let mut rounds: Vec<(f64, f64)> = (0..count)
        .map(|_| {
            before_round();
            let started = Instant::now();
            for _ in 0..ops {
                black_box(floor());
            }
            let floor_us = started.elapsed().as_secs_f64() * 1e6 / ops as f64;
            let started = Instant::now();
            for i in 0..ops {
                black_box(ours(i));
            }
            (floor_us, started.elapsed().as_secs_f64() * 1e6 / ops as f64)
        })
        .collect();
    rounds.sort_by(|a, b| (a.1 / a.0).total_cmp(&(b.1 / b.0)));
    let (floor_us, ours_us) = rounds[count / 2];
    println!(
        "paired {what} ({count} alternating rounds of {ops}): median ratio {:.2} to the floor \
         (that round: floor {floor_us:.1} µs, ythread {ours_us:.1} µs)",
        ours_us / floor_us
    );
}

fn pool(workers: usize, spin: Duration) -> Executor {
    Executor::new(
        SubprocessPool::builder()
            .workers(workers)
            .spin(spin)
            .build()
            .expect("the bench binary is its own worker program"),
    )
}

fn tiny_round_trip(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("tiny_round_trip");
    let mut floor = Floor::start();
    let message = 41u64.to_le_bytes();
    group.bench_function("uds_floor", |b| {
        b.iter(|| floor.round_trip(black_box(&message)))
    });
    drop(floor);

    for (name, spin) in SPINS {
        let executor = pool(1, spin);
        group.bench_function(format!("ythread_{name}"), |b| {
            b.iter(|| executor.run(tiny, black_box(41)).unwrap())
        });
    }

    let procspawn_pool = procspawn::Pool::new(1).expect("procspawn pool");
    group.bench_function("procspawn_pool", |b| {
        b.iter(|| {
            procspawn_pool
                .spawn(black_box(41u64), |x| x.wrapping_add(1))
                .join()
                .unwrap()
        })
    });
    procspawn_pool.kill();
    group.finish();
}

fn payload(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("payload");
    let executor = pool(1, DEFAULT_SPIN);
    let mut floor = Floor::start();
    for (what, len) in [
        ("64KiB", 64usize << 10),
        ("1MiB", 1 << 20),
        ("16MiB", 16 << 20),
    ] {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let buf = ByteBuf::from(bytes.clone());
        // The caller owns its payload and moves it into the job: the clone is set-up.
        group.bench_function(format!("ythread_echo_bytes_{what}"), |b| {
            b.iter_batched(
                || buf.clone(),
                |payload| executor.run(echo_bytes, payload).unwrap(),
                BatchSize::LargeInput,
            )
        });
        group.bench_function(format!("uds_floor_{what}"), |b| {
            b.iter(|| floor.round_trip(&bytes))
        });
    }
    group.finish();
}

fn concurrent(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("tiny_4_callers_2_workers");
    for (name, spin) in SPINS {
        let executor = pool(2, spin);
        bench_callers(&mut group, &format!("ythread_{name}"), &executor, 4);
    }
    group.finish();
}

/// Time per job with `callers` threads each running their share of the jobs.
fn bench_callers(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    executor: &Executor,
    callers: u64,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let share = iters.div_ceil(callers);
            let started = Instant::now();
            thread::scope(|scope| {
                for _ in 0..callers {
                    scope.spawn(|| {
                        for i in 0..share {
                            black_box(executor.run(tiny, i).unwrap());
                        }
                    });
                }
            });
            started.elapsed()
        })
    });
}

/// The floor (`ythread_suite::echo_floor`): the same bytes echoed by a second process over a
/// Unix socket pair; a failure ends the bench.
struct Floor(EchoFloor);

impl Floor {
    fn start() -> Self {
        Floor(EchoFloor::start().expect("start the echo peer"))
    }

    fn round_trip(&mut self, message: &[u8]) -> usize {
        self.0.round_trip(message).expect("the echo")
    }
}
