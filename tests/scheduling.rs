//! Learned scheduling in the in-process strategies: waiting work is served shortest predicted
//! first, long work is overtaken a bounded number of times, cheap work runs on the handler's
//! own thread, a task whose cost changes is relearned, and the metrics count what ran.
//!
//! Order is observed, never timed: a closure holds the strategy's only slot until the test
//! opens a gate, the test queues work one piece at a time (each is in line, per the metrics,
//! before the next is sent), and the tasks write down the order in which they ran.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use support::{BOUND, executor, join, recv};
use ythread::{Executor, JoinHandle, YieldableThread};
use ythread_executors::schedule::MAX_OVERTAKES;

/// Tags in the order their work ran, per test (each test uses its own tags).
static RAN: Mutex<Vec<u64>> = Mutex::new(Vec::new());

ythread::task! {
    /// Busy for `spin_us` microseconds, then writes down `tag`. Learned by `spin_us`.
    fn mark(tag: u64, spin_us: u64) -> u64 where cost_grows_with(spin_us) {
        let until = Instant::now() + Duration::from_micros(spin_us);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        RAN.lock().push(tag);
        tag
    }
}

/// Teaches `mark` what `spin_us` costs.
fn teach(executor: &Executor, spin_us: u64) {
    for _ in 0..3 {
        executor.run(mark, (0, spin_us)).unwrap();
    }
}

/// Occupies the strategy's one slot with a closure until the returned sender is dropped or
/// sent to, and waits until it runs.
fn block_the_slot(executor: &Executor) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let (open, gate) = mpsc::channel::<()>();
    let (started, running) = mpsc::channel();
    let handle = YieldableThread::spawn(executor, move |y| {
        y.run(move || {
            let _ = started.send(());
            let _ = gate.recv_timeout(BOUND);
        })
        .unwrap();
    });
    recv(&running, "the blocker to run");
    (open, handle)
}

/// Yields `mark(tag, spin_us)` from a new handler and returns once it waits in line.
fn queue_mark(executor: &Executor, tag: u64, spin_us: u64) -> JoinHandle<u64> {
    let before = executor.metrics().waiting;
    let handle = YieldableThread::spawn(executor, move |y| y.apply(mark, (tag, spin_us)).unwrap());
    eventually("the work to wait in line", || {
        executor.metrics().waiting > before
    });
    handle
}

fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not after {BOUND:?}");
        thread::yield_now();
    }
}

/// Runs the queued handlers: opens the gate and joins everything; returns the order of tags.
fn release(
    gate: mpsc::Sender<()>,
    blocker: JoinHandle<()>,
    queued: Vec<JoinHandle<u64>>,
    tags: std::ops::Range<u64>,
) -> Vec<u64> {
    gate.send(()).unwrap();
    join(blocker).unwrap();
    for handle in queued {
        join(handle).unwrap();
    }
    RAN.lock()
        .iter()
        .copied()
        .filter(|t| tags.contains(t))
        .collect()
}

#[test]
fn a_short_job_queued_behind_long_ones_runs_first() {
    // No express thread: what is tested is the order of the line itself.
    for (config, tag) in [
        ("rayon:1,inline_below=off,express=0", 100),
        ("exclusive", 110),
    ] {
        let executor = executor(config);
        teach(&executor, 2_000);
        teach(&executor, 1);
        let (gate, blocker) = block_the_slot(&executor);
        let queued = vec![
            queue_mark(&executor, tag + 1, 2_000),
            queue_mark(&executor, tag + 2, 2_000),
            queue_mark(&executor, tag + 3, 1),
        ];
        let order = release(gate, blocker, queued, tag + 1..tag + 4);
        assert_eq!(order, [tag + 3, tag + 1, tag + 2], "{config}");
    }
}

#[test]
fn under_fifo_order_the_line_is_first_come_first_served() {
    let executor = executor("rayon:1,express=0,order=fifo,inline_below=off");
    teach(&executor, 2_000);
    teach(&executor, 1);
    let (gate, blocker) = block_the_slot(&executor);
    let queued = vec![
        queue_mark(&executor, 201, 2_000),
        queue_mark(&executor, 202, 1),
        queue_mark(&executor, 203, 2_000),
    ];
    assert_eq!(release(gate, blocker, queued, 201..204), [201, 202, 203]);
}

#[test]
fn a_long_job_under_a_stream_of_short_ones_is_overtaken_at_most_the_bound() {
    let executor = executor("rayon:1,inline_below=off,express=0");
    teach(&executor, 1);
    let (gate, blocker) = block_the_slot(&executor);
    // Never run at this size, nor near it: unknown, so as long as can be.
    let mut queued = vec![queue_mark(&executor, 300, 1_024)];
    let shorts = 2 * u64::from(MAX_OVERTAKES);
    for tag in 301..=300 + shorts {
        queued.push(queue_mark(&executor, tag, 1));
    }
    let order = release(gate, blocker, queued, 300..301 + shorts);
    let position = order.iter().position(|&t| t == 300).unwrap();
    assert_eq!(position, MAX_OVERTAKES as usize, "{order:?}");
}

ythread::task! {
    /// The thread the task runs on, and nothing else: about as cheap as work gets.
    fn where_am_i() -> u64 {
        thread_number(thread::current().id())
    }
}

fn thread_number(id: ThreadId) -> u64 {
    // `ThreadId` is not serialisable; its debug form holds the number.
    format!("{id:?}")
        .trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .unwrap()
}

/// Yields `where_am_i` `runs` times from one handler; how many ran on the handler's thread.
fn runs_on_the_handlers_thread(executor: &Executor, runs: usize) -> Vec<bool> {
    join(YieldableThread::spawn(executor, move |y| {
        let me = thread_number(thread::current().id());
        (0..runs)
            .map(|_| y.apply(where_am_i, ()).unwrap() == me)
            .collect::<Vec<bool>>()
    }))
    .unwrap()
}

#[test]
fn work_predicted_cheaper_than_the_hand_off_runs_on_the_handlers_thread_under_rayon() {
    let executor = executor("rayon:1");
    let here = runs_on_the_handlers_thread(&executor, 100);
    assert!(!here[0], "never seen: it counts as long and is handed off");
    assert!(here.iter().any(|&h| h), "learned cheap: inline at last");
    let metrics = executor.metrics();
    assert!(metrics.inline_below.is_some(), "{metrics}");
    let task = metrics.task("::where_am_i").unwrap();
    assert_eq!(task.runs, 100);
    assert!(task.inline >= 1 && task.offloaded >= 1, "{task}");

    let executor = support::executor("rayon:1,inline_below=off");
    let here = runs_on_the_handlers_thread(&executor, 50);
    assert!(here.iter().all(|&h| !h), "with inlining off, never");
}

static EXTRA_COST_MS: AtomicU64 = AtomicU64::new(0);

ythread::task! {
    /// Returns the thread it ran on, after sleeping `EXTRA_COST_MS`: a cost that changes.
    fn changing_cost() -> u64 {
        let ms = EXTRA_COST_MS.load(Ordering::Relaxed);
        if ms > 0 {
            thread::sleep(Duration::from_millis(ms));
        }
        thread_number(thread::current().id())
    }
}

#[test]
fn a_task_whose_cost_changes_is_relearned() {
    let executor = executor("rayon:1,inline_below=1ms");
    let handle = YieldableThread::spawn(&executor, |y| {
        let me = thread_number(thread::current().id());
        let run = || y.apply(changing_cost, ()).unwrap() == me;
        // Cheap: inline from the second run on.
        run();
        assert!(run(), "cheap work runs inline once learned");
        // It becomes dear: offloaded within a few runs (the estimate moves an eighth a run).
        EXTRA_COST_MS.store(5, Ordering::Relaxed);
        let dear = (0..40).position(|_| !run());
        assert!(dear.is_some(), "dear work is handed off once relearned");
        // Cheap again: back inline.
        EXTRA_COST_MS.store(0, Ordering::Relaxed);
        let cheap = (0..200).position(|_| run());
        assert!(cheap.is_some(), "cheap again: inline again");
    });
    join(handle).unwrap();
    let task = executor.metrics().task("::changing_cost").unwrap().clone();
    assert!(task.inline >= 2 && task.offloaded >= 1, "{task}");
}

ythread::task! {
    /// Work for the metrics test alone, so that other tests cannot change its counts.
    fn counted(x: u64) -> u64 where cost_grows_with(x) {
        std::hint::black_box(x) + 1
    }
}

#[test]
fn metrics_count_what_ran_and_what_was_learned() {
    let executor = executor("rayon:2,inline_below=off");
    for x in [1, 1, 1, 1000, 1000] {
        assert_eq!(executor.run(counted, x).unwrap(), x + 1);
    }
    let failed = executor.run_closure(|| panic!("counted too"));
    assert!(failed.is_err());
    let metrics = executor.metrics();
    assert_eq!((metrics.waiting, metrics.in_flight), (0, 0), "{metrics}");
    assert_eq!(metrics.strategy, "rayon:2,inline_below=off");
    let task = metrics.task("::counted").unwrap();
    assert_eq!(
        (task.runs, task.inline, task.offloaded),
        (5, 0, 5),
        "{task}"
    );
    assert!(task.wait_p50 <= task.wait_p99, "{task}");
    let sizes: Vec<_> = task.learned.iter().map(|l| l.sizes).collect();
    assert_eq!(sizes, [Some((1, 1)), Some((512, 1023))], "{task}");
    assert_eq!(task.learned[0].runs, 3);
    let closures = metrics.task("closure work").unwrap();
    assert_eq!(closures.runs, 1);
    let line = metrics.to_string();
    assert!(
        line.contains("::counted: 5 runs (0 inline, 5 offloaded)"),
        "{line}"
    );

    let inline = Executor::inline();
    inline.run(counted, 1).unwrap();
    assert!(inline.metrics().tasks.is_empty(), "inline keeps no metrics");
}
