//! [`SubprocessPool`]: the strategy itself, a job's way through it (a turn in the waiting
//! line, a lease on a worker, the round trip, the worker given back), and [`PoolStatus`].

use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use ythread::{Cancellation, CpuApply, Error as WorkError, Metrics, TaskRegistry, Work};

use super::dispatch::Dispatch;
use super::events::EVENTS;
use super::process::{After, JobLimits, WorkerProcess};
use super::supervisor::Request;
use crate::portable::portable_task;
use crate::schedule::{Lane, Scheduler};
use crate::subprocess::settings::{DEFAULT_EXPRESS, SubprocessConfig};

/// How many workers a job is offered to when each turns out to be gone before it could take
/// the job (it died idle). The task never ran in any of them; after this many the job fails
/// with the last worker's death, rather than waiting for ever on a pool whose workers die.
const MAX_DELIVERIES: u32 = 4;

/// The subprocess strategy. See the [module docs](crate::subprocess).
///
/// Dropping the pool (the last [`Executor`](ythread::Executor) handle holding it) closes every
/// worker's job channel, waits up to the shutdown grace period for them to exit, kills the
/// stragglers and reaps them all before returning.
pub struct SubprocessPool {
    dispatch: Arc<Dispatch<WorkerProcess>>,
    requests: mpsc::Sender<Request>,
    supervisor: Option<thread::JoinHandle<()>>,
    registry: TaskRegistry,
    limits: JobLimits,
    recycle_after: Option<u64>,
    config: SubprocessConfig,
    scheduler: Scheduler,
}

impl SubprocessPool {
    pub(super) fn assemble(
        dispatch: Arc<Dispatch<WorkerProcess>>,
        requests: mpsc::Sender<Request>,
        supervisor: thread::JoinHandle<()>,
        registry: TaskRegistry,
        limits: JobLimits,
        config: SubprocessConfig,
        scheduler: Scheduler,
    ) -> Self {
        SubprocessPool {
            dispatch,
            requests,
            supervisor: Some(supervisor),
            registry,
            limits,
            recycle_after: config.recycle_after,
            config,
            scheduler,
        }
    }

    /// How many workers the pool keeps running for any work, besides its express workers.
    pub fn workers(&self) -> usize {
        self.config.workers.unwrap_or(1)
    }

    /// How many express workers (for work predicted short only) the pool keeps running.
    pub fn express_workers(&self) -> usize {
        self.config.express.unwrap_or(DEFAULT_EXPRESS)
    }

    /// The process ids of the live workers, express ones included; see [`PoolStatus::pids`].
    pub fn pids(&self) -> Vec<u32> {
        self.dispatch.members()
    }

    /// How many workers are waiting for a job right now.
    pub fn idle_workers(&self) -> usize {
        self.dispatch.idle()
    }

    /// A live view of the workers that stays usable after the pool is handed to an
    /// [`Executor`](ythread::Executor) (or dropped).
    pub fn status(&self) -> PoolStatus {
        PoolStatus {
            dispatch: Arc::clone(&self.dispatch),
        }
    }

    /// Hands the worker back to its lane after a job: to the next caller, or to the
    /// supervisor if it is gone or due for recycling.
    fn give_back(&self, worker: WorkerProcess, lane: Lane, after: After) {
        let recycle = self
            .recycle_after
            .is_some_and(|quota| worker.tasks_run() >= quota);
        match after {
            After::Reusable if !recycle => self.dispatch.checkin(worker, lane),
            After::Reusable => {
                self.dispatch.remove(worker.pid());
                let _ = self.requests.send(Request::Recycle(Box::new(worker)));
            }
            After::Lost | After::Undelivered(_) => self.lose(worker),
        }
    }

    /// Drops (and so reaps) a worker that cannot be used again, and asks for a replacement.
    fn lose(&self, worker: WorkerProcess) {
        let pid = worker.pid();
        drop(worker);
        self.dispatch.remove(pid);
        let _ = self.requests.send(Request::Replace { pid });
    }
}

/// A live view of a pool's workers, for monitoring and tests. Cheap to clone; it keeps no
/// worker alive, and once the pool is shut down it reports none.
#[derive(Clone)]
pub struct PoolStatus {
    dispatch: Arc<Dispatch<WorkerProcess>>,
}

impl PoolStatus {
    /// The process ids of the live workers, idle or busy. A worker that died or was recycled
    /// leaves at once; its replacement joins when its handshake passes.
    pub fn pids(&self) -> Vec<u32> {
        self.dispatch.members()
    }

    /// How many workers are waiting for a job right now.
    pub fn idle_workers(&self) -> usize {
        self.dispatch.idle()
    }
}

impl std::fmt::Debug for PoolStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolStatus")
            .field("pids", &self.pids())
            .field("idle_workers", &self.idle_workers())
            .finish()
    }
}

/// A worker checked out for one job. If the job unwinds (a panic in a result's `Deserialize`,
/// say), the worker's state is unknown: it is killed, reaped and replaced.
struct Lease<'a> {
    pool: &'a SubprocessPool,
    worker: Option<WorkerProcess>,
    lane: Lane,
}

impl Lease<'_> {
    /// Runs the job; returns whether the worker can be reused, and how long the task ran in
    /// it if it answered with a result.
    fn run(&mut self, work: &mut dyn Work, task: &str) -> (After, Option<Duration>) {
        match self.worker.as_mut() {
            Some(worker) => (worker.run(work, task, self.pool.limits), worker.last_ran()),
            None => (After::Lost, None),
        }
    }

    /// [`Lease::run`], with the worker killed if the handler is cancelled meanwhile: the job
    /// then ends `Cancelled` and the worker is replaced.
    fn run_cancellable(&mut self, work: &mut dyn Work, task: &str) -> (After, Option<Duration>) {
        let Some(cancellation) = Cancellation::current() else {
            return self.run(work, task);
        };
        if cancellation.is_cancelled() {
            work.fail(WorkError::cancelled());
            return (After::Reusable, None);
        }
        let Some(watch) = self.worker.as_ref().map(WorkerProcess::watch) else {
            return (After::Lost, None);
        };
        // The watch kills only while the job runs: the worker disarms it before it can be
        // reaped or take another job, so a late cancel never reaches someone else's job. A
        // cancel before the job starts keeps it from starting.
        let interrupt = Arc::clone(&watch);
        let guard = cancellation.on_cancel(move || {
            interrupt.interrupt();
        });
        let ran = self.run(work, task);
        drop(guard);
        watch.forget_cancel();
        if cancellation.is_cancelled() && matches!(ran.0, After::Lost | After::Undelivered(_)) {
            tracing::info!(
                target: EVENTS,
                pid = self.worker.as_ref().map(WorkerProcess::pid),
                task,
                "subprocess job cancelled; its worker was killed"
            );
            work.fail(WorkError::cancelled());
            return (After::Lost, None);
        }
        ran
    }

    /// Gives up the worker, which is gone, and asks for a replacement.
    fn lose_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.pool.lose(worker);
        }
    }

    fn give_back(mut self, after: After) {
        if let Some(worker) = self.worker.take() {
            self.pool.give_back(worker, self.lane, after);
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.pool.lose(worker);
        }
    }
}

impl CpuApply for SubprocessPool {
    /// Runs `work` in an idle worker of a lane it may use, waiting in line if all are busy.
    ///
    /// # Panics
    /// Never for a failure of the work or its worker: those are stored in `work` as errors
    /// (`NotPortable`, `UnknownTask`, `Panicked`, `WorkerDied`, `TimedOut`, `Codec`,
    /// `Unavailable`).
    fn apply(&self, work: &mut dyn Work) {
        let Some(task) = portable_task(work, &self.registry, "subprocess", "this subprocess pool")
        else {
            return;
        };
        let plan = self.scheduler.plan(work);
        if plan.inline {
            return self.scheduler.run_inline(work);
        }
        let (worker, lane, turn) = match self
            .scheduler
            .wait_turn(work, plan, |ticket| self.dispatch.checkout(ticket))
        {
            Ok(granted) => granted,
            Err(error) => {
                if error.is_cancelled() {
                    tracing::info!(
                        target: EVENTS,
                        task,
                        "subprocess job cancelled while it waited for a worker; it never ran"
                    );
                }
                return work.fail(error);
            }
        };
        let mut lease = Lease {
            pool: self,
            worker: Some(worker),
            lane,
        };
        let mut deliveries = 1;
        let (after, ran) = loop {
            let (after, ran) = lease.run_cancellable(work, task);
            let After::Undelivered(error) = after else {
                break (after, ran);
            };
            // The worker was gone before the job reached it (it died idle and the death
            // watch had not caught up): the task never ran, so it is safe to send again.
            lease.lose_worker();
            if deliveries == MAX_DELIVERIES {
                work.fail(error);
                break (After::Lost, None);
            }
            deliveries += 1;
            match self.dispatch.checkout(plan.ticket()) {
                Ok((worker, lane)) => {
                    lease.worker = Some(worker);
                    lease.lane = lane;
                }
                Err(error) => {
                    work.fail(error);
                    break (After::Lost, None);
                }
            }
        };
        lease.give_back(after);
        turn.finish(ran);
    }

    fn describe(&self) -> String {
        std::fmt::from_fn(|f| self.config.write_spec(f)).to_string()
    }

    fn metrics(&self) -> Metrics {
        self.scheduler
            .metrics(self.describe(), self.dispatch.waiting())
    }
}

impl Drop for SubprocessPool {
    fn drop(&mut self) {
        let _ = self.requests.send(Request::Shutdown);
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
    }
}

impl std::fmt::Debug for SubprocessPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubprocessPool")
            .field("config", &self.describe())
            .field("pids", &self.pids())
            .finish()
    }
}
