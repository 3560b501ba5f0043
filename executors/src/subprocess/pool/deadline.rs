//! Per-job deadlines: the supervisor kills a worker whose job runs past its deadline; and
//! cancellation, which kills a worker whose handler was cancelled.
//!
//! A runaway task can only be stopped by killing its process, so a blocked receive needs no
//! timeout of its own. So the caller arms its worker's [`Watch`] before
//! sending and disarms it after the reply (or end-of-file); the supervisor thread checks the
//! armed watches when the earliest deadline is due and SIGKILLs an overdue worker. The
//! caller's blocked receive then sees end-of-file, finds the watch fired, and reports
//! `TimedOut` instead of `WorkerDied`.
//!
//! The supervisor needs no wake-up per job: every pool job has the same time limit, so a job
//! armed after the supervisor last looked is due no sooner than that look plus the limit, and
//! the supervisor never sleeps longer than that.
//!
//! A fired kill targets a live (or zombie) process: the caller reaps its worker only after
//! disarming, and disarming waits for the watch's lock, so the pid cannot be reused in between.
//!
//! Every deadline is computed with [`after`]: a limit too long to add to the clock
//! (`Duration::MAX`, say) means no limit, never a panic on the supervisor thread.

use std::time::{Duration, Instant};

/// The deadline `limit` after `now`, or `None` (no deadline) if the limit is too long to
/// represent: such a limit is never reached.
pub(super) fn after(now: Instant, limit: Duration) -> Option<Instant> {
    now.checked_add(limit)
}

/// A stand-in for "no limit" where a `Duration` is needed: longer than any process runs,
/// short enough to add to the clock.
pub(super) const NO_LIMIT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

use parking_lot::Mutex;

/// The deadline of the job a worker is running, shared by its caller and the supervisor.
pub(super) struct Watch {
    pid: u32,
    state: Mutex<Armed>,
}

/// | `running` | `deadline` | `fired` | meaning |
/// |---|---|---|---|
/// | `false` | `None` | `false` | idle |
/// | `true` | `None` | `false` | running without a limit |
/// | `true` | `Some(t)` | `false` | running, to be killed at `t` |
/// | `true` | any | `Some(_)` | killed (deadline or cancel); the caller has not noticed yet |
#[derive(Default)]
struct Armed {
    running: bool,
    deadline: Option<Instant>,
    fired: Option<Fired>,
    /// A cancel came while no job ran (between the caller's check and its job's start): the
    /// job must not start.
    cancel_pending: bool,
}

/// Why a watch killed its worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fired {
    /// The job passed its deadline.
    Deadline,
    /// The job's handler was cancelled.
    Cancel,
}

impl Watch {
    pub(super) fn new(pid: u32) -> Self {
        Watch {
            pid,
            state: Mutex::new(Armed::default()),
        }
    }

    /// The worker this watch guards.
    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// Caller: the job starts now and must end by `deadline` (`None`: no limit). Returns
    /// false, arming nothing, if the job's handler was cancelled before it could start.
    pub(super) fn arm(&self, deadline: Option<Instant>) -> bool {
        let mut state = self.state.lock();
        if state.cancel_pending {
            return false;
        }
        *state = Armed {
            running: true,
            deadline,
            fired: None,
            cancel_pending: false,
        };
        true
    }

    /// Caller: its handler can no longer be cancelled for this worker's job (its cancel
    /// registration is gone), so a cancel that came late must not stop the next caller's job.
    pub(super) fn forget_cancel(&self) {
        self.state.lock().cancel_pending = false;
    }

    /// Caller: the job is over. Returns why the worker was killed for it, if it was.
    pub(super) fn disarm(&self) -> Option<Fired> {
        std::mem::take(&mut *self.state.lock()).fired
    }

    /// Anyone: kills the worker if it is running a job (its handler was cancelled); if the
    /// job has not started yet, it will not start. Returns whether it killed.
    pub(super) fn interrupt(&self) -> bool {
        let mut state = self.state.lock();
        if state.running && state.fired.is_none() {
            kill(self.pid);
            state.fired = Some(Fired::Cancel);
            return true;
        }
        if !state.running {
            state.cancel_pending = true;
        }
        false
    }

    /// Supervisor: kills the worker if its job is overdue at `now`. Returns the deadline still
    /// pending, if any, so the supervisor knows when to look again.
    pub(super) fn enforce(&self, now: Instant) -> Option<Instant> {
        let mut state = self.state.lock();
        match state.deadline {
            Some(deadline) if state.fired.is_none() && deadline <= now => {
                kill(self.pid);
                state.fired = Some(Fired::Deadline);
                None
            }
            Some(deadline) if state.fired.is_none() => Some(deadline),
            _ => None,
        }
    }
}

/// Sends SIGKILL to worker `pid` and to its process group (the worker leads one of its own),
/// so that processes it forked die with it. Failure (the process already gone) needs no
/// handling: the caller sees the worker's death either way.
pub(super) fn kill(pid: u32) {
    // The pid is a child of this process that has not been reaped yet (see the module docs),
    // so neither it nor the group it leads (whose id is its pid, set at launch) can name an
    // unrelated process.
    crate::sys::kill_group_and_leader(pid);
}
