//! The `CpuApply` contract as a third-party strategy sees it: a portable strategy can ship a
//! task as name + encoded arguments and answer with encoded bytes; closure work refuses to be
//! encoded; a strategy that breaks the contract (leaves no outcome, or panics) produces a clear
//! error at the yield point or at `join`, never a hang or a crash.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use support::{is_child, join, run_child_test};
use ythread::{CpuApply, Error, ErrorKind, Executor, TaskRegistry, Work, YieldableThread};
use ythread_suite::tasks::{self, fib, panic_with, sumn};

/// Runs tasks the way a remote strategy would: by name, from encoded bytes, through a registry.
struct ByName {
    registry: TaskRegistry,
}

impl CpuApply for ByName {
    fn apply(&self, work: &mut dyn Work) {
        let Some(name) = work.task_name() else {
            let mut unused = Vec::new();
            let err = work.encode_args("by-name", &mut unused).unwrap_err();
            work.fail(err);
            return;
        };
        let mut args = Vec::new();
        if let Err(e) = work.encode_args("by-name", &mut args) {
            return work.fail(e);
        }
        let mut reply = Vec::new();
        match self.registry.run_encoded(name, &args, &mut reply) {
            Ok(()) => work.complete_encoded(&reply),
            Err(e) => work.fail(e),
        }
    }

    fn describe(&self) -> String {
        "by-name".to_owned()
    }
}

#[test]
fn a_portable_strategy_runs_tasks_by_name_from_encoded_bytes() {
    let executor = Executor::new(ByName {
        registry: tasks::registry(),
    });
    let handle = YieldableThread::spawn(&executor, |y| {
        for n in [0, 1, 1000, 123_456] {
            assert_eq!(y.apply(sumn, n).unwrap(), sumn.call(n));
        }
        assert_eq!(y.apply(fib, 20).unwrap(), 6765);
        // A panic inside the registry's run comes back with its message.
        let err = y.apply(panic_with, "remote".to_owned()).unwrap_err();
        assert_eq!(err.message(), Some("remote"));
        // Closure work cannot be encoded, and says which strategy refused it.
        let err = y.run(|| 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotPortable);
        assert!(err.is_not_portable());
        assert!(err.to_string().contains("by-name strategy"), "{err}");
        y.apply(sumn, 10).unwrap()
    });
    assert_eq!(join(handle).unwrap(), 55);
}

#[test]
fn a_task_missing_from_the_registry_is_an_error_naming_it() {
    let executor = Executor::new(ByName {
        registry: TaskRegistry::new().with(fib),
    });
    let err = executor.run(sumn, 5).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownTask, "{err}");
    assert_eq!(err.task(), Some("ythread_suite::tasks::sumn"));
    assert!(
        err.to_string().contains("`ythread_suite::tasks::sumn`"),
        "{err}"
    );
}

/// Breaks the contract: returns without giving the work an outcome.
struct Forgetful;

impl CpuApply for Forgetful {
    fn apply(&self, _work: &mut dyn Work) {}

    fn describe(&self) -> String {
        "forgetful".to_owned()
    }
}

#[test]
fn a_strategy_that_leaves_no_outcome_is_reported_as_its_bug() {
    let handle = YieldableThread::spawn(&Executor::new(Forgetful), |y| {
        let task = y.apply(sumn, 5).unwrap_err();
        let closure = y.run(|| 5).unwrap_err();
        (task, closure)
    });
    let (task, closure) = join(handle).unwrap();
    for err in [task, closure] {
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        let text = err.to_string();
        assert!(text.contains("forgetful strategy"), "{text}");
        assert!(text.contains("bug in the strategy"), "{text}");
    }
}

/// Breaks the contract the hard way: panics instead of running the work.
struct Exploding;

impl CpuApply for Exploding {
    fn apply(&self, _work: &mut dyn Work) {
        panic!("the exploding strategy exploded");
    }

    fn describe(&self) -> String {
        "exploding".to_owned()
    }
}

struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_panicking_strategy_ends_the_handler_with_an_error_and_runs_its_destructors() {
    let dropped = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicBool::new(false));
    let handle = YieldableThread::spawn(&Executor::new(Exploding), {
        let (dropped, after) = (Arc::clone(&dropped), Arc::clone(&after));
        move |y| {
            let _local = DropFlag(dropped);
            let outcome = y.apply(sumn, 5);
            after.store(true, Ordering::SeqCst);
            outcome
        }
    });
    let err = join(handle).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked, "{err}");
    assert_eq!(err.message(), Some("the exploding strategy exploded"));
    // The error blames the strategy, not the handler, which did nothing wrong.
    assert!(
        err.to_string()
            .starts_with("the exploding strategy panicked at tests/custom_strategy.rs:"),
        "{err}"
    );
    assert!(
        err.location()
            .unwrap_or_default()
            .starts_with("tests/custom_strategy.rs:")
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the suspended handler was not unwound"
    );
    assert!(
        !after.load(Ordering::SeqCst),
        "the handler resumed after its strategy panicked"
    );
}

/// Wraps another executor and counts what passes through: strategies compose.
struct Counting {
    inner: Executor,
    seen: Arc<AtomicUsize>,
}

impl CpuApply for Counting {
    fn apply(&self, work: &mut dyn Work) {
        self.seen.fetch_add(1, Ordering::SeqCst);
        self.inner.apply(work);
    }

    fn describe(&self) -> String {
        format!("counting {}", self.inner.describe())
    }
}

#[test]
fn a_strategy_can_wrap_another_one() {
    let seen = Arc::new(AtomicUsize::new(0));
    let inner: Executor = support::executor("rayon:2");
    let executor = Executor::new(Counting {
        inner,
        seen: Arc::clone(&seen),
    });
    assert_eq!(format!("{executor:?}"), "Executor(\"counting rayon:2\")");
    let handle = YieldableThread::spawn(&executor, |y| {
        let a = y.apply(sumn, 10)?;
        let b = y.run(|| 32)?;
        let c = y.apply(panic_with, "x".to_owned()).unwrap_err();
        Ok::<_, Error>((a, b, c.is_panic()))
    });
    assert_eq!(join(handle).unwrap().unwrap(), (55, 32, true));
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

const REPANIC_CHILD: &str = "YTHREAD_TEST_REPANIC_CHILD";

/// Runs in a child process only: today this aborts the process (see the test below).
#[test]
fn repanic_child() {
    if !is_child(REPANIC_CHILD) {
        return; // only meaningful in the child process the test below starts
    }
    let handle = YieldableThread::spawn(&Executor::new(Exploding), |y| {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.apply(sumn, 5)));
        assert!(
            caught.is_err(),
            "the strategy's panic should unwind the handler"
        );
        panic!("the handler saw its own unwinding");
    });
    let err = join(handle).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked, "{err}");
}

#[test]
fn a_handler_that_panics_while_being_unwound_does_not_abort_the_process() {
    // The driver unwinds a handler whose strategy panicked by dropping its coroutine. If the
    // handler catches that unwind and panics with a payload of its own, the panic comes out of
    // corosensei's `Drop`, which aborts the process. It should reach `join` as an error.
    run_child_test("repanic_child", REPANIC_CHILD).assert_passed();
}
