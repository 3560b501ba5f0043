//! Many handlers, few workers, some crashes: every job that does not crash gets its right
//! answer, every crashing job reports `WorkerDied`, and nothing is left behind.

mod subprocess_support;

use subprocess_support::{BOUND, eventually, our_children, pool, within};
use ythread::{Executor, Termination, YieldableThread};
use ythread_suite::tasks::{abort_process, sumn};

const HANDLERS: u64 = 32;
const JOBS: u64 = 50;

/// About one job in twenty crashes its worker, spread over the handlers.
fn crashes(handler: u64, job: u64) -> bool {
    (handler * JOBS + job) % 20 == 7
}

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Right,
    Wrong(u64),
    Died(Termination),
    Other(String),
}

#[test]
fn thirty_two_handlers_on_two_workers_with_crashes() {
    let pool = pool(2).build().unwrap();
    let status = pool.status();
    let executor = Executor::new(pool);
    let mut handlers: Vec<_> = (0..HANDLERS)
        .map(|h| {
            YieldableThread::spawn(&executor, move |y| {
                (0..JOBS)
                    .map(|j| {
                        if crashes(h, j) {
                            return match y.apply(abort_process, ()) {
                                Err(e) if e.is_worker_died() => {
                                    Seen::Died(e.termination().unwrap())
                                }
                                other => Seen::Other(format!("{other:?}")),
                            };
                        }
                        let n = 1_000 + h * 100 + j;
                        match y.apply(sumn, n) {
                            Ok(total) if total == n * (n + 1) / 2 => Seen::Right,
                            Ok(total) => Seen::Wrong(total),
                            Err(e) => Seen::Other(e.to_string()),
                        }
                    })
                    .collect::<Vec<Seen>>()
            })
        })
        .collect();

    let mut died = 0;
    for (h, handler) in (0..HANDLERS).zip(handlers.iter_mut()) {
        let seen = handler.join_timeout(BOUND).unwrap();
        for (j, outcome) in (0..JOBS).zip(seen) {
            if crashes(h, j) {
                assert_eq!(
                    outcome,
                    Seen::Died(Termination::Signal(libc::SIGABRT)),
                    "{h}/{j}"
                );
                died += 1;
            } else {
                assert_eq!(outcome, Seen::Right, "handler {h}, job {j}");
            }
        }
    }
    assert_eq!(died, (HANDLERS * JOBS / 20) as usize);
    // The last crash's replacement may still be starting.
    eventually("the pool is back to full strength", || {
        status.pids().len() == 2
    });

    within("shutting the pool down", move || drop(executor));
    assert_eq!(
        our_children(),
        Vec::<u32>::new(),
        "no worker process is left"
    );
}
