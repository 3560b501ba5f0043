//! Regression tests for defects a review proved in the core: each failed (aborted, hung or
//! reported the wrong thing) before its fix.
//!
//! Behaviour that aborted the process runs in a child process (this test binary again, filtered
//! to one test, with a marker in its environment), so a regression fails one test instead of
//! taking down the binary that reports it.

mod support;

use std::panic;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use support::{is_child, join, run_child_test};
use ythread::{CpuApply, ErrorKind, Executor, JoinHandle, Work, YieldableThread, Yielder};
use ythread_suite::tasks::sumn;

/// Panics on the first `panics` pieces of work it is given, then runs work inline.
struct PanicsFirst {
    panics: AtomicUsize,
}

impl PanicsFirst {
    fn executor(panics: usize) -> Executor {
        Executor::new(PanicsFirst {
            panics: AtomicUsize::new(panics),
        })
    }
}

impl CpuApply for PanicsFirst {
    fn apply(&self, work: &mut dyn Work) {
        let left = self.panics.load(Ordering::SeqCst);
        if left > 0 {
            self.panics.store(left - 1, Ordering::SeqCst);
            panic!("the strategy panicked on purpose");
        }
        work.run_here();
    }

    fn describe(&self) -> String {
        "panics-first".to_owned()
    }
}

/// Yields work from its destructor and records what came back, as a guard that flushes a log
/// or writes a last reply might.
struct YieldsOnDrop<'a, 'y> {
    y: &'a Yielder<'y>,
    seen: Arc<Mutex<Option<String>>>,
}

impl Drop for YieldsOnDrop<'_, '_> {
    fn drop(&mut self) {
        let outcome = match self.y.apply(sumn, 10) {
            Ok(v) => format!("ok {v}"),
            Err(e) => format!("error {e}"),
        };
        *self.seen.lock() = Some(outcome);
    }
}

/// Runs a handler that holds a [`YieldsOnDrop`] guard while it yields (and, if `then_panic`,
/// panics after its first yield) on a strategy that panics `panics` times. Returns the
/// handler's outcome and what the guard saw.
fn guarded_handler(panics: usize, then_panic: bool) -> (ythread::Error, String) {
    let seen = Arc::new(Mutex::new(None));
    let handle = YieldableThread::spawn(&PanicsFirst::executor(panics), {
        let seen = Arc::clone(&seen);
        move |y| {
            let _guard = YieldsOnDrop { y, seen };
            if then_panic {
                panic!("the handler panicked on purpose");
            }
            y.apply(sumn, 5)
        }
    });
    let error = match join(handle) {
        Ok(result) => panic!("the handler should have failed, it returned {result:?}"),
        Err(error) => error,
    };
    let seen = seen
        .lock()
        .clone()
        .expect("the guard's destructor did not finish");
    (error, seen)
}

const STRATEGY_PANIC_CHILD: &str = "YTHREAD_TEST_STRATEGY_PANIC_GUARD_CHILD";

#[test]
fn strategy_panic_guard_child() {
    if !is_child(STRATEGY_PANIC_CHILD) {
        return; // only meaningful in the child process the test below starts
    }
    // The strategy panics once: the handler unwinds, and its guard's work runs normally.
    let (error, seen) = guarded_handler(1, false);
    assert_eq!(error.kind(), ErrorKind::Panicked, "{error}");
    assert_eq!(error.message(), Some("the strategy panicked on purpose"));
    assert_eq!(seen, "ok 55");
    // The strategy panics on the guard's work too: that work fails, the unwinding goes on.
    let (error, seen) = guarded_handler(2, false);
    assert_eq!(error.message(), Some("the strategy panicked on purpose"));
    assert!(
        seen.starts_with("error the panics-first strategy panicked at tests/core_defects.rs:"),
        "{seen}"
    );
    assert!(seen.contains("the strategy panicked on purpose"), "{seen}");
}

#[test]
fn a_strategy_panic_while_a_guard_yields_on_drop_does_not_abort() {
    run_child_test("strategy_panic_guard_child", STRATEGY_PANIC_CHILD).assert_passed();
}

const HANDLER_PANIC_CHILD: &str = "YTHREAD_TEST_HANDLER_PANIC_GUARD_CHILD";

#[test]
fn handler_panic_guard_child() {
    if !is_child(HANDLER_PANIC_CHILD) {
        return; // only meaningful in the child process the test below starts
    }
    // The handler panics; its guard yields while unwinding; the strategy panics on that work.
    let (error, seen) = guarded_handler(1, true);
    assert_eq!(error.kind(), ErrorKind::Panicked, "{error}");
    assert_eq!(error.message(), Some("the handler panicked on purpose"));
    assert!(
        seen.starts_with("error the panics-first strategy panicked at"),
        "{seen}"
    );
    // And with a strategy that does not panic, the guard's work runs during the unwinding.
    let (error, seen) = guarded_handler(0, true);
    assert_eq!(error.message(), Some("the handler panicked on purpose"));
    assert_eq!(seen, "ok 55");
}

#[test]
fn a_strategy_panic_on_work_yielded_while_the_handler_unwinds_does_not_abort() {
    run_child_test("handler_panic_guard_child", HANDLER_PANIC_CHILD).assert_passed();
}

/// A panic payload whose own destructor panics.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the panic payload panicked when dropped");
    }
}

#[test]
fn a_panic_payload_that_panics_when_dropped_still_reaches_join() {
    let mut handle = YieldableThread::spawn(&Executor::inline(), |y| {
        y.apply(sumn, 3).unwrap();
        panic::panic_any(PanicsWhenDropped)
    });
    let error = handle
        .join_timeout(support::BOUND)
        .expect_err("the handler panicked");
    assert_eq!(error.kind(), ErrorKind::Panicked, "{error}");
    assert_eq!(error.message(), Some("a panic with a non-string payload"));

    // The same before the first yield, and `is_finished` turns true.
    let handle =
        YieldableThread::spawn(&Executor::inline(), |_| panic::panic_any(PanicsWhenDropped));
    wait_until_finished(&handle);
    assert!(join(handle).unwrap_err().is_panic());
}

/// Polls `is_finished` until it turns true, failing the test after [`support::BOUND`].
fn wait_until_finished<R>(handle: &JoinHandle<R>) {
    let deadline = Instant::now() + support::BOUND;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the handler did not finish within {:?}",
            support::BOUND
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

const NESTED_PANIC_CHILD: &str = "YTHREAD_TEST_NESTED_PANIC_CHILD";

struct PanicsInDrop;

impl Drop for PanicsInDrop {
    fn drop(&mut self) {
        panic!("second panic, in a destructor of the work");
    }
}

#[test]
fn nested_panic_child() {
    if !is_child(NESTED_PANIC_CHILD) {
        return; // only meaningful in the child process the test below starts
    }
    // A panic out of a destructor during unwinding aborts the process: that cannot be
    // helped, but both panics must be on stderr to say why.
    let _ = Executor::inline().run_closure(|| {
        let _guard = PanicsInDrop;
        panic!("first panic, in the work");
    });
}

#[test]
fn a_work_panic_that_panics_again_while_unwinding_prints_both_before_the_abort() {
    let (status, stderr) = run_child_uncaptured("nested_panic_child", NESTED_PANIC_CHILD);
    assert!(!status.success(), "the child should have aborted");
    for message in [
        "first panic, in the work",
        "second panic, in a destructor of the work",
    ] {
        assert!(
            stderr.contains(message),
            "`{message}` missing from stderr:\n{stderr}"
        );
    }
}

/// Runs the test `name` of this binary in a child process with `marker` set and without
/// libtest's output capture (a process that aborts loses what was captured), killing it after
/// [`support::BOUND`]. Returns how it ended and its stderr.
fn run_child_uncaptured(name: &str, marker: &str) -> (std::process::ExitStatus, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(marker, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + support::BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the child test `{name}` did not finish within {:?}",
                support::BOUND
            );
        }
        // Polling a child for its exit: a bounded wait, not choreography.
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, stderr.join().unwrap())
}

const STACK_SIZES_CHILD: &str = "YTHREAD_TEST_STACK_SIZES_CHILD";

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps is readable")
        .lines()
        .count()
}

#[test]
fn stack_sizes_child() {
    if !is_child(STACK_SIZES_CHILD) {
        return; // only meaningful in the child process the test below starts
    }
    let spawn = |bytes: usize| {
        let handle = YieldableThread::builder()
            .stack_size(bytes)
            .spawn(&Executor::inline(), |y| y.apply(sumn, 10).unwrap())
            .unwrap();
        assert_eq!(join(handle).unwrap(), 55);
    };
    spawn(64 << 10); // warm up: the handler thread, the panic hook, the allocator
    let before = mappings();
    const SIZES: usize = 300;
    for i in 0..SIZES {
        spawn((64 << 10) + i * 4096);
    }
    let grown = mappings().saturating_sub(before);
    // 64 KiB to 1.2 MiB spans six power-of-two size classes; a pooled stack is two mappings
    // (its guard page and the rest). Before the fix every distinct size kept its own stack.
    assert!(
        grown <= 6 * 2 + 16,
        "{grown} more mappings after {SIZES} distinct stack sizes"
    );
}

#[test]
fn the_stack_pool_keeps_a_bounded_number_of_sizes() {
    run_child_test("stack_sizes_child", STACK_SIZES_CHILD).assert_passed();
}

#[test]
fn a_rethrown_panic_is_reported_where_its_payload_was_raised() {
    // A new payload thrown with `resume_unwind` has no location: it must not borrow the one
    // of a panic the handler caught earlier.
    let handle = YieldableThread::spawn(&Executor::inline(), |_| {
        let _ = panic::catch_unwind(|| panic!("first, caught"));
        panic::resume_unwind(Box::new("second, rethrown"))
    });
    let error = join(handle).unwrap_err();
    assert_eq!(error.message(), Some("second, rethrown"));
    assert_eq!(error.location(), None, "{error}");

    // Rethrowing the caught payload itself keeps the location of the panic that raised it.
    let handle = YieldableThread::spawn(&Executor::inline(), |_| {
        let payload = panic::catch_unwind(|| panic!("first, rethrown")).unwrap_err();
        panic::resume_unwind(payload)
    });
    let error = join(handle).unwrap_err();
    assert_eq!(error.message(), Some("first, rethrown"));
    assert!(
        error
            .location()
            .is_some_and(|l| l.starts_with("tests/core_defects.rs:")),
        "{error}"
    );
}
