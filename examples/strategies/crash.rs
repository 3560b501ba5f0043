//! Section 3, crash isolation: a request whose task aborts the process it runs in.
//!
//! Every strategy's server runs in a child process (this program with `--serve-child`, see
//! `child_server.rs`), so the comparison survives whatever happens. The parent sends a plain
//! request, then `abort`, then a few plain requests, and reports what the crash request got,
//! whether the server process survived, and how many later requests it served. An in-process
//! strategy loses its whole server; the subprocess strategy loses one worker and one request.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ythread_suite::client::request_once;
use ythread_suite::server::Work;

use crate::child_server::ABORT_REQUEST;
use crate::plan::{Plan, Strategy};

/// What happened around the crash.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    /// The reply to the crash request, or why there was none.
    pub(crate) crash_reply: Result<String, String>,
    /// Whether the server process was still running after the crash.
    pub(crate) survived: bool,
    /// How the server process ended, if it did.
    pub(crate) exit: Option<String>,
    pub(crate) served_after: usize,
    pub(crate) sent_after: usize,
}

/// One strategy's row of the crash table.
pub(crate) type Row = crate::plan::Row<Outcome>;

/// Starting the child includes starting its strategy (a worker pool in a debug build).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Bounds each request to the child.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server that lost its process may take to be seen as gone.
const DEATH_GRACE: Duration = Duration::from_secs(2);
/// A small plain request that proves the server serves.
const PLAIN_N: u64 = 25_000;

pub(crate) fn measure(strategy: &Strategy, plan: &Plan) -> Row {
    Row::new(strategy, run_child(strategy, plan))
}

fn run_child(strategy: &Strategy, plan: &Plan) -> Result<Outcome, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("could not find this program to start the server: {e}"))?;
    let mut child = ChildServer(
        Command::new(exe)
            .arg("--serve-child")
            .arg(&strategy.label)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start the server process: {e}"))?,
    );
    let addr = child.read_addr()?;
    plain_request(addr).map_err(|e| format!("the server did not serve before the crash: {e}"))?;

    let crash_reply = request_once(addr, ABORT_REQUEST, REQUEST_TIMEOUT).map_err(|e| e.to_string());
    let mut exit = child.wait_for_exit(DEATH_GRACE);
    let mut served_after = 0;
    for _ in 0..plan.crash_followups {
        if plain_request(addr).is_ok() {
            served_after += 1;
        }
    }
    if exit.is_none() {
        exit = child.exited();
    }
    Ok(Outcome {
        crash_reply,
        survived: exit.is_none(),
        exit: exit.map(describe_exit),
        served_after,
        sent_after: plan.crash_followups,
    })
}

fn plain_request(addr: SocketAddr) -> Result<(), String> {
    let reply = request_once(addr, PLAIN_N.to_string().as_bytes(), REQUEST_TIMEOUT)
        .map_err(|e| e.to_string())?;
    if reply.trim() == Work::Sumn.expected(PLAIN_N).to_string() {
        Ok(())
    } else {
        Err(format!("unexpected reply `{reply}`"))
    }
}

fn describe_exit(status: ExitStatus) -> String {
    match (status.signal(), status.code()) {
        (Some(libc::SIGABRT), _) => "killed by SIGABRT".to_owned(),
        (Some(signal), _) => format!("killed by signal {signal}"),
        (None, Some(code)) => format!("exited with status {code}"),
        (None, None) => "ended".to_owned(),
    }
}

/// The child server process; dropping it ends the process and reaps it.
struct ChildServer(Child);

impl ChildServer {
    /// Reads the port line, bounded by [`START_TIMEOUT`].
    fn read_addr(&mut self) -> Result<SocketAddr, String> {
        let stdout: ChildStdout = self.0.stdout.take().expect("stdout is piped");
        let (send, receive) = mpsc::channel();
        // The reader owns stdout; if the child hangs, the thread is left blocked on a pipe
        // that closes when the child is killed below.
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = send.send(read);
        });
        let line = match receive.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(format!("could not read the server's port: {e}")),
            Err(_) => return Err(format!("the server did not start within {START_TIMEOUT:?}")),
        };
        let line = line.trim();
        if let Some(message) = line.strip_prefix("error: ") {
            // The child could not start the strategy: the same reason as in the other sections.
            return Err(format!("unavailable: {message}"));
        }
        match line.parse::<u16>() {
            Ok(port) => Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
            Err(_) => Err(match self.exited() {
                Some(status) => format!("the server {} before it listened", describe_exit(status)),
                None => format!("the server printed `{line}` instead of its port"),
            }),
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.0.try_wait().ok().flatten()
    }

    fn wait_for_exit(&mut self, grace: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // Closing stdin asks the child to exit (and lets its worker pool go down with it);
        // a child that does not is killed.
        drop(self.0.stdin.take());
        if self.wait_for_exit(DEATH_GRACE).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
