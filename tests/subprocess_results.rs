//! The subprocess strategy computes the right answers, in other processes, for handlers and
//! for plain callers, and refuses work it cannot ship with errors that say why.

mod subprocess_support;

use std::time::Duration;

use serde_bytes::ByteBuf;
use subprocess_support::{BOUND, pool, within};
use ythread::{ErrorKind, Executor, Task, YieldableThread};
use ythread_suite::tasks::{echo_bytes, fib, pid, sumn, tiny};

ythread::task! {
    /// Registered nowhere: the pool must refuse it by name.
    fn unregistered(x: u64) -> u64 { x }
}

#[test]
fn tasks_run_in_worker_processes_and_return_their_results() {
    let pool = pool(2).build().unwrap();
    let pids = pool.pids();
    assert_eq!(pids.len(), 2);
    let executor = Executor::new(pool);
    within("the first jobs", move || {
        assert_eq!(executor.run(sumn, 25_000).unwrap(), 312_512_500);
        assert_eq!(executor.run(fib, 20).unwrap(), 6765);
        assert_eq!(executor.run(tiny, 41).unwrap(), 42);
        let worker = executor.run(pid, ()).unwrap();
        assert_ne!(worker, std::process::id());
        assert!(pids.contains(&worker), "{worker} is not one of {pids:?}");
    });
}

#[test]
fn byte_payloads_arrive_intact_in_both_directions() {
    let executor = Executor::new(pool(1).build().unwrap());
    within("the payload round trips", move || {
        for len in [0, 1, 64 << 10, 1 << 20, 3 << 20] {
            let payload: Vec<u8> = (0..len).map(|i: usize| (i * 31 % 251) as u8).collect();
            let echoed = executor
                .run(echo_bytes, ByteBuf::from(payload.clone()))
                .unwrap();
            assert!(
                echoed.as_slice() == payload.as_slice(),
                "{len} bytes came back changed"
            );
        }
    });
}

#[test]
fn many_handlers_share_two_workers() {
    let executor = Executor::new(pool(2).build().unwrap());
    let mut handlers: Vec<_> = (0..8u64)
        .map(|h| {
            YieldableThread::spawn(&executor, move |y| {
                (0..20u64)
                    .map(|i| {
                        let n = h * 1_000 + i;
                        let got = y.apply(sumn, n)?;
                        Ok::<bool, ythread::Error>(got == n * (n + 1) / 2)
                    })
                    .collect::<Result<Vec<bool>, _>>()
            })
        })
        .collect();
    for (h, handler) in handlers.iter_mut().enumerate() {
        let answers = handler.join_timeout(BOUND).unwrap().unwrap();
        assert!(answers.iter().all(|&ok| ok), "handler {h}: {answers:?}");
    }
}

#[test]
fn closures_are_refused_as_not_portable() {
    let executor = Executor::new(pool(1).build().unwrap());
    let error = within("a closure", move || executor.run_closure(|| 1).unwrap_err());
    assert!(error.is_not_portable(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("subprocess") && text.contains("ythread::task!"),
        "{text}"
    );
}

#[test]
fn unknown_tasks_are_refused_by_name_without_bothering_a_worker() {
    let pool = pool(1).build().unwrap();
    let before = pool.pids();
    let executor = Executor::new(pool);
    let (error, still_fine) = within("an unknown task", move || {
        let error = executor.run(unregistered, 1).unwrap_err();
        (error, executor.run(pid, ()).unwrap())
    });
    assert_eq!(error.kind(), ErrorKind::UnknownTask);
    assert_eq!(error.task(), Some(<unregistered as Task>::NAME));
    assert!(
        error
            .to_string()
            .contains("`subprocess_results::unregistered`"),
        "{error}"
    );
    assert_eq!(vec![still_fine], before, "the worker was not touched");
}

#[test]
fn describe_gives_the_configuration_form() {
    let pool = pool(2)
        .timeout(Some(Duration::from_secs(2)))
        .recycle_after(Some(100))
        .build()
        .unwrap();
    assert_eq!(pool.workers(), 2);
    let executor = Executor::new(pool);
    assert_eq!(
        executor.describe(),
        "subprocess:2,timeout=2s,recycle=100,express=0"
    );
    let parsed: ythread_executors::ExecutorConfig = executor.describe().parse().unwrap();
    assert_eq!(parsed.to_string(), executor.describe());
}
