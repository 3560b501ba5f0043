//! The panic policy through the public API: a panic in yielded work comes back at the yield
//! point as `ErrorKind::Panicked` with its message and the location of the panicking line,
//! under every in-process strategy, and the handler goes on yielding; a panic in a handler
//! reaches `join` the same way and leaves every other handler alone.

mod support;

use std::sync::{Arc, Barrier};

use support::{IN_PROCESS, executor, in_process_executors, is_child, join, recv, run_child_test};
use ythread::{Error, ErrorKind, Executor, Task, YieldableThread};
use ythread_suite::tasks::{panic_with, sumn};

/// The location the panic hook records for a `panic!` on line `line` of this file.
fn this_file_at(line: u32) -> String {
    format!("tests/panics.rs:{line}:")
}

fn assert_task_panic(err: &Error, message: &str, config: &str) {
    assert_eq!(err.kind(), ErrorKind::Panicked, "{config}: {err}");
    assert!(err.is_panic());
    assert_eq!(err.message(), Some(message), "{config}: {err}");
    let location = err
        .location()
        .unwrap_or_else(|| panic!("{config}: no location: {err}"));
    assert!(
        location.starts_with("src/tasks.rs:"),
        "{config}: {location}"
    );
    let text = err.to_string();
    let name = <panic_with as Task>::NAME;
    assert!(
        text.starts_with(&format!("task `{name}` panicked at src/tasks.rs:")),
        "{config}: {text}"
    );
    assert!(text.ends_with(message), "{config}: {text}");
}

#[test]
fn a_panicking_task_is_an_error_at_the_yield_point_and_the_handler_goes_on() {
    for (config, executor) in in_process_executors() {
        let handle = YieldableThread::spawn(&executor, move |y| {
            for round in 0..5u64 {
                let message = format!("bad input {round}");
                let err = y.apply(panic_with, message.clone()).unwrap_err();
                assert_task_panic(&err, &message, config);
                // The same handler keeps yielding work successfully afterwards.
                assert_eq!(y.apply(sumn, 100 + round).unwrap(), sumn.call(100 + round));
            }
            "finished"
        });
        assert_eq!(join(handle).unwrap(), "finished", "{config}");
    }
}

#[test]
fn a_panicking_closure_reports_the_line_that_panicked() {
    for (config, executor) in in_process_executors() {
        let handle = YieldableThread::spawn(&executor, move |y| {
            let here = line!() + 1;
            let boom = || -> u64 { panic!("closure {}", 9) };
            let err = y.run(boom).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Panicked, "{config}");
            assert_eq!(err.message(), Some("closure 9"), "{config}");
            let location = err.location().unwrap_or_default();
            assert!(
                location.starts_with(&this_file_at(here)),
                "{config}: {location}"
            );
            assert!(
                err.to_string()
                    .starts_with("closure work panicked at tests/panics.rs:"),
                "{config}: {err}"
            );
            // A panic with a payload that is not a string still comes back, with a location.
            let err = y.run(|| std::panic::panic_any(42u32)).unwrap_err();
            assert!(err.is_panic(), "{config}: {err}");
            assert!(err.message().is_some_and(|m| !m.is_empty()), "{config}");
            assert!(err.location().is_some(), "{config}: {err}");
            y.run(|| 1 + 1).unwrap()
        });
        assert_eq!(join(handle).unwrap(), 2, "{config}");
    }
}

#[test]
fn concurrent_panics_keep_their_own_messages_and_locations() {
    // Locations travel through a thread-local; with many handlers panicking at once on a
    // shared pool, each error must still carry its own panic.
    for (config, executor) in in_process_executors() {
        let start = Arc::new(Barrier::new(16));
        let handles: Vec<_> = (0..16u64)
            .map(|t| {
                let start = Arc::clone(&start);
                YieldableThread::spawn(&executor, move |y| {
                    start.wait();
                    for i in 0..20u64 {
                        if (t + i) % 2 == 0 {
                            let message = format!("handler {t} step {i}");
                            let err = y.apply(panic_with, message.clone()).unwrap_err();
                            assert_task_panic(&err, &message, config);
                        } else {
                            let here = line!() + 1;
                            let boom = || -> u64 { panic!("closure {t} {i}") };
                            let err = y.run(boom).unwrap_err();
                            assert_eq!(err.message(), Some(format!("closure {t} {i}").as_str()));
                            let location = err.location().unwrap_or_default();
                            assert!(location.starts_with(&this_file_at(here)), "{location}");
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            join(handle).unwrap_or_else(|e| panic!("{config}: {e}"));
        }
    }
}

#[test]
fn executor_run_turns_a_panic_into_an_error_outside_a_handler() {
    for (config, executor) in in_process_executors() {
        let err = executor.run(panic_with, "plain".to_owned()).unwrap_err();
        assert_task_panic(&err, "plain", config);
        let here = line!() + 1;
        let boom = || -> u8 { panic!("plain closure") };
        let err = executor.run_closure(boom).unwrap_err();
        assert_eq!(err.message(), Some("plain closure"), "{config}");
        assert!(
            err.location()
                .unwrap_or_default()
                .starts_with(&this_file_at(here))
        );
        assert_eq!(executor.run(sumn, 10).unwrap(), 55, "{config}");
    }
}

#[test]
fn a_handler_panic_reaches_join_and_spares_the_other_handlers() {
    for config in IN_PROCESS {
        let executor = executor(config);
        let start = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let start = Arc::clone(&start);
                YieldableThread::spawn(&executor, move |y| {
                    start.wait();
                    let mut total = 0;
                    for i in 0..20 {
                        total += y.apply(sumn, i).unwrap();
                        if t == 3 && i == 10 {
                            panic!("handler {t} gave up at step {i}");
                        }
                    }
                    total
                })
            })
            .collect();
        let expected: u64 = (0..20).map(|i| sumn.call(i)).sum();
        for (t, handle) in handles.into_iter().enumerate() {
            let outcome = join(handle);
            if t == 3 {
                let err = outcome.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Panicked, "{config}: {err}");
                assert_eq!(err.message(), Some("handler 3 gave up at step 10"));
                let location = err.location().unwrap_or_default();
                assert!(
                    location.starts_with("tests/panics.rs:"),
                    "{config}: {location}"
                );
                assert!(
                    err.to_string()
                        .starts_with("the handler panicked at tests/panics.rs:"),
                    "{config}: {err}"
                );
            } else {
                assert_eq!(outcome.unwrap(), expected, "{config}: handler {t}");
            }
        }
    }
}

#[test]
fn a_handler_panic_before_any_yield_reaches_join() {
    for (config, executor) in in_process_executors() {
        let here = line!() + 1;
        let early = |_: &ythread::Yielder<'_>| -> u64 { panic!("{}", "early") };
        let handle = YieldableThread::spawn(&executor, early);
        let err = join(handle).unwrap_err();
        assert_eq!(err.message(), Some("early"), "{config}");
        assert!(
            err.location()
                .unwrap_or_default()
                .starts_with(&this_file_at(here))
        );
    }
}

const FIRST_USE_CHILD: &str = "YTHREAD_TEST_FIRST_USE_WHILE_UNWINDING_CHILD";

/// Runs work from a destructor while its thread unwinds from a panic.
struct RunsWorkOnDrop(Executor, std::sync::mpsc::Sender<Result<u64, String>>);

impl Drop for RunsWorkOnDrop {
    fn drop(&mut self) {
        let outcome = self.0.run(sumn, 10).map_err(|e| e.to_string());
        let _ = self.1.send(outcome);
    }
}

/// Runs in a fresh child process only, so that this is the process's first use of ythread.
#[test]
fn first_use_while_unwinding_child() {
    if !is_child(FIRST_USE_CHILD) {
        return; // only meaningful in the child process the test below starts
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let unwound = std::panic::catch_unwind(move || {
        let _guard = RunsWorkOnDrop(Executor::inline(), tx);
        panic!("the request failed");
    });
    assert!(unwound.is_err());
    assert_eq!(recv(&rx, "the destructor's work"), Ok(55));
}

#[test]
fn the_first_work_of_a_process_may_run_in_a_destructor_during_a_panic() {
    // The panic hook is installed at the first use of ythread, and std refuses to change the
    // hook on a thread that is panicking: that refusal must not abort the process.
    run_child_test("first_use_while_unwinding_child", FIRST_USE_CHILD).assert_passed();
}
