//! Mistakes that show at once: what [`init`](crate::init) checks and turns on in the program's
//! own process (not in a worker).
//!
//! - Work a worker process could not run (a task missing from the registry given to `init`,
//!   a closure yielded with `y.run`) is reported the first time it is yielded, under every
//!   strategy, through `tracing` (target [`TARGET`]); with `YTHREAD_STRICT=1`, or
//!   [`init_strict`](crate::init_strict), it fails at once instead. The check itself is
//!   `ythread::portable`: it runs before any strategy sees the work, so `inline` reports
//!   what only `subprocess` would have failed.
//! - `init` called while other threads run (a `#[tokio::main]` runtime, say): everything
//!   `main` does before `init` also runs in every worker, so each worker would start them too.
//!   That is said at once, through `tracing` when a subscriber listens and on stderr when none
//!   does: `init` comes first in `main`, usually before any subscriber is installed.

use ythread::TaskRegistry;
use ythread::portable::{self, Mode, Unportable};

/// The `tracing` target of the warnings about mistakes.
pub const TARGET: &str = "ythread::mistakes";

/// The environment variable that turns strict mode on: `YTHREAD_STRICT=1`.
pub const STRICT_ENV: &str = "YTHREAD_STRICT";

/// Turns the check on with `registry`, in the mode `strict` or the environment asks for, and
/// warns if other threads already run.
pub(crate) fn check_from_init(registry: &TaskRegistry, strict: bool) {
    let strict = strict || strict_from_env();
    let mode = if strict { Mode::Strict } else { Mode::Warn };
    portable::require(registry, mode, report);
    if let Some(threads) = threads_running().filter(|&threads| threads > 1) {
        loudly(&format!(
            "ythread_executors::init was called while this process runs {threads} threads; \
             everything main does before init also runs in every worker process, so each \
             worker starts those threads too (a tokio runtime, say) and keeps them idle; call \
             ythread_executors::init first in main, before #[tokio::main] starts a runtime: use \
             a plain fn main that calls init, then builds the runtime"
        ));
    }
}

fn strict_from_env() -> bool {
    let Some(value) = std::env::var_os(STRICT_ENV) else {
        return false;
    };
    match value.to_string_lossy().trim() {
        "1" | "true" | "yes" | "on" => true,
        "" | "0" | "false" | "no" | "off" => false,
        other => {
            loudly(&format!(
                "{STRICT_ENV}={other:?} is not understood, so strict mode is off; set \
                 {STRICT_ENV}=1 to turn it on, or 0 to leave it off"
            ));
            false
        }
    }
}

/// How work a worker process could not run is reported: a `tracing` warning that names it
/// and the fix.
fn report(found: &Unportable) {
    match found {
        Unportable::Unregistered { task } => {
            tracing::warn!(target: TARGET, task, "{found}");
        }
        Unportable::Closure { closure } => {
            tracing::warn!(target: TARGET, closure, "{found}");
        }
        _ => tracing::warn!(target: TARGET, "{found}"),
    }
}

/// How many threads this process runs, from `/proc/self/task`.
fn threads_running() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

/// A warning that must be seen: through `tracing` if a subscriber takes it, else on stderr.
fn loudly(message: &str) {
    if tracing::enabled!(target: TARGET, tracing::Level::WARN) {
        tracing::warn!(target: TARGET, "{message}");
    } else {
        eprintln!("ythread: warning: {message}");
    }
}
