//! Strict mode (`ythread_executors::init_strict`, or `YTHREAD_STRICT=1`): in a program that
//! called it (this test binary), work a worker process could not run fails at once, under
//! every strategy, without running, with a message that names the fix. Its own binary, since
//! the mode holds for the whole process.

mod support;

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use ythread::{ErrorKind, TaskRegistry, YieldableThread};
use ythread_suite::tasks::tiny;

static RAN: AtomicUsize = AtomicUsize::new(0);

ythread::task!(
    fn forgotten(x: u64) -> u64 {
        RAN.fetch_add(1, Ordering::Relaxed);
        x
    }
);

fn strict_program() {
    static INIT: Once = Once::new();
    INIT.call_once(|| ythread_executors::init_strict(TaskRegistry::new().with(tiny)));
}

#[test]
fn an_unregistered_task_fails_at_once_under_every_in_process_strategy() {
    strict_program();
    assert_eq!(
        ythread::portable::required(),
        Some(ythread::portable::Mode::Strict)
    );
    let name = <forgotten as ythread::Task>::NAME;
    for (config, executor) in support::in_process_executors() {
        let handler =
            YieldableThread::spawn(&executor, |y| (y.apply(forgotten, 1), y.apply(tiny, 41)));
        let (refused, registered) = support::join(handler).unwrap();
        let error = refused.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnknownTask, "{config}: {error}");
        assert_eq!(error.task(), Some(name));
        assert_eq!(
            error.to_string(),
            format!(
                "task `{name}` is not registered with init() (strict mode: a worker process \
                 could not run it); add it to the `TaskRegistry` given to init()"
            )
        );
        assert_eq!(registered.unwrap(), 42, "{config}: registered work runs");
        let error = executor.run(forgotten, 1).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnknownTask, "{config}: {error}");
    }
    assert_eq!(RAN.load(Ordering::Relaxed), 0, "the refused task never ran");
}

#[test]
fn closure_work_fails_at_once_with_the_fix() {
    strict_program();
    for (config, executor) in support::in_process_executors() {
        let handler = YieldableThread::spawn(&executor, |y| y.run(|| 5));
        let error = support::join(handler).unwrap().unwrap_err();
        assert!(error.is_not_portable(), "{config}: {error}");
        let text = error.to_string();
        assert!(
            text.starts_with("closure work (`mistakes_strict::")
                && text.contains("strict mode refuses work a worker process could not run")
                && text.contains("define the work with `ythread::task!`"),
            "{config}: {text}"
        );
        assert!(executor.run_closure(|| 6).unwrap_err().is_not_portable());
    }
}
