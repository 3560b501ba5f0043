//! Cancellation through the public API: `JoinHandle::cancel` makes the handler unwind at its
//! next yield point with its destructors run, and `join` reports `is_cancelled()`; a handler
//! that is past its last yield keeps its result; other handlers are untouched.
//!
//! No test sleeps: each handler blocks on a channel the test controls, the test cancels while
//! it is blocked, then releases it, so the order of events is fixed by the channels.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use support::{BOUND, in_process_executors, is_child, join, recv, run_child_test};
use ythread::{ErrorKind, Executor, YieldableThread, Yielder};
use ythread_suite::tasks::sumn;

/// Sets its flag when dropped: proves that unwinding ran the handler's destructors.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

fn is_set(flag: &AtomicBool) -> bool {
    flag.load(Ordering::SeqCst)
}

#[test]
fn cancel_unwinds_the_handler_on_return_from_the_yield_it_is_suspended_in() {
    for (config, executor) in in_process_executors() {
        let (dropped, after_yield) = (flag(), flag());
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let handle = YieldableThread::spawn(&executor, {
            let (dropped, after_yield) = (Arc::clone(&dropped), Arc::clone(&after_yield));
            move |y| {
                let _local = DropFlag(dropped);
                // The work blocks until the test, which has cancelled meanwhile, releases it.
                let released = y.run(move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv_timeout(BOUND).is_ok()
                });
                after_yield.store(true, Ordering::SeqCst);
                released
            }
        });
        recv(&started_rx, "the work to start");
        handle.cancel();
        release_tx.send(()).unwrap();
        let err = join(handle).unwrap_err();
        assert!(err.is_cancelled(), "{config}: {err}");
        assert_eq!(err.kind(), ErrorKind::Cancelled);
        assert_eq!(err.to_string(), "the handler was cancelled");
        assert!(
            is_set(&dropped),
            "{config}: the handler's locals were not dropped"
        );
        assert!(
            !is_set(&after_yield),
            "{config}: the handler ran past its yield"
        );
    }
}

#[test]
fn cancel_while_the_handler_blocks_outside_work_stops_it_before_its_next_work_runs() {
    for (config, executor) in in_process_executors() {
        let (dropped, work_ran) = (flag(), flag());
        let (waiting_tx, waiting_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let handle = YieldableThread::spawn(&executor, {
            let (dropped, work_ran) = (Arc::clone(&dropped), Arc::clone(&work_ran));
            move |y| {
                let _local = DropFlag(dropped);
                y.apply(sumn, 10).unwrap(); // a yield before the cancel is unaffected
                waiting_tx.send(()).unwrap();
                // Blocking I/O stand-in: cancel cannot interrupt it, only the next yield.
                release_rx.recv_timeout(BOUND).unwrap();
                y.run(|| work_ran.store(true, Ordering::SeqCst))
            }
        });
        recv(&waiting_rx, "the handler to block");
        handle.cancel();
        release_tx.send(()).unwrap();
        assert!(join(handle).unwrap_err().is_cancelled(), "{config}");
        assert!(is_set(&dropped), "{config}");
        assert!(
            !is_set(&work_ran),
            "{config}: work yielded after cancel still ran"
        );
    }
}

#[test]
fn a_handler_past_its_last_yield_keeps_its_result() {
    for (config, executor) in in_process_executors() {
        let (done_tx, done_rx) = mpsc::channel();
        let handle = YieldableThread::spawn(&executor, move |y| {
            let total = y.apply(sumn, 100).unwrap();
            done_tx.send(()).unwrap();
            total // no yield after this point, so a cancel can no longer stop it
        });
        recv(&done_rx, "the handler's last yield");
        handle.cancel();
        handle.cancel(); // cancelling twice is harmless
        assert_eq!(join(handle).unwrap(), 5050, "{config}");
    }
}

#[test]
fn cancel_reaches_only_the_handler_it_was_called_on() {
    const HANDLERS: usize = 8;
    const VICTIM: usize = 2;
    for (config, executor) in in_process_executors() {
        let ready = Arc::new(Barrier::new(HANDLERS + 1));
        let go = Arc::new(Barrier::new(HANDLERS + 1));
        let handles: Vec<_> = (0..HANDLERS)
            .map(|_| {
                let (ready, go) = (Arc::clone(&ready), Arc::clone(&go));
                YieldableThread::spawn(&executor, move |y| {
                    ready.wait();
                    go.wait();
                    (0..10).map(|i| y.apply(sumn, i).unwrap()).sum::<u64>()
                })
            })
            .collect();
        support::meet(&ready, "every handler starting"); // none has yielded yet
        handles[VICTIM].cancel();
        support::meet(&go, "every handler passing the start line");
        let expected: u64 = (0..10).map(|i| sumn.call(i)).sum();
        for (t, handle) in handles.into_iter().enumerate() {
            let outcome = join(handle);
            if t == VICTIM {
                assert!(outcome.unwrap_err().is_cancelled(), "{config}");
            } else {
                assert_eq!(outcome.unwrap(), expected, "{config}: handler {t}");
            }
        }
    }
}

#[test]
fn a_handler_that_never_yields_can_poll_for_cancellation() {
    let (looping_tx, looping_rx) = mpsc::channel();
    let handle = YieldableThread::spawn(&Executor::inline(), move |y| {
        looping_tx.send(()).unwrap();
        let deadline = Instant::now() + BOUND;
        while !y.is_cancelled() {
            assert!(Instant::now() < deadline, "cancel never became visible");
            std::thread::yield_now();
        }
        "stopped on request"
    });
    recv(&looping_rx, "the handler's loop");
    handle.cancel();
    // It returned on its own, so it keeps its result.
    assert_eq!(join(handle).unwrap(), "stopped on request");
}

#[test]
fn a_handler_that_catches_the_cancellation_is_cancelled_again_at_its_next_yield() {
    let dropped = flag();
    let (waiting_tx, waiting_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let handle = YieldableThread::spawn(&Executor::inline(), {
        let dropped = Arc::clone(&dropped);
        move |y| {
            let _local = DropFlag(dropped);
            waiting_tx.send(()).unwrap();
            release_rx.recv_timeout(BOUND).unwrap();
            let caught = catch_unwind(AssertUnwindSafe(|| y.apply(sumn, 1)));
            assert!(caught.is_err(), "the yield after cancel should unwind");
            // Cancellation is sticky: the next yield unwinds again.
            y.apply(sumn, 2)
        }
    });
    recv(&waiting_rx, "the handler to block");
    handle.cancel();
    release_tx.send(()).unwrap();
    assert!(join(handle).unwrap_err().is_cancelled());
    assert!(is_set(&dropped));
}

/// Yields work from its destructor, as a guard that flushes a log or a reply might.
struct YieldOnDrop<'a, 'y> {
    y: &'a Yielder<'y>,
    result: Arc<parking_lot::Mutex<Option<String>>>,
}

impl Drop for YieldOnDrop<'_, '_> {
    fn drop(&mut self) {
        let outcome = match self.y.apply(sumn, 10) {
            Ok(v) => format!("ok {v}"),
            Err(e) => format!("error {e}"),
        };
        *self.result.lock() = Some(outcome);
    }
}

const YIELD_IN_DROP_CHILD: &str = "YTHREAD_TEST_YIELD_IN_DROP_CHILD";

/// Runs in a child process only (see the test below): a process abort must not take down the
/// test binary that reports it.
#[test]
fn yield_in_drop_child() {
    if !is_child(YIELD_IN_DROP_CHILD) {
        return; // only meaningful in the child process the test below starts
    }
    let result = Arc::new(parking_lot::Mutex::new(None));
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let handle = YieldableThread::spawn(&Executor::inline(), {
        let result = Arc::clone(&result);
        move |y| {
            let _guard = YieldOnDrop { y, result };
            y.run(move || {
                started_tx.send(()).unwrap();
                release_rx.recv_timeout(BOUND).unwrap();
            })
        }
    });
    recv(&started_rx, "the work to start");
    handle.cancel();
    release_tx.send(()).unwrap();
    assert!(join(handle).unwrap_err().is_cancelled());
    // Either the cleanup work ran, or it was refused as cancelled; both leave the process up.
    let seen = result
        .lock()
        .clone()
        .expect("the guard's destructor did not finish");
    assert!(
        seen == "ok 55" || seen == "error the handler was cancelled",
        "{seen}"
    );
}

#[test]
fn a_destructor_that_yields_during_cancellation_does_not_abort_the_process() {
    run_child_test("yield_in_drop_child", YIELD_IN_DROP_CHILD).assert_passed();
}
