//! Helpers of the example servers' end-to-end tests: the `sumserver` (or another) example as
//! a child process, bounded waits, and the process tree read from `/proc`.
//!
//! Each `tests/sumserver*.rs` binary (and `tests/thumbnails.rs`) includes this module with
//! `mod sumserver_support;` and uses only part of it.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest any single wait in these tests may take before the test fails as hung.
pub const BOUND: Duration = Duration::from_secs(30);

/// How often bounded waits on another process look again.
const POLL: Duration = Duration::from_millis(10);

/// The `sumserver` example, built for this test profile (see [`example_binary`]).
pub fn sumserver_binary() -> PathBuf {
    example_binary("sumserver")
}

/// The example `name`, built for this test profile. `cargo test` builds the examples, but
/// `cargo test --test NAME` does not, and a stale binary would test old code: so build it (a
/// no-op when it is fresh) before the first use.
pub fn example_binary(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap();
    if let Some((_, binary)) = built.iter().find(|(built_name, _)| built_name == name) {
        return binary.clone();
    }
    // This test binary is target/<profile>/deps/NAME-HASH; examples are in
    // target/<profile>/examples.
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "--example", name, "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    if profile_dir.file_name().is_some_and(|dir| dir == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .unwrap_or_else(|e| panic!("cargo could not be run to build the {name} example: {e}"));
    assert!(
        status.success(),
        "building the {name} example failed: {status}"
    );
    let binary = profile_dir.join("examples").join(name);
    assert!(
        binary.exists(),
        "{} is missing after the build",
        binary.display()
    );
    built.push((name.to_owned(), binary.clone()));
    binary
}

/// An example server (`sumserver` unless started with [`ServerProcess::start_example`])
/// running as a child process. Dropping it kills the process, so a failing test leaves
/// nothing behind.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    /// Signalled when stderr closes: everything the server wrote is in `stderr` then.
    stderr_closed: Mutex<mpsc::Receiver<()>>,
    /// Everything on stdout after the first line, sent once stdout closes (in a mutex so
    /// that tests can share the server between threads).
    rest_of_stdout: Mutex<mpsc::Receiver<String>>,
}

impl ServerProcess {
    /// Starts `sumserver --addr 127.0.0.1:0 ARGS...` and reads the port from its first line.
    pub fn start(args: &[&str]) -> ServerProcess {
        ServerProcess::start_example("sumserver", args)
    }

    /// As [`ServerProcess::start`], with at most `fds` open file descriptors (set by
    /// util-linux's `prlimit`, which then runs the server in its own process).
    pub fn start_with_fd_limit(fds: u64, args: &[&str]) -> ServerProcess {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={fds}:{fds}"))
            .arg("--")
            .arg(example_binary("sumserver"));
        ServerProcess::start_command(command, "sumserver", args, &[])
    }

    /// Starts the example `name` with `--addr 127.0.0.1:0 ARGS...` and reads the port from
    /// its first line, `listening on HOST:PORT`.
    pub fn start_example(name: &str, args: &[&str]) -> ServerProcess {
        ServerProcess::start_example_with_env(name, args, &[])
    }

    /// [`ServerProcess::start_example`] with these environment variables set as well.
    pub fn start_example_with_env(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        ServerProcess::start_command(Command::new(example_binary(name)), name, args, env)
    }

    fn start_command(
        mut command: Command,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut child = command
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env_remove("YTHREAD_EXECUTOR")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("the {name} example could not be started: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr is piped");
        let collected = Arc::clone(&stderr);
        let (closed, stderr_closed) = mpsc::channel();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(len @ 1..) = err_pipe.read(&mut chunk) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..len]));
            }
            let _ = closed.send(());
        });
        let out_pipe = child.stdout.take().expect("stdout is piped");
        let (first_line, line) = mpsc::channel();
        let (rest_done, rest_of_stdout) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out_pipe);
            let mut text = String::new();
            let _ = reader.read_line(&mut text);
            let _ = first_line.send(text);
            // Keep reading so the server never blocks on a full pipe.
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            let _ = rest_done.send(rest);
        });
        let mut server = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
            stderr_closed: Mutex::new(stderr_closed),
            rest_of_stdout: Mutex::new(rest_of_stdout),
        };
        let text = line
            .recv_timeout(BOUND)
            .unwrap_or_else(|_| panic!("{name} {args:?} printed no first line within {BOUND:?}"));
        let addr = text
            .trim()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| {
                let status = server.wait_for_exit(BOUND);
                panic!(
                    "{name} {args:?} printed {text:?} instead of `listening on HOST:PORT` \
                     (status {status:?}, stderr: {})",
                    server.stderr()
                )
            });
        server.addr = addr;
        server
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What the server wrote to stdout after its first line, once stdout closed (the server
    /// exited); `None` if it is still open after `bound`.
    pub fn stdout_after_first_line(&self, bound: Duration) -> Option<String> {
        self.rest_of_stdout.lock().unwrap().recv_timeout(bound).ok()
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pids fit in pid_t");
        // SAFETY: `kill` only reads its integer arguments; `pid` is our own child, which has
        // not been reaped yet (we hold its `Child`), so the id cannot have been reused.
        let status = unsafe { libc::kill(pid, signal) };
        assert_eq!(status, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits at most `bound` for the server to exit (and for the rest of its stderr, which
    /// [`ServerProcess::stderr`] then holds whole); `None` if it is still running.
    pub fn wait_for_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting on the server works") {
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = self.stderr_closed.lock().unwrap().recv_timeout(left);
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The living descendants of process `pid` (children, grandchildren, ...), from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let table = process_table();
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(child, ppid, state) in &table {
            if ppid == parent && state != 'Z' && !found.contains(&child) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

/// Whether `pid` is a living process (present and not a zombie).
pub fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, state)| state != 'Z')
}

/// Waits at most `bound` until none of `pids` is alive; returns those still alive then.
pub fn wait_until_gone(pids: &[u32], bound: Duration) -> Vec<u32> {
    let deadline = Instant::now() + bound;
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|&pid| is_alive(pid)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(POLL);
    }
}

/// (pid, ppid, state) of every process.
fn process_table() -> Vec<(u32, u32, char)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| stat(pid).map(|(ppid, state)| (pid, ppid, state)))
        .collect()
}

/// (ppid, state) of `pid` from `/proc/PID/stat`, whose command name may hold spaces and
/// parentheses: the fields after the last `)` are reliable.
fn stat(pid: u32) -> Option<(u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}
