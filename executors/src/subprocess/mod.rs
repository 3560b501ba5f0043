//! `subprocess[:N]`: a pool of worker processes fed through ipc-channel. (STUB: the contract
//! only; the implementation is being written.)

use std::path::PathBuf;
use std::time::Duration;

use ythread::{CpuApply, Error as WorkError, TaskRegistry, Work};

use crate::Error;

/// Call first in `main`. In a worker process it serves tasks from `registry` and never
/// returns; in the parent it records `registry` for subprocess pools and returns at once.
pub fn init(registry: TaskRegistry) {
    let _ = registry;
}

/// The subprocess strategy.
pub struct SubprocessPool {
    _private: (),
}

/// Configures a [`SubprocessPool`].
#[derive(Debug, Default)]
pub struct SubprocessBuilder {
    workers: Option<usize>,
    timeout: Option<Duration>,
    recycle_after: Option<u64>,
    spin: Option<Duration>,
    registry: Option<TaskRegistry>,
    program: Option<PathBuf>,
}

impl SubprocessPool {
    /// A builder with the defaults.
    pub fn builder() -> SubprocessBuilder {
        SubprocessBuilder::default()
    }
}

impl SubprocessBuilder {
    /// Worker processes (default: one per core).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }
    /// Per-job deadline.
    pub fn timeout(mut self, d: Option<Duration>) -> Self {
        self.timeout = d;
        self
    }
    /// Replace a worker after this many tasks.
    pub fn recycle_after(mut self, n: Option<u64>) -> Self {
        self.recycle_after = n;
        self
    }
    /// How long a caller polls for a reply before blocking.
    pub fn spin(mut self, d: Duration) -> Self {
        self.spin = Some(d);
        self
    }
    /// The tasks workers serve (default: the registry given to [`init`]).
    pub fn registry(mut self, registry: TaskRegistry) -> Self {
        self.registry = Some(registry);
        self
    }
    /// The worker program (default: this program, `/proc/self/exe`).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }
    /// Starts the workers and completes their handshakes.
    pub fn build(self) -> Result<SubprocessPool, Error> {
        Err(Error::start(
            "the subprocess strategy is not implemented yet",
        ))
    }
}

impl CpuApply for SubprocessPool {
    fn apply(&self, work: &mut dyn Work) {
        work.fail(WorkError::unavailable(
            "the subprocess strategy is not implemented yet",
        ));
    }
    fn describe(&self) -> String {
        "subprocess".to_owned()
    }
}
