//! What this process is: the registry given to [`init`](crate::init()), and whether the process
//! serves as a subprocess worker.
//!
//! A leaf below every strategy, so that a pool can ask "did `main` call `init`?" and "which
//! registry did it give?" without importing the code that serves as a worker or a node; both
//! sides of the subprocess strategy and the configuration read this state, and only `init` and
//! the worker's serve loop write it.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use ythread::TaskRegistry;

/// The registry given to `init` in this process, the default for pools built here.
static REGISTRY: Mutex<Option<TaskRegistry>> = Mutex::new(None);

/// Whether this process is serving as a worker (set before the first job).
static SERVING: AtomicBool = AtomicBool::new(false);

/// Records the registry given to `init`.
pub(crate) fn set_registry(registry: TaskRegistry) {
    *REGISTRY.lock() = Some(registry);
}

/// The registry given to `init` in this process, if any.
pub(crate) fn registry() -> Option<TaskRegistry> {
    REGISTRY.lock().clone()
}

/// Whether `init` ran in this process.
pub(crate) fn init_called() -> bool {
    REGISTRY.lock().is_some()
}

/// Marks this process as a serving worker, before its first job.
pub(crate) fn start_serving() {
    SERVING.store(true, Ordering::Relaxed);
}

/// Whether this process is serving as a worker.
pub(crate) fn serving() -> bool {
    SERVING.load(Ordering::Relaxed)
}
