//! Starting a worker process and checking its handshake, without ever blocking for good.
//!
//! The handshake is the one message of a worker that goes through ipc-channel, whose receive
//! trusts its peer. That is safe here because of when it comes: before the worker's first job,
//! when it has run only the program's own start-up code and `init`, and no untrusted input.
//! Everything after it travels on the worker's socket, which the pool reads itself (see
//! `socket.rs`).
//!
//! ipc-channel's one-shot `accept` blocks until someone connects, forever if the child dies
//! first. So `accept` runs on a helper thread that reports back through a channel, and the
//! supervisor [`poll`](Launch::poll)s each launch: the handshake arrived (check it), the child
//! exited first (say how), or the start timeout passed (kill it). A helper thread still
//! blocked in `accept` is released by connecting to the server once and hanging up.
//!
//! The worker inherits no stdin, and its stdout and stderr go into one pipe that the parent
//! forwards to its own *stderr* (`output.rs`): a task that prints cannot corrupt a parent whose
//! stdout is a protocol or a report, and the parent sees the worker's last lines when it dies.
//! Workers get their own process group, so a Ctrl-C in the terminal reaches the parent only;
//! they still die with it (see `worker.rs`).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver as Inbox, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use ipc_channel::IpcError;
use ipc_channel::ipc::{IpcOneShotServer, IpcSender};

use super::deadline::{self, Watch};
use super::deaths::pidfd_open;
use super::events::EVENTS;
use super::output::{self, Output};
use super::process::{WorkerProcess, wait_until};
use crate::Error;
use crate::subprocess::transport::direct;
use crate::subprocess::transport::frame::{self, FrameReceiver, Side};
use crate::subprocess::transport::marker::{MARKER_ENV, Marker};
use crate::subprocess::transport::protocol::{EXIT_NO_LIMIT, Hello, Regions, TRANSPORT_VERSION};
use crate::subprocess::transport::receive::Receiver;
use crate::subprocess::transport::shm::{self, Region};
use crate::subprocess::transport::socket::Socket;

/// How workers are started and what they must answer.
#[derive(Clone, Debug)]
pub(super) struct LaunchSettings {
    pub(super) program: PathBuf,
    pub(super) digest: u64,
    pub(super) spin: Duration,
    /// The worker's memory limit in bytes, if any.
    pub(super) memory: Option<u64>,
    /// The largest argument or result in bytes.
    pub(super) max_payload: u64,
    /// Whether large byte strings may go by direct copies (where the probe passes).
    pub(super) direct: bool,
    pub(super) start_timeout: Duration,
}

/// A worker process on its way up.
pub(super) struct Launch {
    /// `None` once handed over to a [`WorkerProcess`]; otherwise killed and reaped on drop.
    child: Option<Child>,
    server: String,
    hello: Inbox<Result<Hello, IpcError>>,
    /// The worker's shared-memory regions; handed to its [`WorkerProcess`].
    regions: Option<Regions>,
    /// The parent's end of the worker's socket; handed to its [`WorkerProcess`].
    socket: Option<Socket>,
    /// The worker's stdout and stderr, forwarded; handed to its [`WorkerProcess`].
    output: Option<Output>,
    /// `None`: the start timeout is too long to ever pass.
    deadline: Option<Instant>,
    settings: Arc<LaunchSettings>,
}

/// Starts a worker. `wake` is called (on a helper thread) when its handshake arrives or fails.
pub(super) fn start(
    settings: &Arc<LaunchSettings>,
    wake: impl FnOnce() + Send + 'static,
) -> Result<Launch, Error> {
    let program = settings.program.display();
    let (server, name) = IpcOneShotServer::<Hello>::new().map_err(|e| {
        Error::start("could not create the socket that subprocess workers connect to")
            .with_source(e)
    })?;
    let regions = Region::create("ythread-args")
        .and_then(|args| Ok((args, Region::create("ythread-results")?)))
        .map(|(args, results)| Regions { args, results })
        .map_err(|e| {
            Error::start("could not create the shared-memory regions of a subprocess worker")
                .with_source(e)
        })?;
    let (socket, workers_end) = Socket::pair().map_err(|e| {
        Error::start("could not create the socket of a subprocess worker").with_source(e)
    })?;
    let marker = Marker {
        parent: std::process::id(),
        spin: settings.spin,
        memory: settings.memory.unwrap_or(0),
        max_payload: settings.max_payload,
        regions: (regions.args.fd(), regions.results.fd()),
        socket: workers_end.fd(),
        server: name.clone(),
    };
    let (output, stdout, stderr) = output::pipe()
        .and_then(|(read, write)| Ok((read, write.try_clone()?, write)))
        .map_err(|e| {
            Error::start("could not create the output pipe of a subprocess worker").with_source(e)
        })?;
    let mut command = Command::new(&settings.program);
    shm::inherit(&mut command, regions.args.fd());
    shm::inherit(&mut command, regions.results.fd());
    shm::inherit(&mut command, workers_end.fd());
    let spawned = command
        .env(MARKER_ENV, marker.encode())
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .spawn();
    // The worker has its own copies now; the parent keeping these would hide their end-of-file.
    drop(command);
    drop(workers_end);
    let child = spawned.map_err(|e| {
        Error::start(format!(
            "could not start the worker program `{program}`; check that it exists and is \
             executable"
        ))
        .with_source(e)
    })?;
    let pid = child.id();
    let mut launch = Launch {
        child: Some(child),
        server: name,
        hello: mpsc::channel().1,
        regions: Some(regions),
        socket: Some(socket),
        output: None,
        deadline: deadline::after(Instant::now(), settings.start_timeout),
        settings: Arc::clone(settings),
    };
    launch.output = Some(Output::forward(output, pid).map_err(|e| {
        Error::start("could not start a thread to forward a worker's output").with_source(e)
    })?);
    let (send_hello, hello) = mpsc::channel();
    thread::Builder::new()
        .name("ythread-accept".to_owned())
        .spawn(move || {
            let _ = send_hello.send(server.accept().map(|(_, hello)| hello));
            wake();
        })
        .map_err(|e| {
            Error::start("could not start a thread to accept a worker's handshake").with_source(e)
        })?;
    launch.hello = hello;
    Ok(launch)
}

impl Launch {
    /// The worker's pid.
    pub(super) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `None` while the worker is still starting; then the worker, or why it failed (the
    /// failed child is killed and reaped when the launch is dropped).
    pub(super) fn poll(&mut self, now: Instant) -> Option<Result<WorkerProcess, Error>> {
        match self.hello.try_recv() {
            Ok(Ok(hello)) => return Some(self.admit(hello)),
            Ok(Err(e)) => return Some(Err(self.failed_handshake(e))),
            Err(TryRecvError::Disconnected) => {
                return Some(Err(Error::start(
                    "the thread accepting a worker's handshake stopped without an answer",
                )));
            }
            Err(TryRecvError::Empty) => {}
        }
        let child = self.child.as_mut()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Err(self.early_exit(&status.to_string())));
        }
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            return Some(Err(Error::start(format!(
                "worker process {} (program `{}`) did not connect within {:?}; make sure its \
                 `main` calls `ythread_executors::init` first, or raise the start timeout",
                self.pid(),
                self.settings.program.display(),
                self.settings.start_timeout
            ))));
        }
        None
    }

    /// When to poll again if nothing wakes the supervisor sooner (to notice a dead child).
    pub(super) fn next_check(&self, now: Instant) -> Instant {
        let soon = now + Duration::from_millis(5);
        self.deadline.map_or(soon, |deadline| soon.min(deadline))
    }

    fn admit(&mut self, hello: Hello) -> Result<WorkerProcess, Error> {
        let pid = self.pid();
        let program = self.settings.program.display();
        if hello.protocol != TRANSPORT_VERSION {
            return Err(Error::start(format!(
                "worker process {pid} (program `{program}`) speaks subprocess protocol {} but \
                 this pool speaks {TRANSPORT_VERSION}; build both from the same version of \
                 ythread-executors",
                hello.protocol
            )));
        }
        if hello.pid != pid {
            return Err(Error::start(format!(
                "process {} answered the handshake meant for worker process {pid}; another \
                 program is connecting to this pool's socket",
                hello.pid
            )));
        }
        if hello.digest != self.settings.digest {
            return Err(Error::start(format!(
                "worker process {pid} (program `{program}`) has a different task registry: \
                 digest mismatch ({:016x} in the worker, {:016x} in this pool); give the pool \
                 the same `TaskRegistry` the worker program passes to `init`, or point \
                 `program` at a build of this program",
                hello.digest, self.settings.digest
            )));
        }
        let direct = self.settings.direct
            && direct::probe(pid, hello.probe)
                .inspect_err(|error| {
                    tracing::info!(
                        target: EVENTS,
                        pid,
                        %error,
                        "subprocess worker cannot be reached by direct copies; its large \
                         payloads go through shared memory"
                    );
                })
                .is_ok();
        let child = self.child.take().expect("a launch is admitted once");
        let regions = self.regions.take().expect("a launch is admitted once");
        let socket = self.socket.take().expect("a launch is admitted once");
        let output = self.output.take().expect("a launch is admitted once");
        // The worker is an unreaped child of this process, so its pid names it alone. Where
        // pidfds are missing, a job waits for end-of-file and its deadline instead.
        let peer = pidfd_open(pid);
        let limit = usize::try_from(self.settings.max_payload)
            .unwrap_or(usize::MAX)
            .saturating_add(frame::HEADROOM);
        let receiver = Receiver::new(socket, peer, self.settings.spin);
        Ok(WorkerProcess::new(
            child,
            regions,
            FrameReceiver::new(receiver, Side::Parent, limit),
            Arc::new(Watch::new(pid)),
            output,
            direct,
        ))
    }

    fn failed_handshake(&mut self, cause: IpcError) -> Error {
        let exited = self
            .child
            .as_mut()
            .and_then(|child| wait_until(child, Instant::now() + Duration::from_millis(200)));
        match exited {
            Some(status) => self.early_exit(&status.to_string()),
            None => Error::start(format!(
                "worker process {} (program `{}`) sent a handshake this pool cannot read; it is \
                 probably a different build: point `program` at a build of this program",
                self.pid(),
                self.settings.program.display()
            ))
            .with_source(cause),
        }
    }

    fn early_exit(&self, status: &str) -> Error {
        if let (Some(limit), true) = (
            self.settings.memory,
            status.contains(&EXIT_NO_LIMIT.to_string()),
        ) {
            return Error::start(format!(
                "worker process {} could not set its memory limit of {limit} bytes ({status}); \
                 give a limit below the hard `ulimit -d` of this environment",
                self.pid()
            ));
        }
        Error::start(format!(
            "worker process {} (program `{}`) ended ({status}) before its handshake; make sure \
             its `main` calls `ythread_executors::init` first, with the same build of \
             ythread-executors as this program",
            self.pid(),
            self.settings.program.display()
        ))
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        // Releases the helper thread if it is still blocked in `accept`: it then reads
        // end-of-file from this connection and returns an error nobody waits for.
        drop(IpcSender::<Hello>::connect(self.server.clone()));
    }
}
