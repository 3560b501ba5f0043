//! One job's trip: send it, follow what the nodes answer, and leave one outcome in the work.
//!
//! A node that has no room answers "busy" at once instead of queueing the job, so that a node
//! never holds more jobs than it runs, and a node that dies loses only those. The caller then
//! sends the job again: twice at once (the queue group picks a node at random, so another one
//! may have room), then it waits in line. When a node says it has room, the job that has
//! waited longest in this process is sent to that node directly; a job that waits past a
//! pause ([`ROOM_PAUSE`], doubling) tries the queue group again, in case a "room" message was
//! lost. Every wait ends at the job's one deadline.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ythread::{Cancellation, Error as WorkError, Work};

use super::executor::NatsExecutor;
use super::routes::{Incoming, Line, Routes};
use crate::nats::message::{self, FromNode};
use crate::untrusted::{TEXT_LIMIT, clean};
use crate::wire::{self, Args, Reply};

/// Sends at once after a "busy" before waiting for room.
const QUICK_RETRIES: u32 = 2;

/// How long a turned-away job first waits for "room again" before it tries anyway; the pause
/// doubles on every try, up to [`ROOM_PAUSE_CEILING`].
const ROOM_PAUSE: Duration = Duration::from_millis(5);

/// The longest pause between tries of a job that waits for room.
const ROOM_PAUSE_CEILING: Duration = Duration::from_millis(100);

/// The id the cancel callback sends with: no job has it.
const CANCELLED: u64 = u64::MAX;

thread_local! {
    /// Each handler thread's channel from the routing task, reused from job to job.
    static LINE: (Line, Receiver<(u64, Incoming)>) = mpsc::channel();
}

/// Runs `work` (the task `task`) on a node, or fails it.
pub(super) fn run(executor: &NatsExecutor, work: &mut dyn Work, task: &'static str) {
    LINE.with(|(line, arrivals)| {
        // Messages for jobs this thread ran before, which ended first.
        while arrivals.try_recv().is_ok() {}
        let trip = Trip {
            executor,
            task,
            line,
            arrivals,
            node: None,
            turned_away: None,
            waited: false,
        };
        if let Err(error) = trip.go(work) {
            work.fail(error);
        }
    });
}

struct Trip<'a> {
    executor: &'a NatsExecutor,
    task: &'static str,
    line: &'a Line,
    arrivals: &'a Receiver<(u64, Incoming)>,
    /// The node that took the job, once one has.
    node: Option<String>,
    /// The node that answered the latest send "busy", if it did.
    turned_away: Option<String>,
    /// Whether the wait for a node was recorded in the metrics.
    waited: bool,
}

/// Forgets a job id when its attempt ends, however it ends.
struct Registered<'a>(&'a Routes, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.unregister(self.1);
    }
}

impl Trip<'_> {
    fn go(mut self, work: &mut dyn Work) -> Result<(), WorkError> {
        let executor = self.executor;
        let payload = self.job(work)?;
        let size = work.size();
        let subject = executor.subjects.task(self.task);
        let sent = Instant::now();
        let deadline = sent + executor.config.job_timeout();
        let cancellation = Cancellation::current();
        if cancellation
            .as_ref()
            .is_some_and(Cancellation::is_cancelled)
        {
            return Err(WorkError::cancelled());
        }
        let line = self.line.clone();
        let _cancel_guard = cancellation.map(|c| {
            c.on_cancel(move || {
                let _ = line.send((CANCELLED, Incoming::Cancelled));
            })
        });
        let mut quick = 0;
        let mut pause = ROOM_PAUSE;
        // A node that said it has room, to send the next try to.
        let mut roomy: Option<String> = None;
        'tries: loop {
            if !executor.routes.connected() {
                return Err(self.unreachable());
            }
            self.turned_away = None;
            let (id, rooms) = executor.routes.register(self.line);
            let _registered = Registered(&executor.routes, id);
            let to_node = roomy.take();
            let to = match &to_node {
                Some(node) => executor.subjects.at_node(node, self.task),
                None => subject.clone(),
            };
            let attempt = Instant::now();
            executor
                .publish(&to, id, payload.clone(), size, deadline)
                .map_err(|e| self.unreachable_because(&e))?;
            loop {
                let incoming = self.next(id, deadline).ok_or_else(|| self.timed_out())?;
                let bytes = match incoming {
                    Incoming::Message(bytes) => bytes,
                    // The node that had room is gone: try the queue group.
                    Incoming::NoResponders if to_node.is_some() => continue 'tries,
                    Incoming::NoResponders => return Err(self.no_node()),
                    Incoming::ConnectionLost => return Err(self.connection_lost()),
                    Incoming::Cancelled => return Err(WorkError::cancelled()),
                    Incoming::Room(_) => continue,
                };
                match message::read(&bytes) {
                    Ok(FromNode::Taken(node)) => {
                        self.node = Some(node);
                        self.record_wait(work, sent);
                    }
                    Ok(FromNode::Busy(node)) => {
                        self.turned_away = Some(node);
                        break;
                    }
                    Ok(FromNode::Reply(Reply::Done {
                        result: Args::Inline(result),
                        ran,
                        gaps,
                    })) if gaps.is_empty() => {
                        self.record_wait(work, sent);
                        // The node's word for its run time, capped by what this attempt
                        // took as seen from here: a node cannot make work look dearer than
                        // its round trip.
                        work.learn(ran.min(attempt.elapsed()));
                        work.complete_encoded(result);
                        return Ok(());
                    }
                    Ok(FromNode::Reply(Reply::Done { .. })) => {
                        return Err(WorkError::codec(
                            format!(
                                "read the reply to task `{}` from {}",
                                self.task,
                                self.place()
                            ),
                            "it points at shared memory or at bytes sent apart, which a node \
                             cannot share; the node runs another build",
                        ));
                    }
                    Ok(FromNode::Reply(Reply::Failed(wire))) => {
                        return Err(wire.into_error_at(self.task, &self.place()));
                    }
                    Err(bad) => {
                        return Err(WorkError::codec(
                            format!(
                                "read the reply to task `{}` from {}",
                                self.task,
                                self.place()
                            ),
                            clean(&bad.to_string(), TEXT_LIMIT),
                        ));
                    }
                }
            }
            if quick < QUICK_RETRIES {
                quick += 1;
                continue;
            }
            if executor.routes.wait_for_room(id, rooms) {
                roomy = self.wait_for_room(id, deadline, pause)?;
                if roomy.is_none() {
                    pause = (pause * 2).min(ROOM_PAUSE_CEILING);
                }
            }
        }
    }

    /// The job body: the task name, then the encoded arguments, as in the subprocess protocol.
    fn job(&self, work: &mut dyn Work) -> Result<Bytes, WorkError> {
        let mut body = Vec::with_capacity(64);
        wire::write_job_head(self.task, &mut body);
        work.encode_args("nats", &mut body)?;
        let limit = self.executor.client.max_payload();
        if body.len() > limit {
            return Err(WorkError::codec(
                format!("send task `{}` through the nats server", self.task),
                format!(
                    "its job is {} bytes, over the server's max_payload of {limit} bytes; raise \
                     max_payload in the server's configuration (at most 64 MiB) or pass a \
                     reference to the data (a path, a key) instead of the data",
                    body.len()
                ),
            ));
        }
        Ok(Bytes::from(body))
    }

    /// The next arrival for job `id` (or a cancel), or `None` at `until`.
    fn next(&self, id: u64, until: Instant) -> Option<Incoming> {
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            match self.arrivals.recv_timeout(left) {
                Ok((got, incoming)) if got == id || got == CANCELLED => return Some(incoming),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => return None,
                // The sender half lives in this thread's `LINE`: never disconnected.
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits for "room again" (returning the node that has room), a pause (returning `None`),
    /// or the deadline (an error).
    fn wait_for_room(
        &self,
        id: u64,
        deadline: Instant,
        pause: Duration,
    ) -> Result<Option<String>, WorkError> {
        let until = (Instant::now() + pause).min(deadline);
        loop {
            match self.next(id, until) {
                Some(Incoming::Room(node)) => {
                    return Ok(crate::nats::untrusted::room_node(&node).map(str::to_owned));
                }
                Some(Incoming::Cancelled) => return Err(WorkError::cancelled()),
                Some(Incoming::ConnectionLost) => return Err(self.connection_lost()),
                // A late message of the attempt that was turned away.
                Some(_) => continue,
                None if Instant::now() >= deadline => return Err(self.timed_out()),
                None => return Ok(None),
            }
        }
    }

    fn record_wait(&mut self, work: &dyn Work, sent: Instant) {
        if !self.waited {
            self.waited = true;
            self.executor.stats.of(work).waited(sent.elapsed());
        }
    }

    /// Where the job ran, for messages.
    fn place(&self) -> String {
        match &self.node {
            Some(node) => format!("node {node}"),
            None => "a node".to_owned(),
        }
    }

    fn timed_out(&self) -> WorkError {
        let url = self.executor.config.url();
        let what = match &self.node {
            Some(node) => format!(
                "task `{}` on node {node} (no reply: the node may have died or be overloaded; \
                 other jobs go on to the live nodes)",
                self.task
            ),
            None if self.turned_away.is_some() => format!(
                "task `{}` (the nodes had no room, the last to answer {}; start more nodes or \
                 give a longer timeout)",
                self.task,
                self.turned_away.as_deref().unwrap_or_default()
            ),
            None => format!(
                "task `{}` (sent to the nats server at {url}, but no node took it: the node it \
                 went to may have died with it; other jobs go on to the live nodes)",
                self.task
            ),
        };
        WorkError::timed_out(what, self.executor.config.job_timeout())
    }

    fn no_node(&self) -> WorkError {
        let config = &self.executor.config;
        WorkError::unavailable(format!(
            "no node serves task `{}` of this build (registry {:016x}) on the nats server at {}; \
             start one with `YTHREAD_WORKER={config} PROGRAM`, PROGRAM being this same build",
            self.task,
            self.executor.registry.digest(),
            config.url()
        ))
    }

    fn unreachable(&self) -> WorkError {
        WorkError::unavailable(format!(
            "the nats server at {} is not reachable, so task `{}` was not sent; the strategy \
             reconnects on its own: start the server or check the address, then retry",
            self.executor.config.url(),
            self.task
        ))
    }

    fn unreachable_because(&self, why: &dyn std::fmt::Display) -> WorkError {
        WorkError::unavailable(format!(
            "could not send task `{}` to the nats server at {}: {why}; check that the server \
             runs, then retry",
            self.task,
            self.executor.config.url()
        ))
    }

    fn connection_lost(&self) -> WorkError {
        WorkError::unavailable(format!(
            "the connection to the nats server at {} dropped while task `{}` was in flight on \
             {}; its reply is lost; the strategy reconnects on its own: retry",
            self.executor.config.url(),
            self.task,
            self.place()
        ))
    }
}
