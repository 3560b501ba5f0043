//! [`SubprocessBuilder`]: the pool's settings, the checks before anything starts, and start-up.
//!
//! `build` refuses early what cannot work (no registry, zero workers, a program that is its
//! own worker but never calls [`init`](crate::init())), then starts the supervisor thread, which
//! starts every worker, and waits for its verdict: all workers passed their handshake, or the
//! first failure. The wait is bounded by the start timeout, which every launch is held to.

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use ythread::TaskRegistry;

use super::dispatch::Dispatch;
use super::launch::LaunchSettings;
use super::process::JobLimits;
use super::strategy::SubprocessPool;
use super::supervisor::{Settings, Supervisor};
use crate::role;
use crate::schedule::{InlineBelow, Scheduler, Scheduling};
use crate::subprocess::settings::{
    CopyMode, DEFAULT_EXPRESS, DEFAULT_MAX_PAYLOAD, DEFAULT_REGULAR_PRIORITY,
    DEFAULT_SHUTDOWN_GRACE, DEFAULT_SPIN, DEFAULT_START_TIMEOUT, MAX_EXPRESS, MIN_MAX_PAYLOAD,
    MIN_MEMORY, SubprocessConfig,
};
use crate::subprocess::transport::marker::MARKER_ENV;
use crate::sys::default_parallelism;
use crate::{Error, WorkerPriority};

impl SubprocessPool {
    /// A builder with the defaults.
    pub fn builder() -> SubprocessBuilder {
        SubprocessBuilder::default()
    }
}

/// Configures a [`SubprocessPool`].
#[derive(Debug, Default)]
#[must_use = "a builder starts nothing until `build` is called"]
pub struct SubprocessBuilder {
    workers: Option<usize>,
    timeout: Option<Duration>,
    recycle_after: Option<u64>,
    spin: Option<Duration>,
    registry: Option<TaskRegistry>,
    program: Option<PathBuf>,
    start_timeout: Option<Duration>,
    shutdown_grace: Option<Duration>,
    express: Option<usize>,
    nice: Option<WorkerPriority>,
    memory: Option<u64>,
    max_payload: Option<u64>,
    copy: Option<CopyMode>,
    scheduling: Scheduling,
}

impl SubprocessBuilder {
    /// Worker processes (default: one per core).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Per-job deadline, counted from sending the job: a worker still busy then is killed,
    /// the job fails with `TimedOut` and the worker is replaced. `None` (the default): no limit.
    pub fn timeout(mut self, d: Option<Duration>) -> Self {
        self.timeout = d;
        self
    }

    /// Replace a worker after it has answered this many jobs (`None`, the default: never).
    /// Bounds what a leaking task or library can accumulate.
    pub fn recycle_after(mut self, n: Option<u64>) -> Self {
        self.recycle_after = n;
        self
    }

    /// How long a caller polls for its reply, and a worker for its next job, before blocking
    /// (default [`DEFAULT_SPIN`], 20 µs; zero never polls). Polling skips a sleep and a
    /// wake-up when the answer comes quickly, at the price of a busy core; it is skipped
    /// adaptively while answers come slowly.
    pub fn spin(mut self, d: Duration) -> Self {
        self.spin = Some(d);
        self
    }

    /// Extra workers that take only work predicted short (default [`DEFAULT_EXPRESS`], 1;
    /// 0 for none), so that short work never waits behind heavy work. They count on top of
    /// [`workers`](Self::workers).
    pub fn express(mut self, n: usize) -> Self {
        self.express = Some(n);
        self
    }

    /// The CPU priority of the regular workers (default: [`WorkerPriority::Idle`] while
    /// there are express workers, so that short work preempts heavy work on the CPU as well as
    /// in the line; unchanged without them).
    pub fn nice(mut self, priority: WorkerPriority) -> Self {
        self.nice = Some(priority);
        self
    }

    /// Each worker's memory limit in bytes (default `None`: no limit), set as the worker's
    /// `RLIMIT_DATA`: its heap and private writable mappings (thread stacks included), not its
    /// code, its main stack or shared mappings.
    /// A task that allocates past it fails its job with a `WorkerDied` error that names the
    /// limit ([`ythread::Error::memory_limit`]), and the worker is replaced.
    pub fn memory(mut self, limit: Option<u64>) -> Self {
        self.memory = limit;
        self
    }

    /// The largest argument or result a job may carry, encoded, in bytes (default
    /// [`DEFAULT_MAX_PAYLOAD`], 1 GiB). A job whose arguments pass it fails with a `Codec`
    /// error before anything is sent; a result that passes it fails its job the same way, in
    /// the worker, which keeps serving.
    pub fn max_payload(mut self, bytes: u64) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// How large byte strings travel (default [`CopyMode::Direct`]: the parent copies them
    /// straight into and out of the worker's memory, one copy each way, where the kernel
    /// allows it; [`CopyMode::Shared`]: through the shared regions, two copies each way).
    pub fn copy(mut self, mode: CopyMode) -> Self {
        self.copy = Some(mode);
        self
    }

    /// The order of waiting work and whether cheap work runs in this process
    /// (defaults: `order=shortest`, `inline_below=off`).
    pub fn scheduling(mut self, scheduling: Scheduling) -> Self {
        self.scheduling = scheduling;
        self
    }

    /// The tasks workers serve (default: the registry given to [`init`](crate::init())). Workers must have
    /// the same registry (same task names and types); the handshake checks its digest.
    pub fn registry(mut self, registry: TaskRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The worker program (default: this program, `/proc/self/exe`, which must call [`init`](crate::init())
    /// first in `main`). Another program must also call [`init`](crate::init()) with the same registry.
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// How long a worker may take to start and pass its handshake
    /// (default [`DEFAULT_START_TIMEOUT`]).
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = Some(d);
        self
    }

    /// How long workers get to exit on their own when the pool shuts down before they are
    /// killed (default [`DEFAULT_SHUTDOWN_GRACE`]).
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = Some(d);
        self
    }

    /// Starts the workers and completes their handshakes.
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for zero workers or a zero recycling
    /// quota. [`ErrorKind::Start`](crate::ErrorKind::Start) if there is no registry, if this
    /// program is the default worker program but `main` did not call [`init`](crate::init()), or if a worker
    /// does not come up: the program cannot be started, exits or does not connect within the
    /// start timeout, or fails the handshake (a different protocol version or registry digest;
    /// the message says which).
    pub fn build(self) -> Result<SubprocessPool, Error> {
        if is_stray_worker() {
            return Err(Error::start(
                "this process was started as a subprocess worker, but its `main` did not call \
                 `ythread_executors::init` first, so it cannot start a pool of its own; call \
                 `init` at the very start of `main`",
            ));
        }
        let workers = self.workers.unwrap_or_else(default_parallelism);
        if workers == 0 {
            return Err(Error::config("a subprocess pool needs at least one worker"));
        }
        if let Some(WorkerPriority::Nice(nice)) = self.nice.filter(|p| !p.is_valid()) {
            return Err(Error::config(format!(
                "nice {nice} is out of range; give a whole number from -20 to 19"
            )));
        }
        if let Some(express) = self.express.filter(|&n| n > MAX_EXPRESS) {
            return Err(Error::config(format!(
                "{express} express workers are more than {MAX_EXPRESS}; give 0 to {MAX_EXPRESS}"
            )));
        }
        if let Some(memory) = self.memory.filter(|&bytes| bytes < MIN_MEMORY) {
            return Err(Error::config(format!(
                "a memory limit of {memory} bytes is too little for a worker to run; give at \
                 least {} MiB",
                MIN_MEMORY >> 20
            )));
        }
        if let Some(max) = self.max_payload.filter(|&bytes| bytes < MIN_MAX_PAYLOAD) {
            return Err(Error::config(format!(
                "a max_payload of {max} bytes would fail almost every job; give at least 1 KiB"
            )));
        }
        if self.recycle_after == Some(0) {
            return Err(Error::config(
                "`recycle_after` must be at least 1 task (or `None` to never recycle)",
            ));
        }
        let registry = self
            .registry
            .clone()
            .or_else(role::registry)
            .ok_or_else(|| {
                Error::start(
                    "the subprocess pool has no task registry; call \
                 `ythread_executors::init(registry)` first in `main`, or pass one to \
                 `SubprocessBuilder::registry`",
                )
            })?;
        let program = match self.program.clone() {
            Some(program) => program,
            None if role::init_called() => PathBuf::from("/proc/self/exe"),
            None => {
                return Err(Error::start(
                    "the subprocess strategy starts this program again as its workers, so \
                     `main` must call `ythread_executors::init(registry)` first; or point \
                     `SubprocessBuilder::program` at a worker program",
                ));
            }
        };
        let spin = self.spin.unwrap_or(DEFAULT_SPIN);
        let express = self.express.unwrap_or(DEFAULT_EXPRESS);
        let settings = Settings {
            workers: workers + express,
            timeout: self.timeout,
            grace: self.shutdown_grace.unwrap_or(DEFAULT_SHUTDOWN_GRACE),
            launch: Arc::new(LaunchSettings {
                program,
                digest: registry.digest(),
                spin,
                memory: self.memory,
                max_payload: self.max_payload.unwrap_or(DEFAULT_MAX_PAYLOAD),
                direct: self.copy.unwrap_or_default() == CopyMode::Direct,
                start_timeout: self.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT),
            }),
        };
        let config = SubprocessConfig {
            workers: Some(workers),
            timeout: self.timeout,
            recycle_after: self.recycle_after,
            spin: self.spin,
            express: self.express,
            nice: self.nice,
            memory: self.memory,
            max_payload: self.max_payload,
            copy: self.copy,
            scheduling: self.scheduling,
        };
        let nice = self
            .nice
            .or((express > 0).then_some(DEFAULT_REGULAR_PRIORITY));
        start(settings, (express, nice), registry, config)
    }
}

/// Starts the supervisor, which starts the workers, and waits for the verdict.
fn start(
    settings: Settings,
    (express, regular_nice): (usize, Option<WorkerPriority>),
    registry: TaskRegistry,
    config: SubprocessConfig,
) -> Result<SubprocessPool, Error> {
    let dispatch = Arc::new(Dispatch::new(express, regular_nice));
    let scheduler = Scheduler::new(
        config.scheduling.order.unwrap_or_default(),
        config.scheduling.inline_below.unwrap_or(InlineBelow::Off),
        express > 0,
    );
    let (requests, inbox) = mpsc::channel();
    let (report, verdict) = mpsc::channel();
    let limits = JobLimits {
        timeout: settings.timeout,
        memory: settings.launch.memory,
        max_payload: usize::try_from(settings.launch.max_payload).unwrap_or(usize::MAX),
    };
    let supervisor = Supervisor::new(
        settings,
        Arc::clone(&dispatch),
        inbox,
        requests.clone(),
        report,
    );
    let supervisor = thread::Builder::new()
        .name("ythread-supervisor".to_owned())
        .spawn(move || supervisor.run())
        .map_err(|e| {
            Error::start("could not start the subprocess pool's supervisor thread").with_source(e)
        })?;
    let pool = SubprocessPool::assemble(
        dispatch, requests, supervisor, registry, limits, config, scheduler,
    );
    // The supervisor answers within the start timeout: every launch is polled against it.
    match verdict.recv() {
        Ok(Ok(())) => Ok(pool),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(Error::start(
            "the subprocess pool's supervisor stopped before its workers came up",
        )),
    }
}

/// Whether this process was started as a worker but is not serving: its `main` did not call
/// [`init`](crate::init()) first. Such a process must not start pools of its own (they would
/// start more such processes, without end).
fn is_stray_worker() -> bool {
    std::env::var_os(MARKER_ENV).is_some() && !role::serving()
}
