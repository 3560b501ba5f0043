//! Every fault a task can commit in a worker comes back as an error for that one job, and the
//! pool heals: panics (the worker survives), aborts, segfaults, exits, SIGKILL from outside,
//! running out of memory, deadlines and recycling (the worker is replaced).

mod subprocess_support;

use std::time::Duration;

use subprocess_support::{Pipe, eventually, is_our_child, pool, within};
use ythread::{Error, ErrorKind, Executor, Task, Termination};
use ythread_suite::tasks::{
    abort_process, exit_with, panic_with, pid, segfault, spin_forever, tiny, wait_for_pipe,
};

/// A one-worker pool, its executor and its worker's pid.
fn single(builder: ythread_executors::SubprocessBuilder) -> (Executor, u32) {
    let pool = builder.build().unwrap();
    let pids = pool.pids();
    assert_eq!(pids.len(), 1);
    (Executor::new(pool), pids[0])
}

/// Runs a job that kills its worker; checks the error and that a new worker serves the next.
fn assert_worker_dies(
    executor: Executor,
    worker: u32,
    run: impl FnOnce(&Executor) -> Error + Send + 'static,
) -> Error {
    let (error, next) = within("a crashing job and the next one", move || {
        let error = run(&executor);
        (error, executor.run(pid, ()).unwrap())
    });
    assert!(error.is_worker_died(), "{error}");
    assert_eq!(error.pid(), Some(worker), "{error}");
    assert_ne!(next, worker, "the dead worker was replaced");
    assert!(!is_our_child(worker), "worker {worker} was reaped");
    error
}

#[test]
fn a_panic_comes_back_with_message_and_location_and_the_worker_survives() {
    let (executor, worker) = single(pool(1));
    let (error, next) = within("a panicking job", move || {
        let error = executor
            .run(panic_with, "bad input 7".to_owned())
            .unwrap_err();
        (error, executor.run(pid, ()).unwrap())
    });
    assert!(error.is_panic(), "{error}");
    assert_eq!(error.message(), Some("bad input 7"));
    let location = error.location().expect("a location");
    assert!(location.starts_with("src/tasks.rs:"), "{location}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("in worker process {worker}")) && text.contains("panic_with"),
        "{text}"
    );
    assert_eq!(next, worker, "a caught panic does not cost the worker");
}

#[test]
fn an_abort_fails_only_its_job_with_sigabrt() {
    let (executor, worker) = single(pool(1));
    let error = assert_worker_dies(executor, worker, |e| e.run(abort_process, ()).unwrap_err());
    assert_eq!(
        error.termination(),
        Some(Termination::Signal(libc::SIGABRT))
    );
    assert_eq!(error.task(), Some(<abort_process as Task>::NAME));
    assert!(error.to_string().contains("SIGABRT"), "{error}");
}

#[test]
fn a_segfault_fails_only_its_job_with_sigsegv() {
    let (executor, worker) = single(pool(1));
    let error = assert_worker_dies(executor, worker, |e| e.run(segfault, ()).unwrap_err());
    assert_eq!(
        error.termination(),
        Some(Termination::Signal(libc::SIGSEGV))
    );
}

#[test]
fn an_exit_reports_the_status() {
    let (executor, worker) = single(pool(1));
    let error = assert_worker_dies(executor, worker, |e| e.run(exit_with, 3).unwrap_err());
    assert_eq!(error.termination(), Some(Termination::Exited(3)));
    assert!(
        error.to_string().contains("exited with status 3"),
        "{error}"
    );
}

#[test]
fn a_sigkill_from_outside_fails_the_running_job() {
    let pool = pool(1).build().unwrap();
    let worker = pool.pids()[0];
    let executor = Executor::new(pool);
    let running = executor.clone();
    let pipe = Pipe::new("sigkill-running");
    let path = pipe.name();
    let job = std::thread::spawn(move || running.run(wait_for_pipe, path));
    let writer = pipe.hold();
    kill(worker, libc::SIGKILL);
    let error = within("the killed job", move || job.join().unwrap().unwrap_err());
    drop(writer);
    assert!(error.is_worker_died(), "{error}");
    assert_eq!(
        error.termination(),
        Some(Termination::Signal(libc::SIGKILL))
    );
    let next = within("the next job", move || executor.run(pid, ()).unwrap());
    assert_ne!(next, worker);
}

#[test]
fn running_out_of_memory_fails_the_job_and_the_pool_heals() {
    let (executor, worker) = single(pool(1));
    // Cap the worker's address space a little above what it uses now (from outside, unknown
    // to the pool), then have it allocate more than that: the allocation fails and Rust
    // aborts. (`memory=` pools name their limit in the error: `subprocess_memory.rs`.)
    let mapped = vm_size(worker);
    set_address_space_limit(worker, mapped + (32 << 20));
    let error = assert_worker_dies(executor, worker, move |e| {
        e.run(ythread_suite::tasks::allocate_mib, 96).unwrap_err()
    });
    assert_eq!(error.memory_limit(), None, "the pool set no limit");
    assert_eq!(
        error.termination(),
        Some(Termination::Signal(libc::SIGABRT))
    );
}

#[test]
fn a_runaway_task_is_killed_at_its_deadline_and_the_pool_heals() {
    let (executor, worker) = single(pool(1).timeout(Some(Duration::from_secs(1))));
    let (error, quick, next) = within("a runaway job", move || {
        let error = executor.run(spin_forever, ()).unwrap_err();
        let quick = executor.run(tiny, 1).unwrap();
        (error, quick, executor.run(pid, ()).unwrap())
    });
    assert!(error.is_timeout(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("spin_forever")
            && text.contains(&format!("worker process {worker}"))
            && text.ends_with("within 1s"),
        "{text}"
    );
    assert_eq!(quick, 2, "jobs within the deadline still run");
    assert_ne!(next, worker, "the runaway worker was replaced");
    assert!(!is_our_child(worker), "the runaway worker was reaped");
}

#[test]
fn workers_are_recycled_after_their_quota() {
    let pool = pool(1).recycle_after(Some(3)).build().unwrap();
    let executor = Executor::new(pool);
    let seen = within("seven jobs", move || {
        (0..7)
            .map(|_| executor.run(pid, ()).unwrap())
            .collect::<Vec<u32>>()
    });
    let (a, b, c) = (seen[0], seen[3], seen[6]);
    assert_eq!(seen, [a, a, a, b, b, b, c]);
    assert!(a != b && b != c && a != c, "{seen:?}");
    eventually("recycled workers are reaped", || {
        !is_our_child(a) && !is_our_child(b)
    });
}

#[test]
fn other_jobs_complete_while_a_worker_dies() {
    let executor = Executor::new(pool(2).build().unwrap());
    let crasher = executor.clone();
    let crash = std::thread::spawn(move || crasher.run(abort_process, ()));
    let answers = within("jobs beside a crash", move || {
        (0..200u64)
            .map(|i| executor.run(tiny, i).unwrap())
            .collect::<Vec<u64>>()
    });
    assert_eq!(answers, (1..=200).collect::<Vec<u64>>());
    let error = within("the crash", move || crash.join().unwrap().unwrap_err());
    assert_eq!(error.kind(), ErrorKind::WorkerDied);
}

fn kill(process: u32, signal: i32) {
    // SAFETY: `kill` touches no memory; `pid` is a live child of this process (a worker the
    // pool has not reaped, since its job is still running).
    let result = unsafe { libc::kill(process as libc::pid_t, signal) };
    assert_eq!(result, 0, "kill {process}");
}

/// The virtual memory size of `process` in bytes.
fn vm_size(process: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

fn set_address_space_limit(process: u32, bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: `prlimit` reads `limit` (a valid, initialised struct that outlives the call) and
    // writes nothing because the old-limit pointer is null.
    let result = unsafe {
        libc::prlimit(
            process as libc::pid_t,
            libc::RLIMIT_AS,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(result, 0, "prlimit {process}");
}
