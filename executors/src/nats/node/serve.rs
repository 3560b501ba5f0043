//! The worker node: [`init`](crate::init()) with [`WORKER_ENV`](crate::WORKER_ENV) set serves
//! the registry's tasks from the broker until SIGTERM (or SIGINT), then drains within its
//! bound and exits (see `drain.rs`).
//!
//! Jobs run through the node's own local strategy (`YTHREAD_EXECUTOR`, inline by default), on
//! the runtime's blocking threads, at most [`ExecutorConfig::parallelism`](crate::ExecutorConfig::parallelism) at once. A job that
//! finds the node full is answered "busy" at once rather than queued: core NATS has no flow
//! control, and a job queued on a node dies with it. When a full node has turned a job away
//! and a slot frees, it says "room again" on the registry's room subject so that the callers
//! waiting send again at once.
//!
//! No job runs while its thread holds the runtime's duties: the client's connection, the loop
//! that takes jobs, answers "busy" and status questions, and the signal handler. A job
//! predicted cheaper than [`UNANNOUNCED_BELOW`] at its size runs in place on the thread that
//! took it, but only after those duties have moved to another thread (tokio's
//! `block_in_place`, which takes them back when the job returns); any other job runs on a
//! blocking thread, announced first with a "taken" message. So a job predicted cheap that is
//! not (a publisher can declare any size) costs a thread, never the node's responsiveness,
//! and SIGTERM still ends the node within its drain bound (`drain.rs`). Trade-off: each cheap
//! job wakes a thread to take over the duties, which is usually back to sleep before it gets
//! them; on this project's loaded 2-core machine the tiny round trip stayed within noise of
//! running in place (see `docs/nats.md`). Before any of this, a job is admitted
//! (`admission.rs`): its subject decides its task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::{Client, Message, Subject};
use futures_util::StreamExt;
use tokio::sync::Notify;
use ythread::{Executor, TaskRegistry};

use super::admission::{self, Admitted};
use super::drain::{self, EXIT_ABANDONED, StopSignals};
use crate::nats::config::NatsConfig;
use crate::nats::connect;
use crate::nats::message;
use crate::nats::status::NodeStatus;
use crate::nats::subjects::Subjects;
use crate::wire::{self, WireError};

/// Jobs predicted cheaper than this, at their size, on a node whose local strategy is
/// inline, are answered without a "taken" message first.
pub const UNANNOUNCED_BELOW: Duration = Duration::from_micros(50);

/// How long a draining node keeps answering "busy" to jobs the broker had already routed to
/// it before its unsubscription took effect.
const LATE_JOBS: Duration = Duration::from_millis(200);

/// Exit status of a node that cannot reach the broker (`crate::init` lists every exit
/// status of the crate in one table).
const EXIT_NO_BROKER: i32 = 94;

/// The node's local strategy, built by [`init`](crate::init()) from `YTHREAD_EXECUTOR`: the node
/// runs jobs through it but never reads the configuration that picked it.
pub(crate) struct LocalStrategy {
    pub(crate) executor: Executor,
    /// How many jobs the node takes at once.
    pub(crate) capacity: usize,
    /// Whether the strategy is inline (see [`Node::inline`]).
    pub(crate) inline: bool,
    /// The strategy's configuration as given, for the banner and [`NodeStatus::strategy`].
    pub(crate) text: String,
}

/// Prints why the node `who` stops, with the prefix of all of a node's messages; returns `code`.
pub(crate) fn complain(who: &str, code: i32, why: &str) -> i32 {
    eprintln!("ythread node {who}: {why}; exiting");
    code
}

/// Serves the tasks of `registry` from the broker `config` names, as the node `who`
/// ([`this_node`](super::identity::this_node)), through `local`; returns the exit status.
pub(crate) fn serve(
    who: String,
    config: NatsConfig,
    local: LocalStrategy,
    registry: &TaskRegistry,
) -> i32 {
    let runtime = match connect::runtime("ythread-node") {
        Ok(runtime) => runtime,
        Err(e) => return complain(&who, EXIT_NO_BROKER, &e.to_string()),
    };
    let LocalStrategy {
        executor,
        capacity,
        inline,
        text,
    } = local;
    let node = Node {
        capacity,
        inline,
        drain_bound: config.job_timeout(),
        token: crate::nats::subjects::token(&who.replace(':', "_")),
        id: who.clone(),
        registry: registry.clone(),
        executor,
        subjects: Subjects::new(config.subject_prefix(), registry.digest()),
        in_flight: AtomicUsize::new(0),
        owes_room: AtomicBool::new(false),
        served: AtomicU64::new(0),
        turned_away: AtomicU64::new(0),
        idle: Notify::new(),
    };
    // The loop runs as a task on the runtime's I/O thread, beside the client's connection:
    // a job's arrival wakes it with no thread switch.
    let outcome = runtime.block_on(async move {
        tokio::spawn(node.run(config, text))
            .await
            .unwrap_or_else(|e| Err(format!("its serving loop failed: {e}")))
    });
    // Jobs abandoned at the drain bound still hold blocking threads: dropping the runtime
    // would wait for them.
    runtime.shutdown_background();
    match outcome {
        Ok(Stopped::Drained) => 0,
        Ok(Stopped::Abandoned) => EXIT_ABANDONED,
        Err(why) => complain(&who, EXIT_NO_BROKER, &why),
    }
}

/// How a node's serving ended.
enum Stopped {
    /// Every job in flight finished.
    Drained,
    /// Jobs were still running at the drain bound, or at a second signal.
    Abandoned,
}

struct Node {
    id: String,
    /// `id` as a subject token, for jobs sent to this node only.
    token: String,
    registry: TaskRegistry,
    executor: Executor,
    subjects: Subjects,
    capacity: usize,
    /// Whether the local strategy is inline: it learns no costs by itself, so the node
    /// records them, and cheap jobs go unannounced.
    inline: bool,
    /// The longest a drain waits for the jobs in flight.
    drain_bound: Duration,
    in_flight: AtomicUsize,
    /// Whether the node turned a job away since it last said it has room.
    owes_room: AtomicBool,
    served: AtomicU64,
    turned_away: AtomicU64,
    /// Woken when the last job in flight ends.
    idle: Notify,
}

impl Node {
    async fn run(self, config: NatsConfig, local: String) -> Result<Stopped, String> {
        let id = self.id.clone();
        let options = connect::options(&format!("ythread node {id}"), move |event| {
            let id = id.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        eprintln!("ythread node {id}: lost the nats server; reconnecting")
                    }
                    async_nats::Event::Connected => {
                        eprintln!("ythread node {id}: connected to the nats server")
                    }
                    _ => {}
                }
            }
        });
        let client = connect::connect(options, &config)
            .await
            .map_err(|e| e.to_string())?;
        let mut jobs = client
            .queue_subscribe(self.subjects.all_tasks(), self.subjects.queue_group())
            .await
            .map_err(|e| format!("could not subscribe: {e}"))?;
        let mut jobs_here = client
            .subscribe(self.subjects.all_at_node(&self.token))
            .await
            .map_err(|e| format!("could not subscribe: {e}"))?;
        let mut questions = client
            .subscribe(self.subjects.status())
            .await
            .map_err(|e| format!("could not subscribe: {e}"))?;
        subscribed(&client)
            .await
            .map_err(|e| format!("could not subscribe: {e}"))?;
        let mut stop = StopSignals::listen()
            .map_err(|e| format!("could not listen for SIGTERM and SIGINT: {e}"))?;
        eprintln!(
            "ythread node {}: serving {} tasks (registry {:016x}) on {} from {} through \
             {local}, up to {} jobs at once",
            self.id,
            self.registry.len(),
            self.registry.digest(),
            self.subjects.all_tasks(),
            config.url(),
            self.capacity
        );
        let node = Arc::new(self);
        loop {
            tokio::select! {
                job = jobs.next() => match job {
                    Some(job) => Arc::clone(&node).take(&client, job).await,
                    None => break,
                },
                job = jobs_here.next() => match job {
                    Some(job) => Arc::clone(&node).take(&client, job).await,
                    None => break,
                },
                question = questions.next() => match question {
                    Some(question) => {
                        if let Some(reply) = question.reply {
                            let _ = client.publish(reply, node.status(&local).into()).await;
                        }
                    }
                    None => break,
                },
                () = stop.next() => break,
            }
        }
        Ok(node
            .drain(&client, [&mut jobs, &mut jobs_here], &mut stop)
            .await)
    }

    /// The node's [`NodeStatus`], encoded.
    fn status(&self, local: &str) -> Vec<u8> {
        let status = NodeStatus {
            node: self.id.clone(),
            strategy: local.to_string(),
            capacity: self.capacity,
            in_flight: self.in_flight.load(Ordering::Acquire),
            served: self.served.load(Ordering::Relaxed),
            turned_away: self.turned_away.load(Ordering::Relaxed),
            metrics: self.executor.metrics().to_string(),
        };
        // A struct of strings and integers always encodes.
        postcard::to_stdvec(&status).unwrap_or_default()
    }

    /// Takes the job, or turns it away if the node is full, or refuses it.
    async fn take(self: Arc<Self>, client: &Client, job: Message) {
        let Some(reply) = job.reply.clone() else {
            return;
        };
        let admitted = match admission::admit(&self.registry, &self.subjects, &self.token, &job) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                let mut out = Vec::new();
                wire::write_error(&refusal, &mut out);
                // "Taken" first, so that the error names this node.
                let _ = client
                    .publish(reply.clone(), message::taken(&self.id).into())
                    .await;
                let _ = client.publish(reply, out.into()).await;
                return;
            }
        };
        if self.in_flight.load(Ordering::Acquire) >= self.capacity {
            self.turn_away(client, reply).await;
            return;
        }
        // Only this loop adds to `in_flight`, so the check above stays true until here.
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let client = client.clone();
        if self.predicted_cheap(&admitted) {
            // In place, unannounced, with the runtime's duties handed over first (see the
            // module docs): no switch to a blocking thread and back.
            tokio::spawn(async move {
                let out =
                    tokio::task::block_in_place(|| self.guarded_run(&client, &job, &admitted));
                if is_failure(&out) {
                    // So that the error names this node.
                    let _ = client
                        .publish(reply.clone(), message::taken(&self.id).into())
                        .await;
                }
                let _ = client.publish(reply, out.into()).await;
                self.finished(&client).await;
            });
            return;
        }
        let _ = client
            .publish(reply.clone(), message::taken(&self.id).into())
            .await;
        // The blocking thread runs the job and publishes its reply itself: one thread switch
        // there and one back to the I/O thread, which writes the reply.
        let io = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let out = self.guarded_run(&client, &job, &admitted);
            io.block_on(async {
                let _ = client.publish(reply, out.into()).await;
                self.finished(&client).await;
            });
        });
    }

    /// [`run_job`](Self::run_job), with a panic outside the task (which the strategy
    /// catches) an error reply rather than a lost one.
    fn guarded_run(&self, client: &Client, job: &Message, admitted: &Admitted) -> Vec<u8> {
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run_job(client, &job.payload, admitted)
        }));
        ran.unwrap_or_else(|_| {
            let mut out = Vec::new();
            let why = WireError::Other("the node's job thread panicked".to_owned());
            wire::write_error(&why, &mut out);
            out
        })
    }

    async fn turn_away(&self, client: &Client, reply: Subject) {
        self.owes_room.store(true, Ordering::Release);
        self.turned_away.fetch_add(1, Ordering::Relaxed);
        let _ = client.publish(reply, message::busy(&self.id).into()).await;
    }

    /// Whether the job is predicted, at its size, to cost less than announcing it.
    fn predicted_cheap(&self, job: &Admitted) -> bool {
        self.inline
            && job
                .model
                .and_then(|model| model.predict(job.size))
                .is_some_and(|cost| cost < UNANNOUNCED_BELOW)
    }

    /// Runs a job through the local strategy; returns the reply body.
    fn run_job(&self, client: &Client, job: &[u8], admitted: &Admitted) -> Vec<u8> {
        let mut out = Vec::new();
        let began = Instant::now();
        wire::write_reply(job, &mut out, |task, args, out| {
            self.executor.run_encoded(&self.registry, task, args, out)
        });
        if self.inline
            && let Some(model) = admitted.model
        {
            // Inline runs teach no cost model by themselves; scheduling strategies do.
            model.record(admitted.size, began.elapsed());
        }
        let limit = client.max_payload();
        if out.len() > limit {
            let why = format!(
                "its result is {} bytes, over the nats server's max_payload of {limit} bytes; \
                 raise max_payload in the server's configuration or return a reference to the \
                 data",
                out.len()
            );
            out.clear();
            wire::write_error(&WireError::Other(why), &mut out);
        }
        self.served.fetch_add(1, Ordering::Relaxed);
        out
    }

    /// A job ended: say "room again" if a job was turned away, wake a drain on the last one.
    async fn finished(&self, client: &Client) {
        let left = self.in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
        if self.owes_room.swap(false, Ordering::AcqRel) {
            let _ = client
                .publish(self.subjects.room(), Default::default())
                .await;
        }
        if left == 0 {
            self.idle.notify_waiters();
        }
    }

    /// Stops taking jobs, turns away the ones already routed here, and waits for those in
    /// flight, for at most the drain bound or until a second signal.
    async fn drain(
        &self,
        client: &Client,
        subscriptions: [&mut async_nats::Subscriber; 2],
        stop: &mut StopSignals,
    ) -> Stopped {
        eprintln!(
            "ythread node {}: draining: no new jobs, finishing {} in flight within {:?}",
            self.id,
            self.in_flight.load(Ordering::Acquire),
            self.drain_bound
        );
        drain::arm_watchdog(&self.id, self.drain_bound);
        let until = tokio::time::Instant::now() + self.drain_bound;
        for jobs in subscriptions {
            let _ = jobs.unsubscribe().await;
            let _ = tokio::time::timeout_at(until, client.flush()).await;
            let late = (tokio::time::Instant::now() + LATE_JOBS).min(until);
            while let Ok(Some(job)) = tokio::time::timeout_at(late, jobs.next()).await {
                if let Some(reply) = job.reply {
                    self.turn_away(client, reply).await;
                }
            }
        }
        let finished = loop {
            let idle = self.idle.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                break true;
            }
            tokio::select! {
                () = idle => {}
                () = tokio::time::sleep_until(until) => break false,
                () = stop.next() => break false,
            }
        };
        // Callers turned away during the drain send again at once, to the other nodes.
        let _ = client
            .publish(self.subjects.room(), Default::default())
            .await;
        let _ = tokio::time::timeout(LATE_JOBS, client.flush()).await;
        if !finished {
            eprintln!(
                "ythread node {}: stopping with {} jobs still running (the drain bound of {:?} \
                 passed, or a second signal came); their callers fail at their deadlines; \
                 exiting",
                self.id,
                self.in_flight.load(Ordering::Acquire),
                self.drain_bound
            );
            return Stopped::Abandoned;
        }
        eprintln!(
            "ythread node {}: drained after {} jobs ({} turned away while full); exiting\n{}",
            self.id,
            self.served.load(Ordering::Relaxed),
            self.turned_away.load(Ordering::Relaxed),
            self.executor.metrics()
        );
        Stopped::Drained
    }
}

/// Returns once the broker has taken every subscription made so far on `client`: a flush
/// only writes them out, so a message of our own that comes back, after them on the same
/// connection, is the proof. Until then, a job sent by another client could find nobody.
async fn subscribed(client: &Client) -> Result<(), async_nats::Error> {
    let echo = client.new_inbox();
    let mut back = client.subscribe(echo.clone()).await?;
    client.publish(echo, Default::default()).await?;
    client.flush().await?;
    tokio::time::timeout(connect::CONNECT_TIMEOUT, back.next())
        .await
        .map_err(|_| "the nats server did not confirm the subscriptions")?;
    Ok(())
}

/// Whether a reply body reports a failure.
fn is_failure(reply: &[u8]) -> bool {
    matches!(wire::read_reply(reply), Ok(wire::Reply::Failed(_)) | Err(_))
}
