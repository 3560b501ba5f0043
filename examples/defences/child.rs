//! The server under test, in a child process (this program again, with `--serve`), so that
//! its CPU time, threads, memory and worker processes can be read from `/proc` without
//! counting the attacking client's.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use ythread_executors::ExecutorConfig;
use ythread_suite::server::{Framing, Server, ServerConfig};

/// How the child server is set up; `Default` is the sum server's defaults.
#[derive(Clone, Debug)]
pub(crate) struct Setup {
    pub(crate) executor: &'static str,
    pub(crate) framing: Framing,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: Option<usize>,
    pub(crate) backlog: Option<u32>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            executor: "inline",
            framing: Framing::ReadOnce,
            idle_timeout: Duration::from_secs(30),
            max_connections: None,
            backlog: None,
        }
    }
}

/// A running child server; stopped (its stdin closed, then waited for) on drop.
pub(crate) struct ChildServer {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// Descriptors open once the server is up, before any connection.
    baseline_fds: usize,
}

impl ChildServer {
    pub(crate) fn start(setup: &Setup) -> ChildServer {
        let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
        let mut child = Command::new(std::env::current_exe().expect("this program's path"))
            .arg("--serve")
            .args([
                setup.executor.to_owned(),
                setup.framing.to_string(),
                setup.idle_timeout.as_millis().to_string(),
                optional(setup.max_connections.map(|n| n.to_string())),
                optional(setup.backlog.map(|n| n.to_string())),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| crate::fail(&format!("could not start the server: {e}")));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .unwrap_or_else(|e| crate::fail(&format!("the server did not start: {e}")));
        let addr = line
            .trim()
            .parse()
            .unwrap_or_else(|_| crate::fail(&format!("the server printed `{line}`")));
        let mut server = ChildServer {
            child,
            addr,
            baseline_fds: 0,
        };
        // One answered request: the server is set up (its epoll and spare descriptor).
        let _ = ythread_suite::client::request_once(addr, b"1", Duration::from_secs(10));
        server.wait_for_fds_to_settle();
        server.baseline_fds = server.open_fds();
        server
    }

    /// The server's open descriptors.
    pub(crate) fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, Iterator::count)
    }

    pub(crate) fn baseline_fds(&self) -> usize {
        self.baseline_fds
    }

    /// Waits (at most 30 s) until the server holds `fds` descriptors or fewer.
    pub(crate) fn wait_for_fds(&self, fds: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.open_fds() > fds && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits (at most 5 s) until the count of descriptors stops changing.
    fn wait_for_fds_to_settle(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut last = self.open_fds();
        while std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.open_fds();
            if now == last {
                return;
            }
            last = now;
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time of the server's threads so far (from `schedstat`, in nanoseconds): those
    /// alive now, which during a measurement are all of them (handler threads outlive their
    /// handlers by the idle timeout of seconds).
    pub(crate) fn server_cpu(&self) -> Duration {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .unwrap_or_else(|e| crate::fail(&format!("cannot read the server's threads: {e}")));
        let nanos: u64 = tasks
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split(' ').next()?.parse::<u64>().ok())
            .sum();
        Duration::from_nanos(nanos)
    }

    /// The server's resident memory, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// The server's worker processes (its children).
    pub(crate) fn workers(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .into_iter()
            .flatten()
        {
            let Ok(task) = task else { continue };
            let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pids.extend(
                text.split_whitespace()
                    .filter_map(|pid| pid.parse::<u32>().ok()),
            );
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The child's side: serve with the setup on the command line until stdin closes.
pub(crate) fn serve(args: &[String]) -> ExitCode {
    let [executor, framing, idle_ms, max_connections, backlog] = args else {
        crate::fail("--serve takes EXECUTOR FRAMING IDLE_MS MAX_CONNECTIONS BACKLOG");
    };
    let optional = |text: &str| (text != "-").then(|| text.parse().ok()).flatten();
    let executor = executor
        .parse::<ExecutorConfig>()
        .and_then(|config| config.build())
        .unwrap_or_else(|e| crate::fail(&e.to_string()));
    let config = ServerConfig {
        framing: framing.parse().unwrap_or_else(|e: String| crate::fail(&e)),
        idle_timeout: Duration::from_millis(idle_ms.parse().unwrap_or(30_000)),
        max_connections: optional(max_connections),
        backlog: optional(backlog).map(|n: usize| n as u32),
        max_n: u64::MAX,
        ..ServerConfig::default()
    };
    let server = Server::bind(config, executor)
        .unwrap_or_else(|e| crate::fail(&format!("could not start the sum server: {e}")))
        .spawn();
    println!("{}", server.addr());
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_line(&mut String::new());
    let _ = server.shutdown();
    ExitCode::SUCCESS
}
