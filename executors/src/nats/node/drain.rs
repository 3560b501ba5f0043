//! How a node stops: on SIGTERM (or SIGINT) it takes no new job, turns away the jobs already
//! on their way to it, and waits for the jobs in flight, for at most its drain bound.
//!
//! The drain bound is the job deadline of the node's `YTHREAD_WORKER` form (`timeout=`, 30 s
//! by default): a caller with the same form gives up on a job at that deadline, so a result
//! later than that has nobody to read it. A node whose jobs outlast the bound (a runaway task,
//! a job that waits on something that never comes) exits anyway, with status
//! [`EXIT_ABANDONED`], and says how many it left; a second signal ends it at once the same
//! way. Every job runs off the node's I/O thread, so the drain's own loop always runs; a
//! watchdog thread still ends the process shortly after the bound should anything keep that
//! loop from finishing, so the bound holds whatever the jobs do.
//!
//! Trade-off: an abandoned job's task stops mid-way with the process, as it would on SIGKILL;
//! tasks that must not be cut off need a node bound longer than they run.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The exit status of a node that stopped with jobs still running, at its drain bound or on a
/// second signal.
pub const EXIT_ABANDONED: i32 = 96;

/// How long after the drain bound the watchdog ends a node whose drain did not finish.
const WATCHDOG_GRACE: Duration = Duration::from_secs(1);

/// SIGTERM and SIGINT, either of which stops a node.
pub(crate) struct StopSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl StopSignals {
    /// Listens for both, from now on.
    pub(crate) fn listen() -> std::io::Result<Self> {
        Ok(StopSignals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT.
    pub(crate) async fn next(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// Ends the process with [`EXIT_ABANDONED`] if it is still running [`WATCHDOG_GRACE`] after
/// `bound`: the backstop for a drain that cannot finish.
pub(crate) fn arm_watchdog(node: &str, bound: Duration) {
    let name = node.to_owned();
    let started = std::thread::Builder::new()
        .name("ythread-node-watchdog".to_owned())
        .spawn(move || {
            std::thread::sleep(bound + WATCHDOG_GRACE);
            eprintln!(
                "ythread node {name}: the drain did not finish within its bound of {bound:?}; \
                 exiting without the jobs in flight"
            );
            std::process::exit(EXIT_ABANDONED);
        });
    if let Err(e) = started {
        eprintln!(
            "ythread node {node}: no watchdog for the drain ({e}); the drain's own bound still \
             holds"
        );
    }
}
