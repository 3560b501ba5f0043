//! Learned scheduling in the subprocess pool: the express worker takes short work while the
//! others are busy, and keeps the pool's guarantees (crash, deadline, recycling); nothing runs
//! in the parent unless `inline_below` allows it; the metrics count what ran.
//!
//! Cost models are process-wide, so each test that counts inline runs uses tasks no other
//! test of this binary runs.
//!
//! A worker is kept busy by `wait_for_pipe`, which blocks on a named pipe until the test writes
//! to it: no timing involved.

mod subprocess_support;

use std::thread;
use std::time::Duration;

use subprocess_support::{BOUND, Pipe, eventually, pool, within};
use ythread::{Executor, JoinHandle, YieldableThread};
use ythread_executors::WorkerPriority;
use ythread_executors::schedule::{InlineBelow, Scheduling};
use ythread_suite::tasks::{Misbehave, pid, short_unless, sleep_ms, tiny, wait_for_pipe};

/// Teaches the parent's cost model that `pid` and `short_unless(Fine)` are short.
fn teach_short(executor: &Executor) {
    for _ in 0..3 {
        executor.run(pid, ()).unwrap();
        executor.run(short_unless, Misbehave::Fine).unwrap();
    }
}

/// Keeps the pool's regular worker busy until the pipe is opened; returns once it is.
fn occupy_regular_worker(executor: &Executor, pipe: &Pipe) -> JoinHandle<u32> {
    let before = executor.metrics().in_flight;
    let name = pipe.name();
    let handle = YieldableThread::spawn(executor, move |y| y.apply(wait_for_pipe, name).unwrap());
    eventually("the regular worker to take the blocking job", || {
        executor.metrics().in_flight > before
    });
    handle
}

fn join<R>(mut handle: JoinHandle<R>) -> R {
    handle
        .join_timeout(BOUND)
        .unwrap_or_else(|e| panic!("handler: {e}"))
}

#[test]
fn the_express_worker_takes_short_work_while_the_others_are_busy() {
    let pool = pool(1).express(1).build().unwrap();
    assert_eq!((pool.workers(), pool.express_workers()), (1, 1));
    assert_eq!(pool.pids().len(), 2);
    let executor = Executor::new(pool);
    teach_short(&executor);
    let pipe = Pipe::new("express");
    let busy = occupy_regular_worker(&executor, &pipe);
    let express = within("short work while the regular worker is busy", {
        let executor = executor.clone();
        move || {
            (0..5)
                .map(|_| executor.run(pid, ()).unwrap())
                .collect::<Vec<_>>()
        }
    });
    assert!(express.windows(2).all(|w| w[0] == w[1]), "{express:?}");
    pipe.open();
    let regular = join(busy);
    assert_ne!(regular, express[0], "two different workers");
    assert_ne!(express[0], std::process::id(), "out of process");
}

/// The nice value and scheduling policy of process `process`, from `/proc/PID/stat`.
fn priority_of(process: u32) -> (i32, u32) {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap();
    // Fields after the command's closing `)`, which is field 2: field N is at N - 3.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (
        fields[19 - 3].parse().unwrap(),
        fields[41 - 3].parse().unwrap(),
    )
}

fn sorted(mut values: Vec<(i32, u32)>) -> Vec<(i32, u32)> {
    values.sort();
    values
}

const NORMAL: u32 = libc::SCHED_OTHER as u32;
const IDLE: u32 = libc::SCHED_IDLE as u32;

#[test]
fn regular_workers_yield_the_cpu_to_the_express_worker() {
    let (own, policy) = priority_of(std::process::id());
    assert_eq!(policy, NORMAL);
    let workers = pool(2).express(1).build().unwrap();
    let priorities: Vec<_> = workers.pids().into_iter().map(priority_of).collect();
    assert_eq!(
        sorted(priorities),
        sorted(vec![(own, NORMAL), (own, IDLE), (own, IDLE)]),
        "the express worker as the parent, the regular ones idle"
    );
    drop(workers);

    let workers = pool(2)
        .express(1)
        .nice(WorkerPriority::Nice(3))
        .build()
        .unwrap();
    let priorities: Vec<_> = workers.pids().into_iter().map(priority_of).collect();
    assert_eq!(
        sorted(priorities),
        sorted(vec![(own, NORMAL), (3, NORMAL), (3, NORMAL)]),
        "as configured"
    );
    drop(workers);

    let workers = pool(2).build().unwrap();
    let priorities: Vec<_> = workers.pids().into_iter().map(priority_of).collect();
    assert_eq!(
        priorities,
        [(own, NORMAL), (own, NORMAL)],
        "no express lane: priorities untouched"
    );
}

#[test]
fn an_express_worker_that_crashes_or_is_due_for_recycling_is_replaced() {
    let pool = pool(1).express(1).recycle_after(Some(3)).build().unwrap();
    let status = pool.status();
    let executor = Executor::new(pool);
    teach_short(&executor);
    let pipe = Pipe::new("guarantees");
    let busy = occupy_regular_worker(&executor, &pipe);
    let (crashed, pids) = within("misbehaving short work", {
        let executor = executor.clone();
        move || {
            let crashed = executor.run(short_unless, Misbehave::Abort).unwrap_err();
            let pids: Vec<u32> = (0..7).map(|_| executor.run(pid, ()).unwrap()).collect();
            (crashed, pids)
        }
    });
    assert!(crashed.is_worker_died(), "{crashed}");
    assert!(
        !pids.contains(&crashed.pid().unwrap()),
        "replaced: {pids:?}"
    );
    let mut distinct = pids.clone();
    distinct.dedup();
    assert!(distinct.len() >= 3, "recycled every 3 jobs: {pids:?}");
    pipe.open();
    assert!(
        !pids.contains(&join(busy)),
        "all of it on the express worker"
    );
    eventually("the pool to be whole again", || status.pids().len() == 2);
}

#[test]
fn an_express_worker_past_its_deadline_is_killed_and_replaced() {
    let pool = pool(1)
        .express(1)
        .timeout(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    let status = pool.status();
    let executor = Executor::new(pool);
    teach_short(&executor);
    let (express, ran_away, next) = within("a runaway short job", move || {
        // Both workers idle: short work prefers the express one.
        eventually("both workers idle", || status.idle_workers() == 2);
        let express = executor.run(pid, ()).unwrap();
        eventually("both workers idle", || status.idle_workers() == 2);
        let ran_away = executor.run(short_unless, Misbehave::Spin).unwrap_err();
        eventually("the pool to be whole again", || status.idle_workers() == 2);
        (express, ran_away, executor.run(pid, ()).unwrap())
    });
    assert!(ran_away.is_timeout(), "{ran_away}");
    assert!(
        ran_away
            .to_string()
            .contains(&format!("worker process {express}")),
        "the express worker ran it: {ran_away}"
    );
    assert_ne!(next, express, "replaced");
}

#[test]
fn with_inlining_off_no_task_ever_runs_in_the_parent() {
    let executor = Executor::new(pool(1).express(1).build().unwrap());
    let me = std::process::id();
    let pids = within("100 short jobs", move || {
        (0..100)
            .map(|_| executor.run(pid, ()).unwrap())
            .collect::<Vec<_>>()
    });
    assert!(pids.iter().all(|&p| p != me), "{pids:?}");
}

#[test]
fn with_inlining_allowed_short_work_runs_in_the_parent_and_long_work_does_not() {
    let scheduling = Scheduling::new().inline_below(InlineBelow::Below(Duration::from_millis(5)));
    let executor = Executor::new(pool(1).scheduling(scheduling).build().unwrap());
    assert!(
        executor.describe().contains("inline_below=5ms"),
        "{executor:?}"
    );
    let metrics = within("short and long jobs", move || {
        // `tiny` and `sleep_ms` are this test's alone: no other test teaches their models.
        for x in 0..3 {
            assert_eq!(executor.run(tiny, x).unwrap(), x + 1);
        }
        for _ in 0..2 {
            executor.run(sleep_ms, 20).unwrap();
        }
        executor.metrics()
    });
    let tinies = metrics.task("::tiny").unwrap();
    assert_eq!(
        (tinies.inline, tinies.offloaded),
        (2, 1),
        "learned short: {tinies}"
    );
    let sleeps = metrics.task("::sleep_ms").unwrap();
    assert_eq!((sleeps.inline, sleeps.offloaded), (0, 2), "{sleeps}");
}

#[test]
fn metrics_count_jobs_waiting_and_running() {
    let executor = Executor::new(pool(1).build().unwrap());
    let pipe = Pipe::new("metrics");
    let busy = occupy_regular_worker(&executor, &pipe);
    let metrics = executor.metrics();
    assert_eq!((metrics.in_flight, metrics.waiting), (1, 0), "{metrics}");
    let queued = {
        let executor = executor.clone();
        thread::spawn(move || executor.run(pid, ()))
    };
    eventually("the second job to wait", || executor.metrics().waiting == 1);
    pipe.open();
    join(busy);
    queued.join().unwrap().unwrap();
    let metrics = executor.metrics();
    assert_eq!((metrics.in_flight, metrics.waiting), (0, 0), "{metrics}");
    let task = metrics.task("::wait_for_pipe").unwrap();
    assert_eq!((task.runs, task.offloaded), (1, 1), "{task}");
    assert!(
        !task.learned.is_empty(),
        "the worker's time was learned: {task}"
    );
}
