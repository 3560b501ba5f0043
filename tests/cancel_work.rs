//! Cancelling a handler whose work waits in a strategy's line or runs in a worker: queued
//! work leaves the line without running, under every strategy that queues; work running in a
//! worker process dies with its worker and the pool heals; work running in this process
//! finishes and its result is discarded. Every case ends with `join` reporting `Cancelled`.
//!
//! The strategy's slot is held by work that blocks until the test lets it go (a closure on a
//! channel in-process, a named pipe in a worker), so no timing is involved.

mod subprocess_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use subprocess_support::{BOUND, Pipe, eventually, pool};
use ythread::{Executor, JoinHandle, YieldableThread};
use ythread_executors::ExecutorConfig;
use ythread_suite::tasks::{pid, wait_for_pipe};

fn executor(config: &str) -> Executor {
    config
        .parse::<ExecutorConfig>()
        .and_then(|c| c.build())
        .unwrap()
}

fn join<R>(mut handle: JoinHandle<R>) -> Result<R, ythread::Error> {
    match handle.join_timeout(BOUND) {
        Err(e) if e.is_timeout() => panic!("handler still running after {BOUND:?}"),
        other => other,
    }
}

static RAN: AtomicU64 = AtomicU64::new(0);

ythread::task! {
    /// Counts that it ran.
    fn counted(tag: u64) -> u64 {
        RAN.fetch_add(1, Ordering::SeqCst);
        tag
    }
}

/// Holds the strategy's one slot with a closure until the returned sender is used, and
/// waits until it runs. Returns the gate and the holder.
fn hold_the_slot(
    executor: &Executor,
    finished: Arc<AtomicBool>,
) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let (open, gate) = mpsc::channel::<()>();
    let (started, running) = mpsc::channel();
    let holder = YieldableThread::spawn(executor, move |y| {
        let _ = y.run(move || {
            let _ = started.send(());
            let _ = gate.recv_timeout(BOUND);
            finished.store(true, Ordering::SeqCst);
        });
    });
    running.recv_timeout(BOUND).expect("the holder runs");
    (open, holder)
}

#[test]
fn cancelled_work_waiting_in_line_leaves_it_without_running() {
    // No express thread: short work would not wait behind the held slot.
    for config in ["exclusive", "rayon:1,inline_below=off,express=0"] {
        let executor = executor(config);
        let ran_before = RAN.load(Ordering::SeqCst);
        let (gate, holder) = hold_the_slot(&executor, Arc::new(AtomicBool::new(false)));
        let waiting = YieldableThread::spawn(&executor, |y| y.apply(counted, 7));
        eventually("the work to wait in line", || {
            executor.metrics().waiting == 1
        });
        waiting.cancel();
        let error = join(waiting).unwrap_err();
        assert!(error.is_cancelled(), "{config}: {error}");
        assert_eq!(executor.metrics().waiting, 0, "{config}: it left the line");
        gate.send(()).unwrap();
        join(holder).unwrap();
        // The line is still whole: the next work runs.
        assert_eq!(executor.run(counted, 8).unwrap(), 8);
        assert_eq!(
            RAN.load(Ordering::SeqCst),
            ran_before + 1,
            "{config}: the cancelled work never ran"
        );
    }
}

#[test]
fn cancelled_in_process_work_finishes_and_its_result_is_discarded() {
    let executor = executor("rayon:1,inline_below=off");
    let finished = Arc::new(AtomicBool::new(false));
    let (gate, holder) = hold_the_slot(&executor, Arc::clone(&finished));
    holder.cancel();
    gate.send(()).unwrap();
    let error = join(holder).unwrap_err();
    assert!(error.is_cancelled(), "{error}");
    assert!(
        finished.load(Ordering::SeqCst),
        "the running work was not interrupted"
    );
}

#[test]
fn cancelled_work_waiting_for_a_worker_leaves_the_line_and_the_worker_lives() {
    let pool = pool(1).build().unwrap();
    let status = pool.status();
    let worker = status.pids()[0];
    let executor = Executor::new(pool);
    let pipe = Pipe::new("cancel-queued");
    let path = pipe.name();
    let busy = YieldableThread::spawn(&executor, move |y| y.apply(wait_for_pipe, path));
    eventually("the worker to be busy", || {
        executor.metrics().in_flight == 1
    });
    let waiting = YieldableThread::spawn(&executor, |y| y.apply(pid, ()));
    eventually("the job to wait", || executor.metrics().waiting == 1);
    waiting.cancel();
    assert!(join(waiting).unwrap_err().is_cancelled());
    assert_eq!(executor.metrics().waiting, 0);
    pipe.open();
    assert_eq!(join(busy).unwrap().unwrap(), worker);
    assert_eq!(status.pids(), [worker], "nobody killed the worker");
}

/// Starts a job that waits on a pipe, cancels its handler once the job runs in a worker, and
/// returns the handler's error.
fn cancel_once_running(executor: &Executor, name: &str) -> ythread::Error {
    let pipe = Pipe::new(name);
    let path = pipe.name();
    let running = YieldableThread::spawn(executor, move |y| y.apply(wait_for_pipe, path));
    let writer = pipe.hold();
    running.cancel();
    let error = join(running).unwrap_err();
    drop(writer);
    error
}

#[test]
fn cancelled_work_running_in_a_worker_kills_it_and_the_pool_heals() {
    let pool = pool(1).build().unwrap();
    let status = pool.status();
    let worker = status.pids()[0];
    let executor = Executor::new(pool);
    let error = cancel_once_running(&executor, "cancel-running");
    assert!(error.is_cancelled(), "{error}");
    eventually("a replacement worker", || {
        status.pids().len() == 1 && status.pids()[0] != worker
    });
    assert!(
        !subprocess_support::is_our_child(worker),
        "killed and reaped"
    );
    let next = executor.run(pid, ()).unwrap();
    assert_ne!(next, worker);
    assert_eq!(executor.metrics().in_flight, 0);
}

#[test]
fn a_cancel_under_a_deadline_ends_cancelled_not_timed_out() {
    let pool = pool(1)
        .timeout(Some(std::time::Duration::from_secs(3600)))
        .build()
        .unwrap();
    let status = pool.status();
    let worker = status.pids()[0];
    let executor = Executor::new(pool);
    let error = cancel_once_running(&executor, "cancel-deadline");
    assert!(error.is_cancelled(), "{error}");
    let next = executor.run(pid, ()).unwrap();
    assert_ne!(next, worker, "the cancelled job's worker was replaced");
}
