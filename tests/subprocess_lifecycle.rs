//! Starting and stopping pools: handshake checks, start failures that never hang, and no
//! worker process left behind once a pool is dropped.

mod subprocess_support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use subprocess_support::{is_our_child, pool, proc_stat, within};
use ythread::Executor;
use ythread_executors::{ErrorKind, ExecutorConfig, SubprocessPool};
use ythread_suite::tasks::{self, pid, tiny};

ythread::task! {
    /// Known to the test's registry only: the workers' digest differs.
    fn only_in_the_parent(x: u8) -> u8 { x }
}

#[test]
fn workers_are_children_and_are_reaped_when_the_pool_is_dropped() {
    let pool = pool(2).build().unwrap();
    let pids = pool.pids();
    assert_eq!(pids.len(), 2);
    for &worker in &pids {
        assert!(
            is_our_child(worker),
            "worker {worker} is a child of this process"
        );
    }
    within("dropping the pool", move || drop(pool));
    for worker in pids {
        assert_eq!(
            proc_stat(worker),
            None,
            "worker {worker} is gone, not a zombie"
        );
    }
}

#[test]
fn dropping_the_last_executor_handle_shuts_the_pool_down() {
    let pool = pool(2).build().unwrap();
    let status = pool.status();
    let pids = pool.pids();
    let executor = Executor::new(pool);
    let second = executor.clone();
    let answer = within("a job and two drops", move || {
        let answer = second.run(tiny, 1).unwrap();
        drop(second);
        drop(executor);
        answer
    });
    assert_eq!(answer, 2);
    assert!(status.pids().is_empty(), "{status:?}");
    for worker in pids {
        assert_eq!(proc_stat(worker), None, "worker {worker} is gone");
    }
}

#[test]
fn a_worker_with_a_different_registry_fails_the_start_with_a_digest_mismatch() {
    let error = pool(1)
        .registry(tasks::registry().with(only_in_the_parent))
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Start);
    let text = error.to_string();
    assert!(
        text.contains("digest mismatch") && text.contains("same `TaskRegistry`"),
        "{text}"
    );
}

#[test]
fn a_program_that_is_not_a_worker_fails_the_start_and_says_why() {
    let error = pool(1).program("/bin/true").build().unwrap_err();
    assert!(error.is_start());
    let text = error.to_string();
    assert!(
        text.contains("before its handshake") && text.contains("ythread_executors::init"),
        "{text}"
    );
}

#[test]
fn a_worker_that_never_connects_is_killed_at_the_start_timeout() {
    let dir = std::env::temp_dir().join(format!("ythread-silent-worker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("silent-worker");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let builder = pool(1)
        .program(&script)
        .start_timeout(Duration::from_millis(300));
    let error = within("a start that times out", move || {
        builder.build().unwrap_err()
    });
    let _ = std::fs::remove_dir_all(&dir);
    let text = error.to_string();
    assert!(text.contains("did not connect within 300ms"), "{text}");
    let silent: u32 = text
        .split("worker process ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no pid in: {text}"));
    assert_eq!(
        proc_stat(silent),
        None,
        "the silent worker {silent} was killed and reaped"
    );
}

#[test]
fn a_missing_program_fails_the_start() {
    let error = pool(1)
        .program("/nonexistent/ythread-worker")
        .build()
        .unwrap_err();
    assert!(error.is_start());
    assert!(
        error
            .to_string()
            .contains("could not start the worker program"),
        "{error}"
    );
}

#[test]
fn the_default_worker_program_needs_init_in_main() {
    // The test harness owns `main` and never calls `init`, so this program cannot be its own
    // worker: building must refuse rather than start copies of the test binary.
    let config: ExecutorConfig = "subprocess:1".parse().unwrap();
    let error = config.build().unwrap_err();
    assert!(error.is_start());
    assert!(
        error
            .to_string()
            .contains("`ythread_executors::init(registry)` first in `main`"),
        "{error}"
    );
}

#[test]
fn invalid_sizes_are_configuration_errors() {
    assert!(pool(0).build().unwrap_err().is_config());
    let error = pool(1).recycle_after(Some(0)).build().unwrap_err();
    assert!(error.is_config(), "{error}");
}

#[test]
fn a_shut_down_pool_reports_no_workers_through_its_status() {
    let pool: SubprocessPool = pool(1).build().unwrap();
    let status = pool.status();
    let worker = pool.pids()[0];
    let executor = Executor::new(pool);
    let ran_on = within("one job", move || executor.run(pid, ()).unwrap());
    assert_eq!(ran_on, worker);
    assert!(status.pids().is_empty());
    assert_eq!(status.idle_workers(), 0);
}

#[test]
fn callers_are_told_when_no_replacement_can_start_and_the_pool_recovers() {
    // A private copy of the worker program that can be taken away and put back.
    let dir = std::env::temp_dir().join(format!("ythread-vanishing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let program = dir.join("worker");
    std::fs::copy(env!("CARGO_BIN_EXE_ythread-test-worker"), &program).unwrap();
    let executor = Executor::new(pool(1).program(&program).build().unwrap());

    std::fs::remove_file(&program).unwrap();
    let (crash, refused) = {
        let executor = executor.clone();
        within("a crash with no way to replace the worker", move || {
            let crash = executor.run(tasks::abort_process, ()).unwrap_err();
            (crash, executor.run(tiny, 1).unwrap_err())
        })
    };
    assert!(crash.is_worker_died(), "{crash}");
    assert_eq!(refused.kind(), ythread::ErrorKind::Unavailable, "{refused}");
    let text = refused.to_string();
    assert!(
        text.contains("no worker process") && text.contains("could not start the worker program"),
        "{text}"
    );

    std::fs::copy(env!("CARGO_BIN_EXE_ythread-test-worker"), &program).unwrap();
    let recovered = within("the pool's recovery", move || {
        loop {
            match executor.run(tiny, 1) {
                Ok(answer) => return answer,
                Err(e) if e.kind() == ythread::ErrorKind::Unavailable => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(recovered, 2);
}
