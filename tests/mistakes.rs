//! Mistakes that show at once, in a program that called `init` (this test binary, which calls
//! it once, in warn mode, with a registry that lacks some of its tasks): work a worker process
//! could not run is reported the first time it is yielded, once, under every strategy, and
//! still runs. And, with the test worker program run as a program of its own: threads started
//! before `init` are warned about, strict mode from `YTHREAD_STRICT=1`, and `main` returning an
//! error prints one line.

mod capture_support;
mod support;

use std::process::{Command, Output};
use std::sync::OnceLock;

use capture_support::Seen;
use ythread::{Executor, TaskRegistry, YieldableThread};
use ythread_suite::tasks::tiny;

ythread::task!(
    fn forgotten_inline(x: u64) -> u64 {
        x + 1
    }
);
ythread::task!(
    fn forgotten_rayon(x: u64) -> u64 {
        x + 2
    }
);
ythread::task!(
    fn forgotten_exclusive(x: u64) -> u64 {
        x + 3
    }
);

/// Installs the capture and calls `init` once for the whole binary; returns what was seen.
fn program() -> &'static Seen {
    static SEEN: OnceLock<Seen> = OnceLock::new();
    SEEN.get_or_init(|| {
        // Every warning of the mistakes target.
        let seen = capture_support::install(|metadata| {
            metadata.target() == ythread_executors::mistakes::TARGET
                && *metadata.level() == tracing::Level::WARN
        });
        ythread_executors::init(TaskRegistry::new().with(tiny));
        seen
    })
}

/// How many warnings contain all of `with`.
fn warnings(with: &[&str]) -> usize {
    program()
        .lock()
        .iter()
        .filter(|line| with.iter().all(|w| line.contains(w)))
        .count()
}

/// Yields `task` three times from each of four handlers on `executor`.
fn yield_from_handlers<T>(executor: &Executor, task: T, arg: u64, expected: u64)
where
    T: ythread::Task<Args = u64, Output = u64>,
{
    let handlers: Vec<_> = (0..4)
        .map(|_| {
            YieldableThread::spawn(executor, move |y| {
                (0..3)
                    .map(|_| y.apply(task, arg))
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .collect();
    for handler in handlers {
        let results = support::join(handler).unwrap().unwrap();
        assert_eq!(results, vec![expected; 3], "the work still runs");
    }
}

#[test]
fn an_unregistered_task_is_reported_once_under_inline_and_still_runs() {
    program();
    yield_from_handlers(&Executor::inline(), forgotten_inline, 1, 2);
    assert_eq!(Executor::inline().run(forgotten_inline, 1).unwrap(), 2);
    let name = <forgotten_inline as ythread::Task>::NAME;
    assert_eq!(
        warnings(&[&format!(
            "task `{name}` is not in the `TaskRegistry` given to ythread_executors::init"
        )]),
        1,
        "{:?}",
        program().lock()
    );
    assert_eq!(
        warnings(&[
            name,
            "a worker process (subprocess, nats) could not run it",
            "add it to that registry (`.with(forgotten_inline)`)",
            &format!("task=\"{name}\""),
        ]),
        1,
        "{:?}",
        program().lock()
    );
}

#[test]
fn an_unregistered_task_is_reported_once_under_rayon_and_exclusive() {
    program();
    let rayon = support::executor("rayon:2");
    yield_from_handlers(&rayon, forgotten_rayon, 1, 3);
    assert_eq!(rayon.run(forgotten_rayon, 1).unwrap(), 3);
    yield_from_handlers(&support::executor("exclusive"), forgotten_exclusive, 1, 4);
    for task in [
        <forgotten_rayon as ythread::Task>::NAME,
        <forgotten_exclusive as ythread::Task>::NAME,
    ] {
        assert_eq!(
            warnings(&[&format!("task `{task}` is not in the `TaskRegistry`")]),
            1,
            "{:?}",
            program().lock()
        );
    }
}

#[test]
fn a_registered_task_is_not_reported() {
    program();
    yield_from_handlers(&Executor::inline(), tiny, 41, 42);
    yield_from_handlers(&support::executor("rayon:2"), tiny, 41, 42);
    assert_eq!(
        warnings(&[<tiny as ythread::Task>::NAME]),
        0,
        "{:?}",
        program().lock()
    );
}

#[test]
fn closure_work_is_reported_once_per_process_and_still_runs() {
    program();
    let rayon = support::executor("rayon:2");
    for executor in [Executor::inline(), rayon.clone()] {
        let handler = YieldableThread::spawn(&executor, |y| {
            let a = y.run(|| 5)?;
            let b = y.run(|| 6)?;
            Ok::<_, ythread::Error>(a + b)
        });
        assert_eq!(support::join(handler).unwrap().unwrap(), 11);
    }
    assert_eq!(rayon.run_closure(|| 7).unwrap(), 7);
    assert_eq!(
        warnings(&[
            "closure work (`",
            "cannot leave this process",
            "`Yielder::apply` instead of `Yielder::run`"
        ]),
        1,
        "{:?}",
        program().lock()
    );
    // The closure's type names where it was written.
    assert_eq!(
        warnings(&["closure=\"mistakes::"]),
        1,
        "{:?}",
        program().lock()
    );
}

/// Runs the test worker program as a program of its own, in `mode`, with `env` set.
fn run_worker_program(mode: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ythread-test-worker"));
    command
        .arg(mode)
        .env_remove(ythread_executors::mistakes::STRICT_ENV);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("the test worker program starts");
    assert!(
        output.stdout.is_empty(),
        "{mode}: nothing on stdout: {output:?}"
    );
    output
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn init_after_another_thread_started_warns_on_stderr_with_the_fix() {
    let late = run_worker_program("thread-before-init", &[]);
    assert!(late.status.success(), "{late:?}");
    let text = stderr_of(&late);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(
        text.starts_with(
            "ythread: warning: ythread_executors::init was called while this process runs 2 threads"
        ) && text.contains("every worker process")
            && text.contains(
                "call ythread_executors::init first in main, before #[tokio::main] starts a \
                 runtime: use a plain fn main that calls init, then builds the runtime"
            ),
        "{text}"
    );

    let first = run_worker_program("init-only", &[]);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(stderr_of(&first), "", "init first in main: no warning");
}

#[test]
fn main_returning_an_executors_error_prints_one_line() {
    let output = run_worker_program("bad-config", &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stderr_of(&output);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    assert!(
        text.starts_with("Error: invalid executor `rayon:0`") && text.ends_with("(kind: Config)\n"),
        "{text}"
    );
}

#[test]
fn strict_mode_from_the_environment_fails_at_once_and_main_prints_one_line() {
    let warned = run_worker_program("yield-unregistered", &[]);
    assert!(
        warned.status.success(),
        "without strict mode the task runs: {warned:?}"
    );

    for value in ["1", "true"] {
        let output = run_worker_program("yield-unregistered", &[("YTHREAD_STRICT", value)]);
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let text = stderr_of(&output);
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        assert_eq!(
            text,
            "Error: task `ythread_test_worker::not_registered` is not registered with init() \
             (strict mode: a worker process could not run it); add it to the `TaskRegistry` \
             given to init() (kind: UnknownTask)\n"
        );
    }
}
