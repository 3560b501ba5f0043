//! A worker that dies with a large payload in flight fails only its job and leaves no
//! shared-memory region behind: after a thousand large jobs and twenty kills, this process
//! holds exactly the descriptors and mappings it started with, and each worker only its own.
//! Both ways large payloads travel are checked: through the shared regions, and by direct
//! copies (where a kill can also land while the parent copies into or out of the worker).
//! One test in its own binary, so that no other pool's regions are counted.

mod subprocess_support;

use serde_bytes::ByteBuf;
use subprocess_support::{Pipe, eventually, is_our_child, pool, regions_held, within};
use ythread::{Executor, YieldableThread};
use ythread_executors::CopyMode;
use ythread_suite::tasks::{echo_bytes, hold_bytes};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Starts a job holding a large payload in `pool`'s only worker, kills that worker while it
/// holds it, and checks that only that job failed.
fn kill_holding_worker(executor: &Executor, status: &ythread_executors::PoolStatus, round: usize) {
    let pipe = Pipe::new(&format!("payload-kill-{round}"));
    let path = pipe.name();
    eventually("an idle worker", || status.idle_workers() == 1);
    let victim = status.pids()[0];
    let data = ByteBuf::from(pattern(3 * MIB, round as u8));
    let job = YieldableThread::spawn(executor, move |y| y.apply(hold_bytes, (path, data)));
    let held = format!("{}.held", pipe.name());
    eventually("the worker to hold the payload", || {
        std::fs::metadata(&held).is_ok()
    });
    // SAFETY: `kill` touches no memory; `victim` is the pool's busy worker, an unreaped child.
    let killed = unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) };
    assert_eq!(killed, 0);
    let error = within("the killed job", move || job.join().unwrap().unwrap_err());
    assert!(error.is_worker_died(), "round {round}: {error}");
    eventually("the killed worker reaped", || !is_our_child(victim));
}

/// Kills the worker twenty times while it has a large job, wherever the job is then: even
/// rounds kill as soon as the pool has handed the job over (being copied in, decoded or run),
/// odd rounds let the job go first (being copied out, or answered). Each job comes back whole
/// or as a worker's death, never as wrong bytes, and the pool heals every time. The job holds
/// its worker until the test lets it go, so the kill waits for a state that lasts, not for a
/// copy that is over in milliseconds.
fn kill_while_copying(executor: &Executor, status: &ythread_executors::PoolStatus) {
    for round in 0..20 {
        eventually("an idle worker", || status.idle_workers() == 1);
        let victim = status.pids()[0];
        let pipe = Pipe::new(&format!("payload-copy-{round}"));
        let path = pipe.name();
        let data = ByteBuf::from(pattern(8 * MIB, round as u8));
        let expected = data.clone();
        let job = YieldableThread::spawn(executor, move |y| y.apply(hold_bytes, (path, data)));
        eventually("the job to reach the worker", || status.idle_workers() == 0);
        if round % 2 == 1 {
            // The worker has the pipe open: let it return its 8 MiB and kill it meanwhile.
            pipe.open();
        }
        // SAFETY: `kill` touches no memory; `victim` is the pool's busy worker, an unreaped
        // child (the pool reaps it only after its job ends).
        let killed = unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) };
        assert_eq!(killed, 0);
        // A job the victim never got runs again on its replacement, waiting on the pipe there.
        eventually("the job of a killed worker to end", || {
            pipe.release_any_reader();
            job.is_finished()
        });
        match job.join().unwrap() {
            // The kill came before the job reached the worker, or after it answered: the
            // job ran whole (on a replacement, if it never got to the victim).
            Ok(back) => assert!(back == expected, "round {round}: wrong bytes"),
            Err(error) => assert!(error.is_worker_died(), "round {round}: {error}"),
        }
        eventually("the killed worker reaped", || !is_our_child(victim));
    }
}

#[test]
fn a_thousand_large_jobs_and_twenty_kills_leave_no_region_behind() {
    thousand_jobs_and_twenty_kills(CopyMode::Shared);
    thousand_jobs_and_twenty_kills(CopyMode::Direct);
}

fn thousand_jobs_and_twenty_kills(copy: CopyMode) {
    let me = std::process::id();
    let pool = pool(1).copy(copy).build().unwrap();
    let status = pool.status();
    let executor = Executor::new(pool);
    let warm = ByteBuf::from(pattern(256 * KIB, 9));
    assert_eq!(executor.run(echo_bytes, warm.clone()).unwrap(), warm);
    // One worker: its two regions, open here and in the worker, and mapped here once used.
    let start = regions_held(me);
    let mapped = if copy == CopyMode::Shared { 2 } else { 0 };
    assert_eq!(
        start,
        (2, mapped),
        "the parent's descriptors and mappings ({copy})"
    );
    assert_eq!(
        regions_held(status.pids()[0]).0,
        2,
        "the worker's descriptors"
    );

    for round in 0..20 {
        let runner = executor.clone();
        let warm = warm.clone();
        within("fifty large jobs", move || {
            for _ in 0..50 {
                assert_eq!(runner.run(echo_bytes, warm.clone()).unwrap(), warm);
            }
        });
        kill_holding_worker(&executor, &status, round);
    }
    kill_while_copying(&executor, &status);
    assert_eq!(executor.run(echo_bytes, warm.clone()).unwrap(), warm);
    eventually("the pool to settle on one worker", || {
        status.pids().len() == 1 && status.idle_workers() == 1
    });
    assert_eq!(
        regions_held(me),
        start,
        "descriptors and mappings back to the start"
    );
    let worker = status.pids()[0];
    assert_eq!(
        regions_held(worker).0,
        2,
        "the new worker holds its own two regions only"
    );
    drop(executor);
    assert_eq!(
        regions_held(me),
        (0, 0),
        "a pool that is gone holds no region"
    );
}
