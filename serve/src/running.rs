//! Stopping a server from outside: [`ShutdownHandle`], and [`RunningServer`] for a server
//! on a background thread.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::Server;

/// Tells a [`Server`] to stop: it stops accepting at once, lets in-flight requests finish for
/// its grace period, then cancels the handlers still running. Cheap to clone; any thread may
/// call [`ShutdownHandle::shutdown`], any number of times.
#[derive(Clone, Debug, Default)]
pub struct ShutdownHandle {
    requested: Arc<AtomicBool>,
}

impl ShutdownHandle {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Asks the server to stop and returns at once; [`Server::run`] returns when it is done.
    pub fn shutdown(&self) {
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_shutdown(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

/// A [`Server`] running on a background thread. Dropping it stops the server too (waiting
/// as long as [`RunningServer::shutdown`] would, and ignoring the outcome).
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    stop: ShutdownHandle,
    stop_bound: Duration,
    finished: Option<mpsc::Receiver<io::Result<()>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Slack on top of the server's own stop bound, for a loaded machine.
const STOP_SLACK: Duration = Duration::from_secs(2);

impl RunningServer {
    pub(crate) fn start(server: Server) -> RunningServer {
        let addr = server.local_addr();
        let stop = server.shutdown_handle();
        let stop_bound = server.stop_bound() + STOP_SLACK;
        let (report, finished) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("serve-{}", addr.port()))
            .spawn(move || {
                let _ = report.send(server.run());
            })
            .expect("could not start the server's thread; check the thread limits");
        RunningServer {
            addr,
            stop,
            stop_bound,
            finished: Some(finished),
            thread: Some(thread),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops the server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Stops the server and waits for it, at most the server's stop bound plus a little slack.
    ///
    /// # Errors
    /// What [`Server::run`] returned; `TimedOut` if the server did not stop within the bound
    /// (a handler stuck in CPU work; the server thread is left behind); `Other` if the server
    /// thread panicked.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_wait()
    }

    fn stop_and_wait(&mut self) -> io::Result<()> {
        self.stop.shutdown();
        let Some(finished) = self.finished.take() else {
            return Ok(());
        };
        match finished.recv_timeout(self.stop_bound) {
            Ok(outcome) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
                outcome
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the server on {} did not stop within {:?}; a handler is stuck in work \
                     that cannot be interrupted",
                    self.addr, self.stop_bound
                ),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let panic = self.thread.take().map(std::thread::JoinHandle::join);
                let message = match panic {
                    Some(Err(payload)) => ythread::payload_message(payload.as_ref()),
                    _ => "no message".to_owned(),
                };
                Err(io::Error::other(format!(
                    "the server thread on {} panicked: {message}",
                    self.addr
                )))
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop_and_wait();
    }
}
