//! A worker process as the pool sees it: its channels, its child handle, one job at a time.
//!
//! [`WorkerProcess::run`] is the hot path: frame the job into a buffer the worker keeps (no
//! allocation after the first job), send it, wait for the reply, hand the encoded result to
//! the work descriptor. Any failure of the channel means the process is gone or going: it is
//! reaped right there, so the error can say how it ended (signal or exit status).
//!
//! Every process is reaped exactly once: on a lost job by [`WorkerProcess::run`], on a
//! graceful stop by [`stop_all`], and, as a last resort, by `Drop` (kill, then wait). Just
//! before it is reaped, its process group is killed: whatever the worker forked dies with it
//! (the leader's pid, and so the group's, cannot be reused while it is unreaped).
//!
//! The worker is not trusted (see `docs/subprocess.md`, "Threat model"): a reply that breaks
//! the protocol in any way is *garbled*, which fails the job with a `Codec` error saying the
//! worker misbehaved, and kills and replaces the worker.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ythread::{Error as WorkError, Termination, Work};

use super::deadline::{self, Fired, Watch};
use super::events::EVENTS;
use super::job::{ArgsToWorker, JobStart};
use super::output::Output;
use crate::subprocess::transport::direct;
use crate::subprocess::transport::frame::{self, FrameError, FrameReceiver};
use crate::subprocess::transport::payload::DIRECT_THRESHOLD;
use crate::subprocess::transport::payload::{PayloadWriter, Refusal};
use crate::subprocess::transport::protocol::{self, Regions};
use crate::subprocess::transport::socket::SocketError;
use crate::sys;
use crate::wire::{self, Args, Placement, Reply};

/// How long a worker that closed its end may take to finish exiting before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How long a killed worker may take to become reapable before a thread of its own waits for
/// it: a zombie that a tracer holds stays invisible to its parent's wait until the tracer lets
/// go, and no caller or supervisor thread may wait on that.
const REAP_BOUND: Duration = Duration::from_secs(5);

/// Frames above this size do not keep their buffer between jobs.
const KEPT_BUFFER: usize = 4 << 20;

/// What a job needs to know about the pool.
#[derive(Clone, Copy, Debug)]
pub(super) struct JobLimits {
    pub(super) timeout: Option<Duration>,
    /// The workers' memory limit in bytes, if any.
    pub(super) memory: Option<u64>,
    /// The largest argument or result in bytes.
    pub(super) max_payload: usize,
}

/// How a job's round trip over the channels went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Received {
    /// The worker answered; the outcome is stored in the work.
    Answered,
    /// The worker sent something that is not a reply; a codec error is stored in the work.
    Garbled,
    /// The worker sent a frame while it had no job: it misbehaves, and did not get the job.
    Unsolicited,
    /// The job could not be sent: the worker took none of it.
    NotSent,
    /// The worker died while it received the job.
    PartlySent,
    /// The worker closed its reply channel: it is gone or going.
    Hangup,
    /// The job was not sent: its arguments could not be (the work holds the error).
    Refused,
}

fn garbled(pid: u32, task: &str, what: impl std::fmt::Display) -> WorkError {
    WorkError::codec(
        format!("read the reply of worker process {pid} to task `{task}`"),
        format!(
            "the worker misbehaved: {what}; it was killed and will be replaced (a crashed or \
             compromised task, or a worker built from another version)"
        ),
    )
}

/// Whether the worker can take another job after [`WorkerProcess::run`].
#[derive(Debug)]
pub(super) enum After {
    /// It answered and is waiting for the next job.
    Reusable,
    /// It is gone (and reaped); the pool needs a replacement.
    Lost,
    /// It was gone before it could take the job, so the task never ran: the work holds no
    /// outcome and can be sent to another worker; this error says what happened, for when
    /// there is none. The worker is reaped; the pool needs a replacement.
    Undelivered(WorkError),
}

/// A running worker process and the parent's ends of its channels.
pub(super) struct WorkerProcess {
    pid: u32,
    /// `None` once reaped: nothing may signal the pid after that, it may name another process.
    child: Option<Child>,
    /// How it ended, once reaped.
    ended: Option<Termination>,
    /// The worker's CPU-time clock, for the lower bound of what it reports (see `run`).
    cpu_clock: Option<libc::clockid_t>,
    /// The result bytes read out of the results region, owned by this process before any of
    /// them is decoded (the worker could rewrite the region while it is read).
    result_copy: Vec<u8>,
    /// The parent's end of the worker's socket, framed.
    link: FrameReceiver,
    /// False once the parent said end-of-file: the worker exits when it reads it.
    open: bool,
    /// Where large arguments and results travel; dropped (unmapped, closed) with the worker.
    regions: Regions,
    watch: Arc<Watch>,
    frame: Vec<u8>,
    /// For the small messages of direct copies.
    message: Vec<u8>,
    /// The worker's stdout and stderr, forwarded; read to the end to tell why it aborted.
    output: Output,
    /// Whether large byte strings go by direct copies to and from this worker.
    direct: bool,
    tasks_run: u64,
    /// How long the last job ran in the worker, as it reported.
    last_ran: Option<Duration>,
}

impl WorkerProcess {
    pub(super) fn new(
        child: Child,
        regions: Regions,
        link: FrameReceiver,
        watch: Arc<Watch>,
        output: Output,
        direct: bool,
    ) -> Self {
        WorkerProcess {
            pid: child.id(),
            cpu_clock: sys::cpu_clock(child.id()),
            child: Some(child),
            ended: None,
            result_copy: Vec::new(),
            link,
            open: true,
            regions,
            watch,
            frame: Vec::new(),
            message: Vec::new(),
            output,
            direct,
            tasks_run: 0,
            last_ran: None,
        }
    }

    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// The deadline watch the supervisor enforces for this worker.
    pub(super) fn watch(&self) -> Arc<Watch> {
        Arc::clone(&self.watch)
    }

    /// How many jobs this worker has answered.
    pub(super) fn tasks_run(&self) -> u64 {
        self.tasks_run
    }

    /// How long the last job ran in the worker, if it answered with a result.
    pub(super) fn last_ran(&self) -> Option<Duration> {
        self.last_ran
    }

    /// Runs `work` (the task `task`) in this worker and stores its outcome in `work`.
    pub(super) fn run(&mut self, work: &mut dyn Work, task: &str, limits: JobLimits) -> After {
        self.last_ran = None;
        let began = Instant::now();
        let cpu_before = self.cpu_time();
        let copying_before = direct::time_copying();
        let received = match self.send_job(work, task, limits) {
            Ok(worker_copies) => {
                let started = (began, cpu_before, copying_before);
                self.receive_reply(work, task, limits.max_payload, worker_copies, started)
            }
            Err(unsent) => unsent,
        };
        // Disarmed before anything can reap the worker or give it another job, so a kill
        // from the watch (deadline or cancel) can only ever reach this job's process.
        let fired = self.watch.disarm();
        let killed = fired.is_some();
        if self.frame.capacity() > KEPT_BUFFER {
            self.frame = Vec::new();
        }
        self.regions.args.trim();
        self.regions.results.trim();
        match received {
            Received::Answered | Received::Refused => {
                if received == Received::Answered {
                    self.tasks_run += 1;
                }
                if !killed {
                    return After::Reusable;
                }
                // The answer (or the refusal) won the race against the deadline or a cancel,
                // but the worker was killed for it: it cannot take another job.
                self.reap();
            }
            // A worker that breaks the protocol cannot be trusted with the next job.
            Received::Garbled => drop(self.kill_and_reap()),
            Received::Unsolicited => {
                tracing::warn!(target: EVENTS, pid = self.pid, task, "subprocess worker sent a frame while it had no job; it is killed, replaced, and the job goes to another");
                let termination = self.kill_and_reap();
                return After::Undelivered(WorkError::worker_died(self.pid, termination, task));
            }
            // Nothing reached the worker, and nobody killed it for this job: it died idle.
            Received::NotSent if !killed => {
                return After::Undelivered(self.lost(received, task, None, limits));
            }
            Received::NotSent | Received::PartlySent | Received::Hangup => {
                work.fail(self.lost(received, task, fired, limits));
            }
        }
        After::Lost
    }

    /// Encodes the job and sends it; returns how many bytes the worker copies out of the
    /// args region, or how far it got (the work holds the error of a refused job).
    fn send_job(
        &mut self,
        work: &mut dyn Work,
        task: &str,
        limits: JobLimits,
    ) -> Result<usize, Received> {
        match self.link.next_job() {
            Ok(()) => {}
            Err(e) if e.is_garbled() => return Err(Received::Unsolicited),
            // Gone before it could take the job.
            Err(_) => return Err(Received::NotSent),
        }
        protocol::start_job(task, &mut self.frame);
        let tag = self.frame.len() - 1;
        let mut start = JobStart {
            watch: &self.watch,
            timeout: limits.timeout,
            armed: false,
        };
        let mut to_worker = ArgsToWorker {
            pid: self.pid,
            open: self.open,
            link: &mut self.link,
            message: &mut self.message,
            start: &mut start,
            first: true,
            declined: false,
        };
        let mut args =
            PayloadWriter::new(&mut self.frame, &mut self.regions.args, limits.max_payload);
        if self.direct {
            args = args.sending_apart(&mut to_worker);
        }
        let encoded = work.encode_args_to("subprocess", &mut args);
        let finished = args.finish();
        if to_worker.declined {
            self.direct = false;
            tracing::info!(target: EVENTS, pid = self.pid, "subprocess worker declined direct copies; its large payloads go through shared memory");
        }
        let (placement, gaps) = match (encoded, finished) {
            (_, Err(Refusal::Cancelled)) => {
                work.fail(WorkError::cancelled());
                return Err(Received::Refused);
            }
            // The worker went away (or broke the protocol) before it had the job.
            (_, Err(Refusal::Lost(why))) => {
                tracing::warn!(target: EVENTS, pid = self.pid, task, reason = %why, "subprocess direct copy into a worker failed; it is replaced and the job goes to another");
                return Err(Received::NotSent);
            }
            (_, Err(refusal)) => {
                work.fail(WorkError::codec(
                    format!(
                        "send the arguments of task `{task}` to worker process {}",
                        self.pid
                    ),
                    refusal,
                ));
                return Err(Received::Refused);
            }
            (Err(error), _) => {
                work.fail(error);
                return Err(Received::Refused);
            }
            (Ok(()), Ok(written)) => written,
        };
        // Armed for every job, with or without a deadline: a cancel may kill the worker too.
        if !start.arm() {
            // Cancelled between the caller's check and now: the job is not sent.
            work.fail(WorkError::cancelled());
            return Err(Received::Refused);
        }
        wire::place_args(&mut self.frame, tag, placement, &gaps, self.direct);
        frame::seal(&mut self.frame);
        let sent = match self.open {
            true => self.link.wire().send(&mut self.frame),
            false => Err(frame::Unsent { partly: false }),
        };
        let worker_copies = match placement {
            Placement::Shared { len } => len,
            Placement::Inline => 0,
        };
        sent.map(|()| worker_copies).map_err(|unsent| {
            if unsent.partly {
                Received::PartlySent
            } else {
                Received::NotSent
            }
        })
    }

    /// Waits for the reply, reading the result bytes the worker offers before it, and
    /// stores what it says in `work`. The worker copies `worker_copies` bytes out of the args
    /// region (and likely as many into the results region): the first wait polls for that
    /// long too.
    fn receive_reply(
        &mut self,
        work: &mut dyn Work,
        task: &str,
        max_payload: usize,
        worker_copies: usize,
        (began, cpu_before, copying_before): (Instant, Option<Duration>, Duration),
    ) -> Received {
        let pid = self.pid;
        let mut offered = Vec::new();
        let mut offered_bytes = 0usize;
        let mut expected = direct::wait_while_copying(worker_copies.saturating_mul(2));
        loop {
            let received = self.link.recv_lending(std::mem::take(&mut expected));
            let offer = match received.map(|(body, _)| body) {
                Ok(body) => match body.split_first() {
                    Some((&protocol::FROM_WORKER_OFFER, fields)) => protocol::small_fields(fields),
                    _ => break,
                },
                Err(FrameError::Channel(SocketError::Closed)) => return Received::Hangup,
                Err(FrameError::Channel(SocketError::Io(e))) => {
                    work.fail(WorkError::codec(
                        format!("read the reply of worker process {pid} to task `{task}`"),
                        format!("this process's socket failed ({e}); the worker was replaced"),
                    ));
                    return Received::Garbled;
                }
                Err(bad) => {
                    work.fail(garbled(pid, task, bad));
                    return Received::Garbled;
                }
            };
            let Some([address, len]) = offer.filter(|_| self.direct) else {
                work.fail(garbled(
                    pid,
                    task,
                    "an offer that is malformed or not allowed",
                ));
                return Received::Garbled;
            };
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len < DIRECT_THRESHOLD {
                // Only large byte strings are offered, so offers are few (at most
                // max_payload / DIRECT_THRESHOLD) and each one pays for its exchange.
                work.fail(garbled(
                    pid,
                    task,
                    "an offer below the direct-copy threshold",
                ));
                return Received::Garbled;
            }
            offered_bytes = offered_bytes.saturating_add(len);
            if offered_bytes > max_payload {
                work.fail(garbled(pid, task, "result bytes over max_payload"));
                return Received::Garbled;
            }
            let mut bytes = Vec::new();
            match direct::read_into(pid, address, len, &mut bytes) {
                Ok(()) => offered.push(bytes),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Received::Hangup,
                Err(e) => {
                    work.fail(garbled(pid, task, format!("its result bytes: {e}")));
                    return Received::Garbled;
                }
            }
            protocol::small_message(&mut self.message, protocol::TO_WORKER_TAKEN, &[]);
            if !self.open || self.link.wire().send(&mut self.message).is_err() {
                return Received::Hangup;
            }
        }
        match wire::read_reply(self.link.last()) {
            Ok(Reply::Done { result, ran, gaps }) => {
                let result = match result {
                    Args::Inline(result) => result,
                    Args::Shared(len) if len > max_payload => {
                        work.fail(garbled(
                            pid,
                            task,
                            format!("a result of {len} bytes, over max_payload"),
                        ));
                        return Received::Garbled;
                    }
                    Args::Shared(len) => {
                        match self.regions.results.copy_out(len, &mut self.result_copy) {
                            Ok(()) => &self.result_copy[..],
                            Err(e) => {
                                work.fail(garbled(pid, task, e));
                                return Received::Garbled;
                            }
                        }
                    }
                };
                if result.len().saturating_add(offered_bytes) > max_payload {
                    work.fail(garbled(pid, task, "a result over max_payload"));
                    return Received::Garbled;
                }
                let encoded = match direct::with_offered(result, &gaps, offered) {
                    Ok(encoded) => encoded,
                    Err(why) => {
                        work.fail(garbled(pid, task, why));
                        return Received::Garbled;
                    }
                };
                // A worker's word on how long it ran teaches the process-wide cost model, so
                // it is held between the CPU time the kernel says the worker used meanwhile
                // and the round trip the parent saw: heavy work cannot look cheap, and no work
                // longer than the worker was held. The worker polls while this thread copies
                // its payload; that CPU is the transfer's, and counted as the task's it made a
                // 1 MiB echo look like 0.5 ms of work, on the edge of the express lane.
                let round_trip = began.elapsed();
                let copying = direct::time_copying().saturating_sub(copying_before);
                let used = cpu_before
                    .zip(self.cpu_time())
                    .map_or(Duration::ZERO, |(before, after)| {
                        after.saturating_sub(before).saturating_sub(copying)
                    });
                let ran = ran.max(used).min(round_trip);
                self.last_ran = Some(ran);
                work.learn(ran);
                work.complete_pieces(encoded);
            }
            Ok(Reply::Failed(wire)) => work.fail(wire.into_error(task, pid)),
            Err(bad) => {
                work.fail(garbled(pid, task, bad));
                return Received::Garbled;
            }
        }
        Received::Answered
    }

    /// Reaps a worker whose channel failed and says what happened to its job. `fired` says
    /// whether the pool killed it for this job, and why.
    fn lost(
        &mut self,
        how: Received,
        task: &str,
        fired: Option<Fired>,
        limits: JobLimits,
    ) -> WorkError {
        let termination = match how {
            // It closed its end: it is exiting, let it finish.
            Received::Hangup => self.reap(),
            // It could not take the job: dead, or too broken to wait for.
            _ => self.kill_and_reap(),
        };
        let pid = self.pid;
        match (fired, limits.timeout, limits.memory, termination) {
            (Some(Fired::Deadline), Some(limit), _, _) => {
                tracing::warn!(target: EVENTS, pid, task, ?limit, "subprocess job timed out; its worker was killed");
                WorkError::timed_out(format!("task `{task}` in worker process {pid}"), limit)
            }
            // The kill was the pool's own, asked for by a cancel: nothing went wrong (the
            // caller reports the cancellation).
            (Some(Fired::Cancel), ..) => {
                tracing::debug!(target: EVENTS, pid, task, cause = %termination, "subprocess worker killed for a cancelled job");
                WorkError::worker_died(pid, termination, task)
            }
            _ if how == Received::NotSent => {
                tracing::warn!(target: EVENTS, pid, task, cause = %termination, "subprocess worker died before it could take a job");
                WorkError::worker_died(pid, termination, task)
            }
            // Rust aborts when an allocation fails, and under a data limit that is what an
            // allocation past the limit does; it says so on stderr first. Any other abort
            // (`abort()`, a C `assert`) is the task's own, and raising the limit would not help.
            (_, _, Some(limit), Termination::Signal(libc::SIGABRT)) if self.failed_allocation() => {
                tracing::warn!(target: EVENTS, pid, task, cause = %termination, limit, "subprocess worker exceeded its memory limit");
                WorkError::worker_out_of_memory(pid, termination, task, limit)
            }
            _ => {
                tracing::warn!(target: EVENTS, pid, task, cause = %termination, "subprocess worker died while running a job");
                WorkError::worker_died(pid, termination, task)
            }
        }
    }

    /// Whether the (reaped) worker's output ends with Rust's report of a failed allocation
    /// (and the backtrace that may follow it). Not known within [`EXIT_GRACE`] (a process it started elsewhere still holds
    /// its output): no, since only a report seen is evidence.
    fn failed_allocation(&self) -> bool {
        self.output
            .ended_with_failed_allocation(Instant::now() + EXIT_GRACE)
            .unwrap_or(false)
    }

    /// Says end-of-file on the socket: an idle worker reads it and exits.
    pub(super) fn close(&mut self) {
        if std::mem::replace(&mut self.open, false) {
            self.link.wire().close();
        }
    }

    /// Waits for the process to end (after its socket failed), killing it if it takes longer
    /// than a grace period, and returns how it ended.
    fn reap(&mut self) -> Termination {
        self.close();
        exited_by(self.pid, Instant::now() + EXIT_GRACE);
        self.kill_and_reap()
    }

    /// Kills the process (if it still runs) and its process group, reaps it, and returns how
    /// it ended: a process that had already exited keeps its own status. Once reaped, the
    /// worker is never signalled again.
    fn kill_and_reap(&mut self) -> Termination {
        self.close();
        let Some(mut child) = self.child.take() else {
            return self.ended.unwrap_or(Termination::Unknown);
        };
        // Unreaped until the wait below, so the pid (and the group's id) names this worker.
        deadline::kill(self.pid);
        if !exited_by(self.pid, Instant::now() + REAP_BOUND) {
            tracing::warn!(target: EVENTS, pid = self.pid, "subprocess worker was killed but cannot be reaped yet (traced?); a thread waits for it");
            let reaper = thread::Builder::new().name("ythread-reaper".to_owned());
            // Should no thread start, the zombie waits for this process's own exit.
            let _ = reaper.spawn(move || drop(child.wait()));
            self.ended = Some(Termination::Unknown);
            return Termination::Unknown;
        }
        let ended = child.wait().map_or(Termination::Unknown, termination);
        self.ended = Some(ended);
        ended
    }

    /// This worker's CPU time so far, if its clock can be read.
    fn cpu_time(&self) -> Option<Duration> {
        let clock = self.cpu_clock?;
        // The clock is this worker's, which is unreaped while it runs jobs, so it names no
        // other process.
        sys::clock_now(clock)
    }

    /// Reaps a worker found dead (killing it first if it is not) and says how it ended.
    pub(super) fn bury(mut self) -> Termination {
        self.watch.disarm();
        self.kill_and_reap()
    }

    /// Reaps the process (killing its group first) if it has exited; returns whether it is
    /// reaped.
    pub(super) fn try_reap(&mut self) -> bool {
        if self.child.is_some() && !exited_by(self.pid, Instant::now()) {
            return false;
        }
        self.kill_and_reap();
        true
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // A job that unwound (a panic in a result's `Deserialize`) left the watch armed:
        // disarm before reaping, so that no kill can reach a reused pid.
        self.watch.disarm();
        if !self.try_reap() {
            let _ = self.kill_and_reap();
        }
    }
}

/// Stops workers gracefully: closes every job channel at once, gives them all until `grace`
/// runs out to exit, then kills and reaps the stragglers.
pub(super) fn stop_all(mut workers: Vec<WorkerProcess>, grace: Duration) {
    for worker in &mut workers {
        worker.close();
    }
    let deadline = Instant::now() + grace;
    for mut worker in workers {
        exited_by(worker.pid, deadline);
        worker.kill_and_reap();
    }
}

/// Polls until `pid`, an unreaped child, has exited or `deadline` passes, without reaping it;
/// returns whether it exited. Used only on the way out of a worker, so a few sleeps cost
/// nothing; the first checks are close together because a worker that has closed its socket
/// is usually a few microseconds from being a zombie.
fn exited_by(pid: u32, deadline: Instant) -> bool {
    let mut pause = Duration::from_micros(20);
    loop {
        if sys::child_exited(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Polls `child` until it exits or `deadline` passes. Used only on the way out of a worker, so
/// a few sleeps cost nothing; the first checks are close together because a worker that has
/// closed its channels is usually a few microseconds from being a zombie.
pub(super) fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_micros(20);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            Ok(None) | Err(_) => return None,
        }
    }
}

/// How a process ended, in the terms of `ythread::Error`.
pub(super) fn termination(status: ExitStatus) -> Termination {
    match (status.signal(), status.code()) {
        (Some(signal), _) => Termination::Signal(signal),
        (None, Some(code)) => Termination::Exited(code),
        (None, None) => Termination::Unknown,
    }
}
