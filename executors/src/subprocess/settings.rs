//! The subprocess strategy's settings as plain values: [`SubprocessConfig`], its text in the
//! configuration form (`subprocess[:WORKERS][,OPTION=VALUE...]`, read and written), the
//! defaults and bounds the builder and the parser share, and [`CopyMode`].
//!
//! The bottom of the strategy: the transport, the pool and the worker read these values, and
//! the crate's configuration parses and writes a pool's settings through them, so that neither
//! the pool nor the configuration has to import the other.

use std::fmt;
use std::time::Duration;

use crate::WorkerPriority;
use crate::schedule::{Scheduling, parse_express};
use crate::units::{
    parse_count, parse_duration, parse_size, parse_timeout, size_text, write_duration, write_size,
};

/// How long a caller polls for its reply (and a worker for its next job) before blocking,
/// unless configured: 20 µs. On the quiet 2-vCPU machine of `docs/subprocess.md`, waking a
/// process on an idle vCPU cost 20-45 µs and a 20 µs poll cut the tiny round trip 2-4×; under
/// load, polling lost 1-9 µs. The poll backs off after misses, so long jobs barely pay for it;
/// `spin=0us` turns it off.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);

/// How long a started worker may take to connect and pass its handshake, unless configured.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long workers get to exit on their own when the pool shuts down, unless configured.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Express workers, unless configured: one, which takes only work predicted short.
pub const DEFAULT_EXPRESS: usize = 1;

/// The largest argument or result a job may carry, unless configured: 1 GiB, encoded.
pub const DEFAULT_MAX_PAYLOAD: u64 = 1 << 30;

/// The smallest `max_payload` a pool takes: 1 KiB.
pub const MIN_MAX_PAYLOAD: u64 = 1 << 10;

/// The smallest memory limit a worker takes: below it, the worker's own start-up (the program's
/// statics, its channels and buffers) could fail before any task runs.
pub const MIN_MEMORY: u64 = 16 << 20;

pub use crate::schedule::MAX_EXPRESS;

/// The CPU priority of the regular workers while there are express workers, unless
/// configured: the idle scheduling class, so heavy work yields the core to short work (and to
/// the handlers' I/O) the moment it arrives, as the express lane promises. At nice 10 instead,
/// a woken express worker still waited for the running heavy worker's time slice: a tiny
/// request's p99 under 8 heavy clients was 3.3-3.6 ms at nice 10 and 0.31-0.33 ms idle, on
/// this project's 2-core machine (see `docs/scheduling.md`). The price: on a machine whose
/// cores other processes keep busy, idle workers get almost no CPU; give `nice=10` there.
pub const DEFAULT_REGULAR_PRIORITY: WorkerPriority = WorkerPriority::Idle;

/// Settings of the subprocess strategy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubprocessConfig {
    /// Worker processes; `None` means one per core.
    pub workers: Option<usize>,
    /// Per-job deadline; a worker that passes it is killed and replaced.
    pub timeout: Option<Duration>,
    /// Replace a worker after it has run this many tasks.
    pub recycle_after: Option<u64>,
    /// How long a caller polls for the reply before blocking; `None` uses the pool's default.
    pub spin: Option<Duration>,
    /// Extra workers that take only work predicted short; `None` uses the pool's default (1).
    pub express: Option<usize>,
    /// CPU priority of the regular workers; `None`: idle while there are express workers (so
    /// that short work preempts heavy work on the CPU too), unchanged without them.
    pub nice: Option<WorkerPriority>,
    /// Memory limit of each worker in bytes (its data segment: heap and private mappings);
    /// `None`: no limit. A task that allocates past it fails its job, and the worker is
    /// replaced.
    pub memory: Option<u64>,
    /// The largest argument or result of a job in bytes, encoded; `None`: the pool's default
    /// ([`DEFAULT_MAX_PAYLOAD`], 1 GiB).
    pub max_payload: Option<u64>,
    /// How large byte strings travel; `None`: [`CopyMode::Direct`], the default.
    pub copy: Option<CopyMode>,
    /// Order and inlining of the work.
    pub scheduling: Scheduling,
}

impl SubprocessConfig {
    /// Sets the option `key` of the `subprocess` form to `value`; `Ok(false)` if the form has
    /// no such option.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "timeout" => self.timeout = Some(parse_timeout(value)?),
            "recycle" => self.recycle_after = Some(parse_count(value, "recycle")? as u64),
            "spin" => self.spin = Some(parse_duration(value)?),
            "express" => self.express = Some(parse_express(value)?),
            "nice" => self.nice = Some(WorkerPriority::parse(value)?),
            "memory" => self.memory = Some(parse_memory(value)?),
            "max_payload" => self.max_payload = Some(parse_max_payload(value)?),
            "copy" => self.copy = Some(CopyMode::parse(value)?),
            _ => return self.scheduling.set(key, value),
        }
        Ok(true)
    }

    /// Writes the `subprocess` form with the options given, in a fixed order, so that the text
    /// parses back to the same value: what [`SubprocessPool`](super::SubprocessPool)'s
    /// `describe` returns and what [`ExecutorConfig`](crate::ExecutorConfig) writes for it.
    pub(crate) fn write_spec(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("subprocess")?;
        if let Some(workers) = self.workers {
            write!(f, ":{workers}")?;
        }
        if let Some(timeout) = self.timeout {
            f.write_str(",timeout=")?;
            write_duration(f, timeout)?;
        }
        if let Some(recycle) = self.recycle_after {
            write!(f, ",recycle={recycle}")?;
        }
        if let Some(spin) = self.spin {
            f.write_str(",spin=")?;
            write_duration(f, spin)?;
        }
        if let Some(express) = self.express {
            write!(f, ",express={express}")?;
        }
        if let Some(nice) = self.nice {
            write!(f, ",nice={nice}")?;
        }
        if let Some(memory) = self.memory {
            f.write_str(",memory=")?;
            write_size(f, memory)?;
        }
        if let Some(max) = self.max_payload {
            f.write_str(",max_payload=")?;
            write_size(f, max)?;
        }
        if let Some(copy) = self.copy {
            write!(f, ",copy={copy}")?;
        }
        self.scheduling.write(f)
    }
}

/// A worker memory limit: a size, and at least [`MIN_MEMORY`].
fn parse_memory(text: &str) -> Result<u64, String> {
    let min = MIN_MEMORY;
    match parse_size(text).map_err(|why| format!("memory {why}"))? {
        bytes if bytes < min => Err(format!(
            "memory `{text}` is below {}MiB, too little for a worker to run; give at least \
             {}MiB, like 512MiB",
            min >> 20,
            min >> 20
        )),
        bytes => Ok(bytes),
    }
}

/// A payload limit: a size of at least [`MIN_MAX_PAYLOAD`].
fn parse_max_payload(text: &str) -> Result<u64, String> {
    let min = MIN_MAX_PAYLOAD;
    match parse_size(text).map_err(|why| format!("max_payload {why}"))? {
        bytes if bytes < min => Err(format!(
            "max_payload `{text}` is below {}, which would fail almost every job; give a size \
             like 1GiB",
            size_text(min)
        )),
        bytes => Ok(bytes),
    }
}

/// How a subprocess pool moves large byte strings (`copy=direct|shared`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CopyMode {
    /// The parent copies each byte string of at least 256 KiB straight into the worker's
    /// memory or out of it: one copy each way. Where the kernel does not allow it, a worker
    /// uses the shared regions instead. The default.
    #[default]
    Direct,
    /// Through the shared-memory regions only: two copies each way, no message exchange per
    /// byte string, and no access of the parent to its workers' memory.
    Shared,
}

impl CopyMode {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text {
            "direct" => Ok(CopyMode::Direct),
            "shared" => Ok(CopyMode::Shared),
            _ => Err(format!("`copy` takes `direct` or `shared`, not `{text}`")),
        }
    }
}

impl fmt::Display for CopyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CopyMode::Direct => "direct",
            CopyMode::Shared => "shared",
        })
    }
}
