//! Workers that die while idle are noticed: the pool reaps and replaces them on its own, and a
//! job that finds its worker gone before it could be delivered runs on another worker.

mod subprocess_support;

use subprocess_support::{eventually, is_our_child, pool, proc_stat, within};
use ythread::Executor;
use ythread_suite::tasks::{pid, tiny};

fn kill(process: u32) {
    // SAFETY: `kill` touches no memory; `process` is a worker of the pool under test, a child
    // of this process that the pool has not reaped (it was idle and listed a moment ago).
    let result = unsafe { libc::kill(process as libc::pid_t, libc::SIGKILL) };
    assert_eq!(result, 0, "kill {process}");
}

/// Whether `process` has finished dying: a zombie, or reaped already.
fn is_dead(process: u32) -> bool {
    proc_stat(process).is_none_or(|stat| stat.state == 'Z' || !is_our_child(process))
}

#[test]
fn an_idle_worker_killed_is_reaped_and_replaced_without_any_job() {
    let pool = pool(2).build().unwrap();
    let status = pool.status();
    let before = status.pids();
    assert_eq!(before.len(), 2);
    let victim = before[0];
    kill(victim);
    eventually(
        "the pool is back to two workers without the killed one",
        || {
            let now = status.pids();
            now.len() == 2 && !now.contains(&victim) && status.idle_workers() == 2
        },
    );
    assert!(!is_our_child(victim), "the killed worker was reaped");
    let executor = Executor::new(pool);
    let answers = within("jobs after an idle death", move || {
        (0..50u64)
            .map(|i| executor.run(tiny, i))
            .collect::<Result<Vec<u64>, _>>()
    });
    assert_eq!(answers.unwrap(), (1..=50).collect::<Vec<u64>>());
}

#[test]
fn a_job_sent_right_after_its_worker_died_idle_runs_on_another() {
    // One worker: whatever the job finds (the dead worker still listed, or the pool busy
    // replacing it), it must run, and never fail for a death it had no part in.
    let pool = pool(1).build().unwrap();
    let status = pool.status();
    let executor = Executor::new(pool);
    for round in 0..5 {
        let victim = status.pids()[0];
        kill(victim);
        eventually("the killed worker to finish dying", || is_dead(victim));
        let runner = executor.clone();
        let ran = within("the next job", move || runner.run(pid, ()));
        let ran = ran.unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_ne!(ran, victim, "round {round}");
        eventually("the pool to settle on one live worker", || {
            status.pids().len() == 1 && status.idle_workers() == 1
        });
    }
}
