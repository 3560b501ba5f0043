//! The exclusive strategy: one process-wide fair lock around every piece of work. Never two
//! pieces at once (across handlers, plain threads and separate exclusive executors), every
//! waiter gets its turn, a panicking piece releases the lock, and work that itself runs work
//! through the strategy does not deadlock on its own lock.
//!
//! The lock is global, so every test here contends with the others in this binary; that is
//! more load, not a different result. What is not tested: the exact hand-off order of the
//! fair lock, which would need to know when a waiter has parked, i.e. timing.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};

use support::{InFlight, executor, join, recv};
use ythread::YieldableThread;
use ythread_suite::tasks::{panic_with, sumn};

#[test]
fn exclusive_never_runs_two_pieces_of_work_at_once() {
    const HANDLERS: usize = 16;
    const PLAIN: usize = 4;
    const WORKS: u64 = 50;
    let executor = executor("exclusive");
    let in_flight = Arc::new(InFlight::default());
    let done = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(HANDLERS + PLAIN));
    let handles: Vec<_> = (0..HANDLERS)
        .map(|_| {
            let (in_flight, done, start) = (
                Arc::clone(&in_flight),
                Arc::clone(&done),
                Arc::clone(&start),
            );
            YieldableThread::spawn(&executor, move |y| {
                start.wait();
                for i in 0..WORKS {
                    let total = y.run(|| in_flight.track(|| sumn.call(2_000 + i))).unwrap();
                    assert_eq!(total, sumn.call(2_000 + i));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Plain threads use the same lock through `Executor::run_closure`.
    let (plain_tx, plain_rx) = mpsc::channel();
    for _ in 0..PLAIN {
        let (executor, in_flight, done, start, plain_tx) = (
            executor.clone(),
            Arc::clone(&in_flight),
            Arc::clone(&done),
            Arc::clone(&start),
            plain_tx.clone(),
        );
        std::thread::spawn(move || {
            start.wait();
            for i in 0..WORKS {
                let total = executor
                    .run_closure(|| in_flight.track(|| sumn.call(1_000 + i)))
                    .unwrap();
                assert_eq!(total, sumn.call(1_000 + i));
                done.fetch_add(1, Ordering::SeqCst);
            }
            plain_tx.send(()).unwrap();
        });
    }
    for _ in 0..PLAIN {
        recv(&plain_rx, "a plain thread to finish");
    }
    for handle in handles {
        join(handle).unwrap();
    }
    assert_eq!(
        done.load(Ordering::SeqCst),
        (HANDLERS + PLAIN) as u64 * WORKS
    );
    assert_eq!(in_flight.max(), 1, "two pieces of work ran at once");
}

#[test]
fn two_exclusive_executors_share_the_one_lock() {
    let (a, b) = (executor("exclusive"), executor("exclusive"));
    let in_flight = Arc::new(InFlight::default());
    let start = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (in_flight, start) = (Arc::clone(&in_flight), Arc::clone(&start));
            let executor = if t % 2 == 0 { &a } else { &b };
            YieldableThread::spawn(executor, move |y| {
                start.wait();
                for i in 0..30 {
                    y.run(|| in_flight.track(|| sumn.call(1_000 + i))).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        join(handle).unwrap();
    }
    assert_eq!(in_flight.max(), 1);
}

#[test]
fn every_waiter_gets_its_turn_while_others_hammer_the_lock() {
    const HAMMERS: usize = 8;
    const WORKS: u64 = 200;
    let executor = executor("exclusive");
    let start = Arc::new(Barrier::new(HAMMERS + 1));
    let hammers: Vec<_> = (0..HAMMERS)
        .map(|_| {
            let start = Arc::clone(&start);
            YieldableThread::spawn(&executor, move |y| {
                start.wait();
                (0..WORKS).map(|i| y.apply(sumn, i).unwrap()).sum::<u64>()
            })
        })
        .collect();
    support::meet(&start, "every hammer starting");
    // A latecomer that asks once while every hammer keeps asking must still be served.
    let latecomer = YieldableThread::spawn(&executor, |y| y.apply(sumn, 100).unwrap());
    assert_eq!(join(latecomer).unwrap(), 5050);
    let expected: u64 = (0..WORKS).map(|i| sumn.call(i)).sum();
    for hammer in hammers {
        assert_eq!(join(hammer).unwrap(), expected);
    }
}

#[test]
fn a_panicking_piece_of_work_releases_the_lock() {
    let executor = executor("exclusive");
    let handles: Vec<_> = (0..4)
        .map(|t| {
            YieldableThread::spawn(&executor, move |y| {
                for i in 0..20u64 {
                    if (t + i) % 3 == 0 {
                        assert!(
                            y.apply(panic_with, format!("{t} {i}"))
                                .unwrap_err()
                                .is_panic()
                        );
                    } else {
                        assert_eq!(y.apply(sumn, i).unwrap(), sumn.call(i));
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        join(handle).unwrap();
    }
}

#[test]
fn work_that_runs_work_through_the_same_strategy_does_not_deadlock() {
    // The lock is not reentrant: nested work must not wait for the lock its own thread holds.
    support::assert_nested_work_completes(&executor("exclusive"));
}
