//! The core contract, under every in-process strategy: many concurrent handlers yield real CPU
//! work (`y.apply` on named tasks, `y.run` on closures) and each gets exactly the result of the
//! direct call; `Executor::run` works from plain threads; the builder's name and stack sizes
//! take effect; a handler never leaves its OS thread.

mod support;

use std::cell::Cell;
use std::sync::Barrier;
use std::thread;

use support::{IN_PROCESS, executor, in_process_executors, join};
use ythread::{Executor, Task, YieldableThread};
use ythread_suite::tasks::{fib, sumn};

const HANDLERS: u64 = 64;
const YIELDS: u64 = 100;

/// The task argument handler `t` uses at step `i`: different per handler and per step.
fn sumn_arg(t: u64, i: u64) -> u64 {
    500 + (t * 131 + i * 17) % 1500
}

fn fib_arg(t: u64, i: u64) -> u32 {
    8 + ((t + i) % 10) as u32
}

/// Spawns [`HANDLERS`] handlers that each yield [`YIELDS`] pieces of work (a third `sumn`, a
/// third `fib`, a third closures borrowing a handler local) and compares every result with the
/// direct call. Returns nothing: every mismatch fails the test with the handler and step.
fn many_handlers_get_correct_results(config: &str) {
    let executor = executor(config);
    // Start every handler before any of them yields, so the strategy really sees them at once.
    let start = std::sync::Arc::new(Barrier::new(HANDLERS as usize));
    let handles: Vec<_> = (0..HANDLERS)
        .map(|t| {
            let start = std::sync::Arc::clone(&start);
            YieldableThread::spawn(&executor, move |y| {
                start.wait();
                let mut checked = 0u64;
                let mut history = Vec::new();
                for i in 0..YIELDS {
                    let (got, expected) = match i % 3 {
                        0 => (y.apply(sumn, sumn_arg(t, i))?, sumn.call(sumn_arg(t, i))),
                        1 => (y.apply(fib, fib_arg(t, i))?, fib.call(fib_arg(t, i))),
                        _ => {
                            // Closure work borrows (and mutates) a local of the handler.
                            let got = y.run(|| {
                                history.push(i);
                                sumn.call(sumn_arg(t, i)) ^ t
                            })?;
                            (got, sumn.call(sumn_arg(t, i)) ^ t)
                        }
                    };
                    assert_eq!(got, expected, "handler {t}, step {i}");
                    checked += 1;
                }
                assert_eq!(history.len() as u64, YIELDS / 3, "closure side effects");
                Ok::<u64, ythread::Error>(checked)
            })
        })
        .collect();
    for (t, handle) in handles.into_iter().enumerate() {
        let checked = join(handle)
            .unwrap_or_else(|e| panic!("{config}: handler {t} failed: {e}"))
            .unwrap_or_else(|e| panic!("{config}: handler {t} got a work error: {e}"));
        assert_eq!(checked, YIELDS, "{config}: handler {t}");
    }
}

#[test]
fn inline_returns_correct_results_to_many_handlers() {
    many_handlers_get_correct_results("inline");
}

#[test]
fn exclusive_returns_correct_results_to_many_handlers() {
    many_handlers_get_correct_results("exclusive");
}

#[test]
fn rayon_returns_correct_results_to_many_handlers() {
    many_handlers_get_correct_results("rayon:2");
}

#[test]
fn niced_rayon_returns_correct_results_to_many_handlers() {
    many_handlers_get_correct_results("rayon:2,nice=10");
}

#[test]
fn executor_runs_work_from_plain_threads_under_every_strategy() {
    for (config, executor) in in_process_executors() {
        thread::scope(|scope| {
            for t in 0..8u64 {
                let executor = &executor;
                scope.spawn(move || {
                    for i in 0..20 {
                        let n = sumn_arg(t, i);
                        assert_eq!(executor.run(sumn, n).unwrap(), sumn.call(n), "{config}");
                        let k = fib_arg(t, i);
                        assert_eq!(executor.run(fib, k).unwrap(), fib.call(k), "{config}");
                        let mut borrowed = vec![t];
                        let len = executor
                            .run_closure(|| {
                                borrowed.push(i);
                                borrowed.len()
                            })
                            .unwrap();
                        assert_eq!(len, 2, "{config}");
                    }
                });
            }
        });
    }
}

#[test]
fn the_handler_sees_its_strategy_in_configuration_form() {
    for config in IN_PROCESS {
        let handle = YieldableThread::spawn(&executor(config), |y| y.strategy());
        assert_eq!(join(handle).unwrap(), config);
    }
}

#[test]
fn a_handler_never_leaves_its_os_thread() {
    thread_local! {
        static MARK: Cell<u64> = const { Cell::new(0) };
    }
    for (config, executor) in in_process_executors() {
        let handle = YieldableThread::spawn(&executor, |y| {
            let me = thread::current().id();
            MARK.with(|m| m.set(7));
            let mut work_threads = Vec::new();
            for i in 0..10 {
                work_threads.push(y.run(|| thread::current().id()).unwrap());
                y.apply(sumn, i).unwrap();
                assert_eq!(
                    thread::current().id(),
                    me,
                    "the handler moved after a yield"
                );
                assert_eq!(
                    MARK.with(Cell::get),
                    7,
                    "a thread-local changed across a yield"
                );
            }
            (me, work_threads)
        });
        let (handler_thread, work_threads) = join(handle).unwrap();
        if config.starts_with("rayon") {
            // The work ran on the pool, not on the handler's thread.
            assert!(
                work_threads.iter().all(|&w| w != handler_thread),
                "{config}"
            );
        } else {
            // Inline and exclusive run the work on the handler's own thread.
            assert!(
                work_threads.iter().all(|&w| w == handler_thread),
                "{config}"
            );
        }
    }
}

#[test]
fn the_builder_names_the_os_thread() {
    for (config, executor) in in_process_executors() {
        let handle = YieldableThread::builder()
            .name(format!("handler-{config}"))
            .spawn(&executor, |y| {
                let in_handler = thread::current().name().map(str::to_owned);
                let in_work = y
                    .run(|| thread::current().name().map(str::to_owned))
                    .unwrap();
                (in_handler, in_work)
            })
            .unwrap();
        assert_eq!(
            handle.thread().and_then(|t| t.name()),
            Some(format!("handler-{config}").as_str())
        );
        let (in_handler, in_work) = join(handle).unwrap();
        assert_eq!(
            in_handler.as_deref(),
            Some(format!("handler-{config}").as_str())
        );
        let in_work = in_work.unwrap_or_default();
        if config.starts_with("rayon") {
            assert!(in_work.starts_with("ythread-rayon-"), "{config}: {in_work}");
        } else {
            assert_eq!(in_work, format!("handler-{config}"));
        }
    }
}

/// Recurses until `bytes` of stack lie between the first frame and the deepest one, and
/// returns how many bytes that was (measured from the addresses of locals).
#[inline(never)]
fn use_stack(top: usize, bytes: usize) -> usize {
    let frame = std::hint::black_box([0u8; 1024]);
    let here = frame.as_ptr() as usize;
    let used = top.abs_diff(here);
    if used >= bytes {
        used
    } else {
        // Keep `frame` alive across the call so every frame really holds its kilobyte.
        let deeper = use_stack(top, bytes);
        std::hint::black_box(&frame);
        deeper
    }
}

fn stack_top() -> usize {
    let marker = std::hint::black_box(0u8);
    &marker as *const u8 as usize
}

/// Deeper than the default coroutine stack (checked at compile time) and Rust's default 2 MiB
/// thread stack.
const DEEP: usize = 4 << 20;
const _: () = assert!(DEEP > ythread::DEFAULT_STACK_SIZE);

#[test]
fn a_larger_coroutine_stack_serves_deep_recursion_in_the_handler() {
    let handle = YieldableThread::builder()
        .stack_size(16 << 20)
        .spawn(&Executor::inline(), |y| {
            let before = y.apply(sumn, 10).unwrap();
            let used = use_stack(stack_top(), DEEP);
            let after = y.apply(sumn, 10).unwrap(); // the handler still yields afterwards
            (used, before, after)
        })
        .unwrap();
    let (used, before, after) = join(handle).unwrap();
    assert!(used >= DEEP, "recursed through only {used} bytes");
    assert_eq!((before, after), (55, 55));
}

#[test]
fn a_larger_thread_stack_serves_deep_recursion_in_inline_work() {
    // Inline work runs on the OS thread's own stack (2 MiB by default in Rust), not on the
    // coroutine stack.
    let handle = YieldableThread::builder()
        .thread_stack_size(16 << 20)
        .spawn(&Executor::inline(), |y| {
            y.run(|| use_stack(stack_top(), DEEP)).unwrap()
        })
        .unwrap();
    let used = join(handle).unwrap();
    assert!(used >= DEEP, "recursed through only {used} bytes");
}

#[test]
fn the_task_macro_names_tasks_by_module_path() {
    assert_eq!(<sumn as Task>::NAME, "ythread_suite::tasks::sumn");
    assert_eq!(<fib as Task>::NAME, "ythread_suite::tasks::fib");
}

#[test]
fn an_impossible_stack_size_is_an_error_from_spawn() {
    for bytes in [usize::MAX, usize::MAX / 2, 1 << 62] {
        let spawned = std::panic::catch_unwind(|| {
            YieldableThread::builder()
                .stack_size(bytes)
                .spawn(&Executor::inline(), |_| ())
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        match spawned {
            Ok(Err(_)) => {}
            Ok(Ok(())) => panic!("a stack of {bytes} bytes cannot exist"),
            Err(p) => panic!(
                "Builder::spawn panicked for a stack of {bytes} bytes instead of returning an \
                 error: {}",
                ythread::payload_message(p.as_ref())
            ),
        }
    }
}
