//! The supervisor thread never strands callers: durations too long to add to a clock mean
//! "no limit" instead of a panic, and a pool whose supervisor stopped says so to every caller
//! instead of leaving them waiting for a worker that will never come.

mod subprocess_support;

use std::time::Duration;

use subprocess_support::{pool, within};
use ythread::Executor;
use ythread_suite::tasks::{pid, sumn};

#[test]
fn an_unbounded_job_timeout_means_no_limit() {
    within("a pool with an unbounded job timeout", || {
        let pool = pool(1)
            .timeout(Some(Duration::MAX))
            .build()
            .expect("an unbounded timeout is no limit, not a failure to start");
        let executor = Executor::new(pool);
        for n in [1, 10, 1000] {
            assert_eq!(executor.run(sumn, n).unwrap(), sumn.call(n));
        }
    });
}

#[test]
fn an_unbounded_start_timeout_means_no_limit() {
    within("a pool with an unbounded start timeout", || {
        let pool = pool(1)
            .start_timeout(Duration::MAX)
            .build()
            .expect("an unbounded start timeout is no limit, not a failure to start");
        assert_eq!(Executor::new(pool).run(sumn, 10).unwrap(), 55);
    });
}

#[test]
fn an_unbounded_shutdown_grace_still_recycles_workers_and_shuts_down() {
    within(
        "recycling and shutting down with an unbounded grace",
        || {
            let pool = pool(1)
                .shutdown_grace(Duration::MAX)
                .recycle_after(Some(1))
                .build()
                .unwrap();
            let executor = Executor::new(pool);
            // Every job retires its worker, which the supervisor gives the grace period to exit:
            // the later jobs need the replacements it starts.
            let pids: Vec<u32> = (0..3).map(|_| executor.run(pid, ()).unwrap()).collect();
            assert!(
                pids.windows(2).all(|w| w[0] != w[1]),
                "each job ran in a fresh worker: {pids:?}"
            );
            drop(executor);
        },
    );
}
