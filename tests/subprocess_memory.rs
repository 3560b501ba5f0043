//! `memory=`: a worker's data limit. A task that allocates past it fails its job with an error
//! that names the limit, the worker is replaced, and work within the limit runs as before. A
//! task that aborts for another reason is not blamed on the limit.

mod subprocess_support;

use serde_bytes::ByteBuf;
use subprocess_support::{is_our_child, pool, within};
use ythread::{Executor, Termination};
use ythread_executors::{ExecutorConfig, SubprocessConfig};
use ythread_suite::tasks::{abort_process, allocate_mib, echo_bytes, pid};

const LIMIT: u64 = 64 << 20;

#[test]
fn a_task_allocating_past_the_limit_fails_with_an_error_naming_it_and_the_pool_heals() {
    let pool = pool(1).memory(Some(LIMIT)).build().unwrap();
    let worker = pool.pids()[0];
    let executor = Executor::new(pool);
    let (error, within_limit, next) = within("a job past the memory limit", move || {
        let error = executor.run(allocate_mib, 256).unwrap_err();
        let within_limit = executor.run(allocate_mib, 8).unwrap();
        (error, within_limit, executor.run(pid, ()).unwrap())
    });
    assert!(error.is_worker_died(), "{error}");
    assert_eq!(error.memory_limit(), Some(LIMIT));
    assert_eq!(error.pid(), Some(worker));
    assert_eq!(
        error.termination(),
        Some(Termination::Signal(libc::SIGABRT))
    );
    let text = error.to_string();
    assert!(
        text.contains(&format!(
            "worker process {worker} exceeded its memory limit of 64 MiB"
        )) && text.contains("allocate_mib"),
        "{text}"
    );
    assert_ne!(
        within_limit, worker,
        "the worker past its limit was replaced"
    );
    assert_eq!(next, within_limit, "the replacement keeps serving");
    assert!(
        !is_our_child(worker),
        "the worker past its limit was reaped"
    );
}

#[test]
fn an_abort_under_a_limit_is_reported_as_an_abort_not_as_the_limit() {
    let pool = pool(1).memory(Some(LIMIT)).build().unwrap();
    let worker = pool.pids()[0];
    let executor = Executor::new(pool);
    let (aborted, over, next) = within("an abort, then an allocation past the limit", move || {
        let aborted = executor.run(abort_process, ()).unwrap_err();
        let over = executor.run(allocate_mib, 256).unwrap_err();
        (aborted, over, executor.run(pid, ()).unwrap())
    });
    assert!(aborted.is_worker_died(), "{aborted}");
    assert_eq!(aborted.pid(), Some(worker));
    assert_eq!(
        aborted.termination(),
        Some(Termination::Signal(libc::SIGABRT))
    );
    assert_eq!(aborted.memory_limit(), None, "{aborted}");
    let text = aborted.to_string();
    assert!(
        text.contains(&format!(
            "worker process {worker} killed by signal 6 (SIGABRT)"
        )) && text.contains("abort_process")
            && !text.contains("memory"),
        "{text}"
    );
    // The replacement, past the limit, still is.
    assert_eq!(over.memory_limit(), Some(LIMIT), "{over}");
    assert!(
        over.to_string()
            .contains("exceeded its memory limit of 64 MiB"),
        "{over}"
    );
    assert_ne!(
        Some(next),
        over.pid(),
        "the worker past its limit was replaced"
    );
}

#[test]
fn without_a_limit_the_same_allocation_succeeds() {
    let executor = Executor::new(pool(1).build().unwrap());
    let ran = within("a big allocation", move || executor.run(allocate_mib, 256));
    assert!(ran.is_ok(), "{ran:?}");
}

#[test]
fn the_limit_is_configured_as_memory_and_described_back() {
    let config: ExecutorConfig = "subprocess:1,express=0,memory=64MiB".parse().unwrap();
    let ExecutorConfig::Subprocess(SubprocessConfig { memory, .. }) = &config else {
        panic!("{config:?}")
    };
    assert_eq!(*memory, Some(LIMIT));
    // The same text, from the pool itself (the config builds the test binary's own program,
    // which cannot serve; so build through the test worker and compare the description).
    let pool = pool(1).memory(Some(LIMIT)).build().unwrap();
    assert_eq!(
        Executor::new(pool).describe(),
        "subprocess:1,express=0,memory=64MiB"
    );
}

#[test]
fn a_limit_too_small_to_run_a_worker_is_refused_before_anything_starts() {
    let error = pool(1).memory(Some(1 << 20)).build().unwrap_err();
    assert!(error.is_config(), "{error}");
    assert!(error.to_string().contains("at least 16 MiB"), "{error}");
}

#[test]
fn an_argument_too_large_for_the_limit_fails_its_job_and_the_worker_serves_on() {
    let pool = pool(1).memory(Some(LIMIT)).build().unwrap();
    let worker = pool.pids()[0];
    let executor = Executor::new(pool);
    let (error, next) = within("an argument past the memory limit", move || {
        let error = executor
            .run(echo_bytes, ByteBuf::from(vec![7u8; 128 << 20]))
            .unwrap_err();
        (error, executor.run(pid, ()).unwrap())
    });
    assert_eq!(error.kind(), ythread::ErrorKind::Codec, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("could not allocate 134217728 bytes within its memory limit of 64 MiB")
            && text.contains("raise the pool's `memory` limit"),
        "{text}"
    );
    assert_eq!(
        next, worker,
        "the worker had only refused the room: it serves on"
    );
}
