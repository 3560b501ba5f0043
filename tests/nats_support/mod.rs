//! Shared helpers of the `nats_*` test binaries: a real `nats-server` on a free port, worker
//! nodes (the test worker program with `YTHREAD_WORKER` set), and a caller.
//!
//! Every test starts its own broker and nodes; every wait is bounded by [`BOUND`].

#![allow(dead_code, unreachable_pub, unused_imports)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ythread::Executor;
use ythread_executors::{NatsConfig, NatsExecutor};
use ythread_suite::tasks;

pub use crate::subprocess_support::{BOUND, Pipe, eventually, within};

pub mod raw;
pub mod seeded;

/// This test's broker.
pub struct Broker(ythread_suite::nats_broker::Broker);

impl Broker {
    /// Starts a broker on a port the OS picks, and waits until it accepts clients; `None`
    /// when no `nats-server` is installed and the test should skip (it says so).
    pub fn start() -> Option<Broker> {
        ythread_suite::nats_broker::Broker::for_test().map(Broker)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// Kills the broker and waits for it to be gone.
    pub fn kill(&mut self) {
        self.0.kill();
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.0.restart().unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The lines a child writes to a pipe, collected by a thread.
pub struct Lines {
    seen: Arc<Mutex<Vec<String>>>,
    arrivals: Receiver<String>,
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Lines {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (send, arrivals) = mpsc::channel();
    let keep = Arc::clone(&seen);
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            keep.lock().unwrap().push(line.clone());
            let _ = send.send(line);
        }
    });
    Lines { seen, arrivals }
}

impl Lines {
    /// The first line from now on that `matches`, within [`BOUND`].
    pub fn wait_for(&self, matches: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + BOUND;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.arrivals.recv_timeout(left).ok()?;
            if matches(&line) {
                return Some(line);
            }
        }
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }
}

/// A worker node: the test worker program serving the demo tasks from a broker.
pub struct Node {
    child: Child,
    pub pid: u32,
    pub stderr: Lines,
    /// The line in which it said what it serves.
    serving: String,
}

impl Node {
    /// A node of the demo registry running jobs through `local` (its `YTHREAD_EXECUTOR`).
    pub fn start(broker: &Broker, local: &str) -> Node {
        Node::with_env(broker, local, &[])
    }

    /// A node built from a different registry.
    pub fn start_other_build(broker: &Broker) -> Node {
        Node::with_env(broker, "inline", &[("YTHREAD_TEST_REGISTRY", "other")])
    }

    /// A node of the demo registry whose `YTHREAD_WORKER` form has `options` after the URL
    /// (`,timeout=1s`: its drain bound).
    pub fn start_with_options(broker: &Broker, local: &str, options: &str) -> Node {
        Node::spawn(
            test_worker(),
            &format!("{}{options}", broker.url()),
            local,
            &[],
        )
    }

    fn with_env(broker: &Broker, local: &str, env: &[(&str, &str)]) -> Node {
        Node::spawn(test_worker(), &broker.url(), local, env)
    }

    /// `program` as a node: `YTHREAD_WORKER={worker}`, `YTHREAD_EXECUTOR={local}`, `env`.
    pub fn spawn(mut program: Command, worker: &str, local: &str, env: &[(&str, &str)]) -> Node {
        let mut child = program
            .env("YTHREAD_WORKER", worker)
            .env("YTHREAD_EXECUTOR", local)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let stderr = lines_of(child.stderr.take().unwrap());
        let Some(serving) = stderr.wait_for(|line| line.contains(": serving ")) else {
            let _ = child.kill();
            panic!("node {pid} did not start serving: {}", stderr.text());
        };
        Node {
            child,
            pid,
            stderr,
            serving,
        }
    }

    /// The subject of jobs of `task` on this node's registry, from what it said it serves
    /// (`... on PREFIX.DIGEST.task.> from ...`).
    pub fn job_subject(&self, task: &str) -> String {
        let all = self
            .serving
            .split(" on ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("no subjects in `{}`", self.serving));
        format!("{}{task}", all.trim_end_matches('>'))
    }

    /// The subject of jobs of `task` for this node only.
    pub fn own_subject(&self, task: &str) -> String {
        let job = self.job_subject(task);
        let host = self.serving.split(": serving").next().unwrap();
        let name: String = host
            .trim_start_matches("ythread node ")
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && !matches!(c, '.' | '*' | '>' | ':') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        job.replace(".task.", &format!(".at.{name}."))
    }

    /// Sends `signal` to the node.
    pub fn signal(&self, signal: i32) {
        // SAFETY: `kill` takes two integers and touches no memory; the pid is our own child,
        // not yet reaped (the handle waits for it only in `wait` and on drop).
        let sent = unsafe { libc::kill(self.pid as libc::pid_t, signal) };
        assert_eq!(sent, 0, "kill({}, {signal})", self.pid);
    }

    /// Whether the node is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits until the node says it drains.
    pub fn start_draining(&self) {
        self.signal(libc::SIGTERM);
        assert!(
            self.stderr.wait_for(|l| l.contains("draining")).is_some(),
            "{}",
            self.stderr.text()
        );
    }

    /// Waits for the node to exit, within [`BOUND`], and checks that it stopped with `jobs`
    /// jobs still running (at its drain bound, or at a second signal).
    pub fn wait_abandoning(&mut self, jobs: usize) {
        let status = self.wait();
        let said = self.stderr.text();
        assert_eq!(
            status.code(),
            Some(ythread_executors::nats::EXIT_ABANDONED),
            "{said}"
        );
        let line = format!("stopping with {jobs} jobs still running");
        assert!(said.contains(&line), "{said}");
    }

    /// Waits for the node to exit, within [`BOUND`].
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not exit within {BOUND:?}",
                self.pid
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test worker program, asked to serve every task of the demo registry, the
/// fault-injection tasks included.
fn test_worker() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ythread-test-worker"));
    command.env(tasks::FAULT_TASKS_ENV, "1");
    command
}

/// A caller of the demo registry on `broker`, with per-job deadline `timeout`.
pub fn caller(broker: &Broker, timeout: &str) -> Executor {
    Executor::new(nats_caller(broker, timeout))
}

/// [`caller`], as the strategy itself (for [`NatsExecutor::nodes`]).
pub fn nats_caller(broker: &Broker, timeout: &str) -> NatsExecutor {
    let config: NatsConfig = match format!("{},timeout={timeout}", broker.url()).parse() {
        Ok(ythread_executors::ExecutorConfig::Nats(config)) => config,
        other => panic!("not a nats config: {other:?}"),
    };
    NatsExecutor::connect(config, tasks::registry()).unwrap()
}
