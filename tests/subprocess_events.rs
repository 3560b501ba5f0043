//! Lifecycle events through `tracing`: a subscriber sees workers start, die (with the cause),
//! get replaced and recycled, and jobs time out and get cancelled (a cancel is no warning). One test, because the
//! subscriber is process-wide (events come from the pool's own threads too).

mod capture_support;
mod subprocess_support;

use std::time::Duration;

use capture_support::Seen;
use subprocess_support::{Pipe, UndumpableWorker, eventually, pool, within};
use ythread::{Executor, YieldableThread};
use ythread_suite::tasks::{
    abort_process, become_undumpable, echo_bytes, pid, spin_forever, wait_for_pipe,
};

fn saw(seen: &Seen, what: &str, with: &[&str]) -> bool {
    seen.lock()
        .iter()
        .any(|line| line.contains(what) && with.iter().all(|w| line.contains(w)))
}

#[test]
fn the_pool_reports_its_lifecycle_to_a_subscriber() {
    // Every event of the pool's targets.
    let seen = capture_support::install(|metadata| metadata.target().starts_with("ythread"));

    let pool = pool(1)
        .timeout(Some(Duration::from_secs(1)))
        .recycle_after(Some(2))
        .build()
        .unwrap();
    let first = pool.pids()[0];
    let status = pool.status();
    let executor = Executor::new(pool);
    assert!(saw(
        &seen,
        "subprocess worker started",
        &[&format!("pid={first}")]
    ));

    let runner = executor.clone();
    let crashed = within("a crash", move || {
        runner.run(abort_process, ()).unwrap_err()
    });
    assert!(crashed.is_worker_died(), "{crashed}");
    assert!(
        saw(
            &seen,
            "subprocess worker died while running a job",
            &[&format!("pid={first}"), "SIGABRT", "abort_process"]
        ),
        "{:?}",
        seen.lock()
    );
    eventually("the replacement event", || {
        saw(
            &seen,
            "subprocess worker replaced",
            &[&format!("pid={first}")],
        )
    });

    let runner = executor.clone();
    let late = within("a runaway job", move || {
        runner.run(spin_forever, ()).unwrap_err()
    });
    assert!(late.is_timeout(), "{late}");
    assert!(saw(&seen, "subprocess job timed out", &["spin_forever"]));

    let runner = executor.clone();
    let second = within("two jobs", move || {
        runner.run(pid, ()).unwrap();
        runner.run(pid, ()).unwrap()
    });
    eventually("the recycling event", || {
        saw(
            &seen,
            "subprocess worker recycled",
            &[&format!("pid={second}")],
        )
    });

    // A cancelled handler whose job is running: the worker is killed.
    let pipe = Pipe::new("events-cancel");
    let path = pipe.name();
    eventually("an idle worker", || status.idle_workers() == 1);
    let cancelled = status.pids()[0];
    let handler = YieldableThread::spawn(&executor, move |y| y.apply(wait_for_pipe, path));
    let writer = pipe.hold();
    handler.cancel();
    let outcome = within("the cancelled handler", move || handler.join());
    assert!(
        matches!(&outcome, Err(e) if e.is_cancelled())
            || matches!(&outcome, Ok(Err(e)) if e.is_cancelled()),
        "{outcome:?}"
    );
    // Reported by the pool's supervisor, which may do so just after the caller got its error.
    eventually("the cancellation event", || {
        saw(
            &seen,
            "subprocess job cancelled; its worker was killed",
            &["wait_for_pipe"],
        )
    });
    drop((writer, pipe));
    // The kill was asked for: no warning about it (the caller's thread would have logged one
    // before the job's error came back).
    assert!(
        !saw(&seen, "level=WARN", &[&format!("pid={cancelled} ")]),
        "{:?}",
        seen.lock()
    );

    // An idle death.
    eventually("a worker back in the pool", || status.idle_workers() == 1);
    let idle = status.pids()[0];
    // SAFETY: `kill` touches no memory; `idle` is a live, unreaped worker of this pool.
    assert_eq!(unsafe { libc::kill(idle as libc::pid_t, libc::SIGKILL) }, 0);
    eventually("the idle death event", || {
        saw(
            &seen,
            "subprocess worker died while idle",
            &[&format!("pid={idle}"), "SIGKILL"],
        )
    });

    // A worker that declines direct copies.
    let undumpable = UndumpableWorker::new("events");
    let declining = subprocess_support::pool(1)
        .program(undumpable.program())
        .build()
        .unwrap();
    let declined = declining.pids()[0];
    assert!(
        saw(
            &seen,
            "subprocess worker cannot be reached by direct copies",
            &[&format!("pid={declined}"), "not dumpable"],
        ),
        "{:?}",
        seen.lock()
    );

    // A worker that a task made undumpable declines its next direct copy.
    let turned = Executor::new(subprocess_support::pool(1).build().unwrap());
    let turned_pid = within("a worker made undumpable", move || {
        let turned_pid = turned.run(become_undumpable, ()).unwrap();
        let data = serde_bytes::ByteBuf::from(vec![5u8; 1 << 20]);
        assert_eq!(turned.run(echo_bytes, data.clone()).unwrap(), data);
        turned_pid
    });
    assert!(
        saw(
            &seen,
            "subprocess worker declined direct copies",
            &[&format!("pid={turned_pid}")],
        ),
        "{:?}",
        seen.lock()
    );
}
