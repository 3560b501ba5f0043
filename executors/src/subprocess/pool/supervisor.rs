//! The supervisor: the one long-lived thread that starts, replaces, times and stops workers.
//!
//! Every worker is started from this thread, never from a caller's. On Linux the parent-death
//! signal of a child fires when the *thread* that forked it exits, so a worker started from a
//! short-lived handler thread would be killed when that handler returns.
//!
//! The loop sleeps on its request channel until the next thing is due, then:
//!
//! | phase | what |
//! |---|---|
//! | deadlines | SIGKILL workers whose job is overdue (see `deadline.rs`) |
//! | launches | start missing workers; admit those whose handshake passed; retry failures with backoff |
//! | retiring | reap recycled workers that have exited; kill those past the grace period |
//! | requests | `Replace` (a caller lost its worker), `Died` (a watched worker exited), `Recycle`, `Wake`, `Shutdown` |
//!
//! A worker that dies while idle is reported by the pool's death watch (`deaths.rs`): the
//! supervisor takes it out of the idle set, reaps it and starts a replacement at once.
//!
//! During start-up a failed launch fails the pool's `build`; later it is retried with backoff
//! (50 ms doubling to 5 s) while callers keep using the remaining workers.
//!
//! A panic on this thread (a bug) must not strand the callers: they wait for workers only the
//! supervisor can start. So the loop runs under `catch_unwind`; on a panic the pool is closed
//! with an error that says what happened (every waiting and later caller gets `Unavailable`),
//! a `build` still waiting is told, and the workers are killed and reaped.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::deadline::{self, NO_LIMIT, Watch};
use super::deaths::DeathWatch;
use super::dispatch::Dispatch;
use super::events::EVENTS;
use super::launch::{self, Launch, LaunchSettings};
use super::process::{self, WorkerProcess};
use crate::Error;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often exiting workers are checked on.
const RETIRE_POLL: Duration = Duration::from_millis(5);

/// What the pool and its helpers ask of the supervisor.
pub(super) enum Request {
    /// A caller lost worker `pid` (already reaped): start another.
    Replace { pid: u32 },
    /// This worker ran its quota of jobs: stop it and start another.
    Recycle(Box<WorkerProcess>),
    /// A handshake arrived: look at the launches.
    Wake,
    /// Worker `pid` exited (from the death watch); if it is idle, it died idle.
    Died { pid: u32 },
    /// Stop every worker and exit.
    Shutdown,
}

/// How the supervisor runs one pool.
pub(super) struct Settings {
    pub(super) workers: usize,
    pub(super) timeout: Option<Duration>,
    pub(super) grace: Duration,
    pub(super) launch: Arc<LaunchSettings>,
}

/// The supervisor's state; lives on its thread.
pub(super) struct Supervisor {
    settings: Settings,
    requests: mpsc::Receiver<Request>,
    /// Cloned into each launch's wake-up callback.
    wake: mpsc::Sender<Request>,
    dispatch: Arc<Dispatch<WorkerProcess>>,
    /// Told once whether the first `workers` came up.
    startup: Option<mpsc::Sender<Result<(), Error>>>,
    missing: usize,
    launching: Vec<Launch>,
    watches: Vec<Arc<Watch>>,
    /// Recycled workers on their way out, and when to kill them (`None`: never).
    retiring: Vec<(WorkerProcess, Option<Instant>)>,
    retry_at: Instant,
    backoff: Duration,
    /// `None` if the watch could not start: idle deaths are then found by the next job.
    deaths: Option<DeathWatch>,
}

impl Supervisor {
    pub(super) fn new(
        settings: Settings,
        dispatch: Arc<Dispatch<WorkerProcess>>,
        requests: mpsc::Receiver<Request>,
        wake: mpsc::Sender<Request>,
        startup: mpsc::Sender<Result<(), Error>>,
    ) -> Self {
        Supervisor {
            missing: settings.workers,
            settings,
            requests,
            wake,
            dispatch,
            startup: Some(startup),
            launching: Vec::new(),
            watches: Vec::new(),
            retiring: Vec::new(),
            retry_at: Instant::now(),
            backoff: FIRST_BACKOFF,
            deaths: None,
        }
    }

    /// The supervisor thread's body; returns after `Shutdown` with every worker reaped, or
    /// after a panic with the pool closed.
    pub(super) fn run(mut self) {
        let died = self.wake.clone();
        self.deaths = DeathWatch::start(move |pid| {
            let _ = died.send(Request::Died { pid });
        })
        .inspect_err(|e| {
            tracing::warn!(
                target: EVENTS,
                error = %e,
                "could not start the thread that watches for subprocess workers dying while \
                 idle; such deaths are found by the next job"
            );
        })
        .ok();
        let dispatch = Arc::clone(&self.dispatch);
        let Some(reason) = close_on_panic(&dispatch, || {
            self.supervise();
            self.shutdown();
        }) else {
            return;
        };
        // The state may be half-updated: release what it holds, each step contained.
        if let Some(startup) = self.startup.take() {
            let _ = startup.send(Err(Error::start(reason)));
        }
        let _ = panic::catch_unwind(AssertUnwindSafe(|| {
            self.launching.clear();
            let retiring = self.retiring.drain(..).map(|(worker, _)| worker);
            process::stop_all(retiring.collect(), Duration::ZERO);
        }));
    }

    /// The loop; returns on `Shutdown`, or when start-up failed.
    fn supervise(&mut self) {
        loop {
            let now = Instant::now();
            let mut due = self.enforce_deadlines(now);
            if let Err(error) = self.progress_launches(now)
                && let Some(startup) = self.startup.take()
            {
                let _ = startup.send(Err(error));
                break;
            }
            due = earliest(due, self.launching.iter().map(|l| l.next_check(now)).min());
            if self.missing > 0 {
                due = earliest(due, Some(self.retry_at));
            }
            self.progress_retiring(now);
            if !self.retiring.is_empty() {
                due = earliest(due, Some(now + RETIRE_POLL));
            }
            let request = match due {
                Some(due) => self
                    .requests
                    .recv_timeout(due.saturating_duration_since(Instant::now())),
                None => self
                    .requests
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
            };
            match request {
                Ok(Request::Replace { pid }) => {
                    tracing::info!(target: EVENTS, pid, "subprocess worker replaced: starting another");
                    self.forget(pid);
                }
                Ok(Request::Died { pid }) => self.bury_if_idle(pid),
                Ok(Request::Recycle(mut worker)) => {
                    tracing::info!(
                        target: EVENTS,
                        pid = worker.pid(),
                        tasks_run = worker.tasks_run(),
                        "subprocess worker recycled after its quota of tasks"
                    );
                    self.forget(worker.pid());
                    worker.close();
                    let kill_at = deadline::after(Instant::now(), self.settings.grace);
                    self.retiring.push((*worker, kill_at));
                }
                Ok(Request::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Request::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Kills overdue workers; returns when the next deadline could be due.
    fn enforce_deadlines(&self, now: Instant) -> Option<Instant> {
        let limit = self.settings.timeout?;
        // A job armed after `now` is due no sooner than `now + limit` (never, if that is too
        // far to represent).
        let mut next = deadline::after(now, limit);
        for watch in &self.watches {
            next = earliest(next, watch.enforce(now));
        }
        next
    }

    /// Starts missing workers and admits those whose handshake passed. During start-up the
    /// first failure is returned; afterwards failures are retried with backoff.
    fn progress_launches(&mut self, now: Instant) -> Result<(), Error> {
        while self.missing > 0 && now >= self.retry_at {
            let wake = self.wake.clone();
            match launch::start(&self.settings.launch, move || {
                let _ = wake.send(Request::Wake);
            }) {
                Ok(launch) => {
                    self.launching.push(launch);
                    self.missing -= 1;
                }
                Err(error) => return self.launch_failed(error, now),
            }
        }
        let mut i = 0;
        while i < self.launching.len() {
            match self.launching[i].poll(now) {
                None => i += 1,
                Some(outcome) => {
                    // Dropping a failed launch kills and reaps its process.
                    drop(self.launching.swap_remove(i));
                    match outcome {
                        Ok(worker) => self.admit(worker),
                        Err(error) => {
                            self.missing += 1;
                            self.launch_failed(error, now)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn admit(&mut self, worker: WorkerProcess) {
        tracing::info!(target: EVENTS, pid = worker.pid(), "subprocess worker started");
        if let Some(deaths) = &self.deaths {
            deaths.watch(worker.pid());
        }
        self.backoff = FIRST_BACKOFF;
        self.watches.push(worker.watch());
        self.dispatch.admit(worker.pid(), worker);
        if self.watches.len() == self.settings.workers
            && let Some(startup) = self.startup.take()
        {
            let _ = startup.send(Ok(()));
        }
    }

    fn launch_failed(&mut self, error: Error, now: Instant) -> Result<(), Error> {
        if self.startup.is_some() {
            return Err(error);
        }
        self.dispatch.starve(error.to_string());
        self.retry_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }

    /// Worker `pid` exited. If it is idle, nobody else will notice: take it out, reap it and
    /// start another. If it is busy, its caller reports the death and asks for the
    /// replacement; if it is retiring, `progress_retiring` reaps it.
    fn bury_if_idle(&mut self, pid: u32) {
        // Only one that has really exited: the report may come late, after a replacement
        // reused the pid (`try_reap` reaps the dead one, so `bury` below just reads its status).
        let dead = |worker: &mut WorkerProcess| worker.pid() == pid && worker.try_reap();
        let Some(worker) = self.dispatch.take_idle(dead) else {
            return;
        };
        let cause = worker.bury();
        tracing::warn!(target: EVENTS, pid, %cause, "subprocess worker died while idle");
        self.dispatch.remove(pid);
        tracing::info!(target: EVENTS, pid, "subprocess worker replaced: starting another");
        self.forget(pid);
    }

    /// A worker left the pool; one more is missing.
    fn forget(&mut self, pid: u32) {
        self.watches.retain(|watch| watch.pid() != pid);
        self.missing += 1;
    }

    fn progress_retiring(&mut self, now: Instant) {
        self.retiring.retain_mut(|(worker, kill_at)| {
            !worker.try_reap() && kill_at.is_none_or(|kill_at| now < kill_at)
        });
    }

    fn shutdown(&mut self) {
        let mut workers = self
            .dispatch
            .close("the subprocess pool is shut down; build a new executor to run more work");
        workers.extend(self.retiring.drain(..).map(|(worker, _)| worker));
        self.launching.clear();
        self.deaths = None;
        // A grace too long to add to the clock waits for as long as it takes.
        process::stop_all(workers, self.settings.grace.min(NO_LIMIT));
    }
}

/// Runs `supervise`; if it panics, closes `dispatch` with an error naming the panic (its idle
/// workers are dropped: killed and reaped) and returns that error's text.
fn close_on_panic<W: Send + 'static>(
    dispatch: &Dispatch<W>,
    supervise: impl FnOnce(),
) -> Option<String> {
    let payload = panic::catch_unwind(AssertUnwindSafe(supervise)).err()?;
    let reason = format!(
        "the subprocess pool's supervisor thread panicked ({}), so the pool takes no more \
         work; build a new executor, and please report the panic",
        ythread::payload_message(payload.as_ref())
    );
    // A payload whose destructor panics too is leaked rather than dropped.
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    drop(dispatch.close(&reason));
    Some(reason)
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{Lane, Ticket};

    const ANY: Ticket = Ticket {
        rank: 0,
        express: false,
    };

    #[test]
    fn a_panicking_supervisor_closes_the_pool_with_an_error_naming_the_panic() {
        let dispatch = Dispatch::<u32>::new(0, None);
        dispatch.admit(1, 1);
        let reason = close_on_panic(&dispatch, || panic!("a bug in the supervisor"))
            .expect("the panic was contained");
        assert!(reason.contains("a bug in the supervisor"), "{reason}");
        let error = dispatch
            .checkout(ANY)
            .expect_err("a closed pool takes no work");
        assert_eq!(error.kind(), ythread::ErrorKind::Unavailable, "{error}");
        assert!(
            error.to_string().contains("supervisor thread panicked"),
            "{error}"
        );
        assert!(dispatch.members().is_empty());
    }

    #[test]
    fn a_supervisor_that_returns_leaves_the_pool_open() {
        let dispatch = Dispatch::<u32>::new(0, None);
        dispatch.admit(1, 1);
        assert_eq!(close_on_panic(&dispatch, || {}), None);
        assert_eq!(dispatch.checkout(ANY).unwrap(), (1, Lane::Regular));
    }
}
