//! A `nats-server` of our own on a free local port, for the tests, the benchmark and the
//! comparison of the `nats` strategy: started, waited for (bounded), restarted on the same
//! port, killed on drop.
//!
//! A program that is killed runs no drop: on Linux the broker is also killed by the kernel
//! when the thread that started it ends (`PR_SET_PDEATHSIG`), so a comparison or test killed
//! at its time bound leaves no broker behind. The price: keep a [`Broker`] on the thread that
//! started it (or on one that outlives its use), not handed to a shorter-lived thread.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::required_tool::NATS_SERVER;

/// How long a broker may take to start listening.
pub const START_BOUND: Duration = Duration::from_secs(30);

/// What to do when no broker is installed.
pub const INSTALL_HINT: &str = NATS_SERVER.install;

/// The `nats-server` program: on `PATH`, or where Debian's package puts it; `None` if neither.
pub fn program() -> Option<PathBuf> {
    NATS_SERVER.find()
}

/// A running `nats-server` on 127.0.0.1, killed (and reaped) on drop.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    /// Starts a broker on a port the OS picks and returns once it accepts clients.
    ///
    /// # Errors
    /// A message saying what went wrong: no `nats-server` (with [`INSTALL_HINT`]), or one that
    /// did not start listening within [`START_BOUND`].
    pub fn start() -> Result<Broker, String> {
        Broker::on_port(None)
    }

    /// A broker for the calling test, or `None` when no `nats-server` is installed and the
    /// test should skip (the reason is printed; see [`crate::required_tool`]).
    ///
    /// # Panics
    /// When the broker does not start, or none is installed and `YTHREAD_REQUIRE_TOOLS=1`.
    pub fn for_test() -> Option<Broker> {
        NATS_SERVER.for_test()?;
        Some(Broker::start().unwrap_or_else(|e| panic!("{e}")))
    }

    fn on_port(port: Option<u16>) -> Result<Broker, String> {
        let program = program().ok_or_else(|| format!("no nats-server found; {INSTALL_HINT}"))?;
        let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let mut command = Command::new(&program);
        command
            .args(["-a", "127.0.0.1", "-p", &port_arg])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_this_thread(&mut command);
        let mut child = command
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", program.display()))?;
        let log = child.stderr.take().expect("stderr is piped");
        let (lines, arrivals) = mpsc::channel();
        // Reads the log to its end, so the broker never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(log).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let marker = "Listening for client connections on ";
        let deadline = Instant::now() + START_BOUND;
        let mut log = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = arrivals.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "nats-server did not start listening within {START_BOUND:?}: {}",
                    log.join("; ")
                ));
            };
            if let Some(address) = line.split(marker).nth(1) {
                let port = address
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim().parse().ok());
                return match port {
                    Some(port) => Ok(Broker { child, port }),
                    None => Err(format!("nats-server listens on an unreadable port: {line}")),
                };
            }
            log.push(line);
        }
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the broker and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the broker and starts a new one on the same port.
    ///
    /// # Errors
    /// As [`Broker::start`].
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        *self = Broker::on_port(Some(self.port))?;
        Ok(())
    }
}

/// Has the kernel kill the command's process when the calling thread ends, however it ends:
/// for the broker, and for the worker nodes that programs start next to it.
#[cfg(target_os = "linux")]
pub fn die_with_this_thread(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: between fork and exec the closure calls only `prctl` and `getppid`, which are
    // async-signal-safe, and allocates nothing (an `io::Error` from a raw code or a static
    // message does not allocate).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the request took effect: then nobody waits.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Elsewhere only the drop kills the broker.
#[cfg(not(target_os = "linux"))]
pub fn die_with_this_thread(_command: &mut Command) {}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
