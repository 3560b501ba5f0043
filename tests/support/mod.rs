//! Helpers shared by the integration tests: the in-process strategies under test, and waits
//! that turn a hang into a failure.
//!
//! Each test binary includes this module with `mod support;` and uses only part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use ythread::{Error, Executor, JoinHandle};
use ythread_executors::ExecutorConfig;

/// Longest any single wait in a test may take before the test fails as hung.
pub(crate) const BOUND: Duration = Duration::from_secs(30);

/// Every in-process strategy, in its configuration form.
pub(crate) const IN_PROCESS: [&str; 4] = ["inline", "exclusive", "rayon:2", "rayon:2,nice=10"];

/// Builds the executor for a configuration string.
pub(crate) fn executor(config: &str) -> Executor {
    let config: ExecutorConfig = config
        .parse()
        .unwrap_or_else(|e| panic!("`{config}` should parse: {e}"));
    config
        .build()
        .unwrap_or_else(|e| panic!("`{config}` should build: {e}"))
}

/// Every in-process strategy, built, with its configuration string.
pub(crate) fn in_process_executors() -> Vec<(&'static str, Executor)> {
    IN_PROCESS.iter().map(|c| (*c, executor(c))).collect()
}

/// Joins `handle`, failing the test if the handler is still running after [`BOUND`].
pub(crate) fn join<R>(mut handle: JoinHandle<R>) -> Result<R, Error> {
    match handle.join_timeout(BOUND) {
        Err(e) if e.is_timeout() => panic!("handler still running after {BOUND:?}: {e}"),
        other => other,
    }
}

/// Receives from `rx`, failing the test if nothing arrives within [`BOUND`].
pub(crate) fn recv<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(BOUND)
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"))
}

/// Counts pieces of work running at the same moment and remembers the most seen at once.
#[derive(Default)]
pub(crate) struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    /// Runs `f` counted as in flight (until it returns or unwinds).
    pub(crate) fn track<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let running = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(running, Ordering::SeqCst);
        let _leave = Leave(&self.now);
        f()
    }

    /// The most pieces of work seen running at once.
    pub(crate) fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    /// How many are running now.
    pub(crate) fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }
}

/// What a child run of one test of this binary printed, and how it ended.
pub(crate) struct ChildRun {
    pub(crate) status: std::process::ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl ChildRun {
    /// Fails the test unless the child test ran and passed.
    pub(crate) fn assert_passed(&self) {
        assert!(
            self.status.success() && self.stdout.contains("1 passed"),
            "child {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// Runs the test `name` of this test binary in a child process with `marker` set in its
/// environment, killing it after [`BOUND`]. For behaviour that may abort the process: an abort
/// must fail one test, not take down the binary that reports it.
pub(crate) fn run_child_test(name: &str, marker: &str) -> ChildRun {
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1"])
        .env(marker, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes on their own threads so a chatty child cannot block on a full pipe.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = std::time::Instant::now() + BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("the child test `{name}` did not finish within {BOUND:?}");
        }
        // Polling a child for its exit: a bounded wait, not choreography.
        std::thread::sleep(Duration::from_millis(10));
    };
    ChildRun {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Whether this process is the child run of a test started by [`run_child_test`].
pub(crate) fn is_child(marker: &str) -> bool {
    std::env::var_os(marker).is_some()
}

/// Runs work that runs more work through the same executor, on a helper thread so that a
/// deadlock fails within [`BOUND`] instead of hanging, and checks both results.
pub(crate) fn assert_nested_work_completes(executor: &Executor) {
    use ythread_suite::tasks::sumn;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn({
        let executor = executor.clone();
        move || {
            let nested = executor.run_closure(|| executor.run(sumn, 10));
            let _ = tx.send(nested.map(|inner| inner.map_err(|e| e.to_string())));
        }
    });
    let outcome = rx
        .recv_timeout(BOUND)
        .expect("nested work deadlocked on the strategy its own thread is running in");
    assert_eq!(outcome.unwrap(), Ok(55));
    // The strategy takes work again afterwards.
    assert_eq!(executor.run(sumn, 4).unwrap(), 10);
}

/// Waits at `barrier` from the test's own thread, failing after [`BOUND`] instead of hanging
/// if a handler never gets there (std's `Barrier` has no timeout).
pub(crate) fn meet(barrier: &std::sync::Arc<std::sync::Barrier>, what: &str) {
    let (arrived, done) = std::sync::mpsc::channel();
    let barrier = std::sync::Arc::clone(barrier);
    std::thread::spawn(move || {
        barrier.wait();
        let _ = arrived.send(());
    });
    if done.recv_timeout(BOUND).is_err() {
        panic!("{what} did not happen within {BOUND:?}");
    }
}

/// A strategy that reports each piece of work as it arrives, then holds it until released (or
/// [`BOUND`] passes, so that a failing test cannot leave a handler stuck for ever).
pub(crate) struct Gate {
    arrived: std::sync::mpsc::Sender<()>,
    release: std::sync::Mutex<Receiver<()>>,
}

/// The test's side of a [`Gate`]: hear of arrivals, release work one piece at a time.
pub(crate) struct GateControl {
    pub(crate) arrived: Receiver<()>,
    pub(crate) release: std::sync::mpsc::Sender<()>,
}

/// A [`Gate`] strategy and its control.
pub(crate) fn gate() -> (Executor, GateControl) {
    let (arrived_tx, arrived) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let strategy = Gate {
        arrived: arrived_tx,
        release: std::sync::Mutex::new(release_rx),
    };
    (Executor::new(strategy), GateControl { arrived, release })
}

impl ythread::CpuApply for Gate {
    fn apply(&self, work: &mut dyn ythread::Work) {
        let _ = self.arrived.send(());
        let _ = self.release.lock().unwrap().recv_timeout(BOUND);
        work.run_here();
    }

    fn describe(&self) -> String {
        "gate".to_owned()
    }
}
