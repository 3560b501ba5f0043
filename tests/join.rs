//! Waiting for handlers: `join_timeout` reports `TimedOut` for a handler that is still running
//! and leaves the handle usable; a result is handed out once; a dropped handle detaches.
//!
//! Handlers block on channels the test controls, so "still running" is a fact, not a guess
//! about timing.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use support::{BOUND, in_process_executors, join, recv};
use ythread::{ErrorKind, Executor, YieldableThread, payload_message};
use ythread_suite::tasks::sumn;

#[test]
fn join_timeout_times_out_on_a_running_handler_and_the_handle_stays_usable() {
    for (config, executor) in in_process_executors() {
        let (waiting_tx, waiting_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<u64>();
        let mut handle = YieldableThread::spawn(&executor, move |y| {
            waiting_tx.send(()).unwrap();
            let n = release_rx.recv_timeout(BOUND).unwrap();
            y.apply(sumn, n).unwrap()
        });
        recv(&waiting_rx, "the handler to block");
        for _ in 0..2 {
            let err = handle
                .join_timeout(Duration::from_millis(1))
                .expect_err("the handler is blocked and cannot have finished");
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{config}: {err}");
            assert!(err.is_timeout());
            assert_eq!(
                err.to_string(),
                "the handler thread did not finish within 1ms"
            );
            assert!(!handle.is_finished(), "{config}");
        }
        release_tx.send(100).unwrap();
        assert_eq!(handle.join_timeout(BOUND).unwrap(), 5050, "{config}");
    }
}

#[test]
fn a_zero_timeout_returns_at_once() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let mut handle = YieldableThread::spawn(&Executor::inline(), move |_| {
        release_rx.recv_timeout(BOUND).unwrap();
    });
    assert!(
        handle
            .join_timeout(Duration::ZERO)
            .unwrap_err()
            .is_timeout()
    );
    release_tx.send(()).unwrap();
    handle.join_timeout(BOUND).unwrap();
}

#[test]
fn a_result_is_handed_out_once_then_join_timeout_says_it_is_gone() {
    let mut handle = YieldableThread::spawn(&Executor::inline(), |y| y.apply(sumn, 3));
    assert_eq!(handle.join_timeout(BOUND).unwrap().unwrap(), 6);
    let err = handle.join_timeout(BOUND).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("already taken"), "{err}");
    assert!(!err.is_timeout());
}

#[test]
fn join_after_a_successful_join_timeout_returns_an_error_instead_of_hanging() {
    let mut handle = YieldableThread::spawn(&Executor::inline(), |y| y.apply(sumn, 3));
    assert_eq!(handle.join_timeout(BOUND).unwrap().unwrap(), 6);
    // `join` consumes the handle; run it on a helper thread so that a hang fails the test.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(handle.join().map(|_| ()).map_err(|e| e.kind())));
    let outcome = rx
        .recv_timeout(BOUND)
        .expect("join() hung on a handle whose result join_timeout already took");
    assert_eq!(outcome, Err(ErrorKind::Unavailable));
}

#[test]
fn is_finished_turns_true_once_the_handler_returns() {
    let (done_tx, done_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let handle = YieldableThread::spawn(&Executor::inline(), move |_| {
        done_tx.send(()).unwrap();
        release_rx.recv_timeout(BOUND).unwrap();
        7
    });
    recv(&done_rx, "the handler to start");
    assert!(!handle.is_finished());
    release_tx.send(()).unwrap();
    assert_eq!(join(handle).unwrap(), 7);
}

#[test]
fn a_dropped_handle_detaches_and_the_handler_runs_to_the_end() {
    for (config, executor) in in_process_executors() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (result_tx, result_rx) = mpsc::channel();
        let handle = YieldableThread::spawn(&executor, move |y| {
            release_rx.recv_timeout(BOUND).unwrap();
            result_tx.send(y.apply(sumn, 10).unwrap()).unwrap();
        });
        drop(handle);
        release_tx.send(()).unwrap();
        assert_eq!(
            recv(&result_rx, "the detached handler's result"),
            55,
            "{config}"
        );
    }
}

#[test]
fn join_timeout_accepts_an_unbounded_timeout() {
    // `Duration::MAX` reads as "wait as long as it takes"; it must not overflow the deadline.
    let mut handle = YieldableThread::spawn(&Executor::inline(), |y| y.apply(sumn, 4));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handle.join_timeout(Duration::MAX)
        }));
        let outcome = match joined {
            Ok(Ok(Ok(total))) => Ok(total),
            Ok(Ok(Err(e)) | Err(e)) => Err(e.to_string()),
            Err(panic) => Err(format!("panicked: {}", payload_message(panic.as_ref()))),
        };
        let _ = tx.send(outcome);
    });
    assert_eq!(recv(&rx, "join_timeout(Duration::MAX)"), Ok(10));
}
