//! `subprocess[:N]`: work runs in a pool of N worker processes, each fed through its own socket.
//!
//! Trade-off: isolation, at the price of a round trip. A task that crashes (abort, segfault,
//! out of memory), leaks, calls a library that is not thread-safe, or runs away stays in its
//! worker: only that job fails, with `WorkerDied` or `TimedOut`, and the pool replaces the
//! worker. A round trip costs about what a raw Unix-socket ping-pong between two processes
//! costs (several microseconds: two hand-offs between processes), plus about 0.2 ms per MiB of
//! arguments and result: byte strings of 256 KiB and more are copied once each way, straight
//! between the processes (`copy=direct`), and the rest of a payload above 64 KiB travels
//! through per-worker shared memory (see `docs/subprocess.md`). So it pays for work of a
//! millisecond or more, or for work that must not take the server down. Optional limits:
//! `memory=` caps each worker's heap, and `max_payload=` (1 GiB by default) bounds arguments
//! and results.
//!
//! Scheduling: callers wait in the shared [waiting line](crate::schedule), shortest predicted
//! work first, with aging. The pool keeps `express` extra workers (default 1) that take only
//! work predicted under [`EXPRESS_BELOW`](crate::schedule::EXPRESS_BELOW), so short work never
//! waits behind heavy work and still runs out of process; express workers crash, time out and
//! recycle like the others, and the regular workers run at idle CPU priority
//! ([`DEFAULT_REGULAR_PRIORITY`]) so that short work preempts heavy work on the CPU as well as
//! in the line. Workers report how long each task ran, which teaches the cost
//! model. `inline_below` is off by default: isolation is why this strategy was chosen, and
//! only the program knows which tasks are safe to run in its own process.
//!
//! What must be serialisable: the task's arguments and result (serde, postcard on the wire).
//! Tasks are named (`ythread::task!`) and looked up in the worker's [`TaskRegistry`]; closures
//! cannot leave the process and fail with `NotPortable`. A panic in a task is caught in the
//! worker and comes back as `Panicked` with its message and location.
//!
//! Isolation holds against a compromised worker too (code that took over a worker through a
//! decoder exploit, say): the parent reads worker bytes only through bounded, checked paths,
//! a reply that breaks the protocol kills and replaces its worker, and replies are numbered
//! per job. What such a worker can still do is in `docs/subprocess.md`, "Threat model".
//!
//! Workers are this program started again: `main` must call [`init`] first. Files:
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | the pool: dispatching a job, giving the worker back |
//! | `builder.rs` | [`SubprocessBuilder`]: settings, checks, start-up |
//! | `marker.rs` | the worker's start-up settings in its environment |
//! | `protocol.rs` | handshake, job and reply bodies |
//! | `wire_error.rs` | a worker's failure as it crosses to the parent |
//! | `payload.rs` | arguments and results inline, in shared memory or apart, `max_payload` |
//! | `shm.rs` | the workers' shared-memory regions (memfd) |
//! | `direct.rs` | direct copies of large byte strings between the parent and a worker |
//! | `answer.rs` | the worker's side of a job, and of direct copies |
//! | `deaths.rs` | noticing workers that die while idle (pidfds) |
//! | `socket.rs` | the worker's socket, read without trusting the worker |
//! | `frame.rs` | length-prefixed, numbered frames in packets |
//! | `worker.rs` | [`init`] and the worker's serve loop; dying with the parent |
//! | `launch.rs` | starting a worker and checking its handshake, with a timeout |
//! | `dispatch.rs` | the pool's members in their lanes, over the shared waiting line |
//! | `process.rs` | one worker as the parent sees it: a job round trip, reaping |
//! | `receive.rs` | spin-then-block receive, ended by the worker's death |
//! | `output.rs` | a worker's stdout and stderr, forwarded; what its last line said |
//! | `deadline.rs` | per-job deadlines |
//! | `supervisor.rs` | the thread that starts, replaces, times and stops workers |

mod answer;
mod builder;
mod deadline;
mod deaths;
mod direct;
pub use direct::CopyMode;
mod dispatch;
mod frame;
mod launch;
mod marker;
mod output;
mod payload;
mod process;
pub(crate) mod protocol;
mod receive;
mod shm;
mod socket;
mod supervisor;
mod wire_error;
mod worker;

use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use ythread::{Cancellation, CpuApply, Error as WorkError, Metrics, TaskRegistry, Work};

pub use self::builder::SubprocessBuilder;
use self::dispatch::Dispatch;
use self::process::{After, JobLimits, WorkerProcess};
use self::supervisor::Request;
#[cfg(feature = "nats")]
pub(crate) use self::worker::registry;
pub use self::worker::{WORKER_ENV, init, init_strict};
use crate::WorkerPriority;
use crate::config::{ExecutorConfig, SubprocessConfig};
use crate::portable::portable_task;
use crate::schedule::{Lane, Scheduler};

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

/// How many workers a job is offered to when each turns out to be gone before it could take
/// the job (it died idle). The task never ran in any of them; after this many the job fails
/// with the last worker's death, rather than waiting for ever on a pool whose workers die.
const MAX_DELIVERIES: u32 = 4;

/// The largest argument or result a job may carry, unless configured: 1 GiB, encoded.
pub const DEFAULT_MAX_PAYLOAD: u64 = 1 << 30;

/// The smallest `max_payload` a pool takes: 1 KiB.
pub const MIN_MAX_PAYLOAD: u64 = 1 << 10;

/// The smallest memory limit a worker takes: below it, the worker's own start-up (the program's
/// statics, its channels and buffers) could fail before any task runs.
pub const MIN_MEMORY: u64 = 16 << 20;

/// The most express workers a pool takes: more would be a pool of their own.
pub const MAX_EXPRESS: usize = 64;

/// The CPU priority of the regular workers while there are express workers, unless
/// configured: the idle scheduling class, so heavy work yields the core to short work (and to
/// the handlers' I/O) the moment it arrives, as the express lane promises. At nice 10 instead,
/// a woken express worker still waited for the running heavy worker's time slice: a tiny
/// request's p99 under 8 heavy clients was 3.3-3.6 ms at nice 10 and 0.31-0.33 ms idle, on
/// this project's 2-core machine (see `docs/scheduling.md`). The price: on a machine whose
/// cores other processes keep busy, idle workers get almost no CPU; give `nice=10` there.
pub const DEFAULT_REGULAR_PRIORITY: WorkerPriority = WorkerPriority::Idle;

/// The subprocess strategy. See the [module docs](self).
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
    fn assemble(
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

    /// A builder with the defaults.
    pub fn builder() -> SubprocessBuilder {
        SubprocessBuilder::default()
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
                target: supervisor::EVENTS,
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
                        target: supervisor::EVENTS,
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
        ExecutorConfig::Subprocess(self.config.clone()).to_string()
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
