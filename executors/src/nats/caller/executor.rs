//! [`NatsExecutor`]: connecting, sending a job (through `round_trip.rs`), metrics.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, Event};
use futures_util::{FutureExt, StreamExt};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use ythread::{CpuApply, Error as WorkError, Metrics, TaskRegistry, Work};

use super::round_trip;
use super::routes::Routes;
use crate::Error;
use crate::nats::config::NatsConfig;
use crate::nats::connect;
use crate::nats::message;
use crate::nats::status::NodeStatus;
use crate::nats::subjects::Subjects;
use crate::portable::portable_task;
use crate::schedule::Stats;

/// The `nats` strategy. See the [module docs](crate::nats).
///
/// Dropping it closes the connection; jobs in flight on nodes finish there, their replies
/// unread.
pub struct NatsExecutor {
    pub(super) config: NatsConfig,
    pub(super) client: Client,
    pub(super) routes: Arc<Routes>,
    pub(super) subjects: Subjects,
    /// Every job's reply subject is `INBOX.ID`.
    pub(super) inbox: String,
    pub(super) registry: TaskRegistry,
    pub(super) stats: Stats,
    pub(super) router: JoinHandle<()>,
    pub(super) runtime: Option<Runtime>,
}

impl NatsExecutor {
    /// Connects to the broker of `config` to run the tasks of `registry` on its nodes.
    ///
    /// # Errors
    /// [`ErrorKind::Start`](crate::ErrorKind::Start) naming the URL if the broker cannot be
    /// reached within a few seconds, or if the runtime or the subscriptions cannot start.
    pub fn connect(config: NatsConfig, registry: TaskRegistry) -> Result<Self, Error> {
        let runtime = connect::runtime("ythread-nats")?;
        let routes = Routes::new();
        let watched = Arc::clone(&routes);
        let options = connect::options("ythread caller", move |event| {
            let routes = Arc::clone(&watched);
            async move {
                match event {
                    Event::Disconnected => routes.lost(),
                    Event::Connected => routes.reconnected(),
                    _ => {}
                }
            }
        });
        let client = runtime.block_on(connect::connect(options, &config))?;
        let subjects = Subjects::new(config.subject_prefix(), registry.digest());
        let inbox = client.new_inbox();
        let url = config.url();
        let subscribed = runtime.block_on(async {
            let replies = client.subscribe(format!("{inbox}.*")).await?;
            let rooms = client.subscribe(subjects.room()).await?;
            client.flush().await?;
            Ok::<_, async_nats::Error>((replies, rooms))
        });
        let (mut replies, mut rooms) = subscribed.map_err(|e| {
            Error::start(format!(
                "could not subscribe on the nats server at {url}: {e}"
            ))
        })?;
        let routing = Arc::clone(&routes);
        let router = runtime.spawn(async move {
            loop {
                tokio::select! {
                    reply = replies.next() => match reply {
                        Some(message) => routing.route(message),
                        None => return,
                    },
                    room = rooms.next() => match room {
                        Some(room) => routing.room(room.payload),
                        None => return,
                    },
                }
            }
        });
        Ok(NatsExecutor {
            config,
            client,
            routes,
            subjects,
            inbox,
            registry,
            stats: Stats::new(),
            router,
            runtime: Some(runtime),
        })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// Asks every node of this registry for its [`NodeStatus`] and returns the answers that
    /// arrive within `wait`, sorted by node. No node: an empty list, at once.
    ///
    /// # Errors
    /// [`ErrorKind::Unavailable`](ythread::ErrorKind::Unavailable) naming the URL if the
    /// question cannot be sent.
    pub fn nodes(&self, wait: Duration) -> Result<Vec<NodeStatus>, WorkError> {
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        let client = &self.client;
        let asked = runtime.block_on(async {
            let inbox = client.new_inbox();
            let mut answers = client.subscribe(inbox.clone()).await?;
            client
                .publish_with_reply(self.subjects.status(), inbox, Default::default())
                .await?;
            client.flush().await?;
            let mut nodes = Vec::new();
            let until = tokio::time::Instant::now() + wait;
            while let Ok(Some(answer)) = tokio::time::timeout_at(until, answers.next()).await {
                if answer.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                    break;
                }
                if let Ok(status) = postcard::from_bytes::<NodeStatus>(&answer.payload) {
                    nodes.push(status);
                }
            }
            Ok::<_, async_nats::Error>(nodes)
        });
        let mut nodes = asked.map_err(|e| {
            WorkError::unavailable(format!(
                "could not ask the nodes on the nats server at {} for their status: {e}",
                self.config.url()
            ))
        })?;
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }

    /// The subject that jobs of `task` go to (a node also takes them on
    /// `PREFIX.DIGEST.at.NODE.TASK` when it said it has room): what a broker's permissions
    /// name to allow or deny running `task`. See `docs/nats.md`, threat model.
    pub fn job_subject(&self, task: &str) -> String {
        self.subjects.task(task)
    }

    /// Publishes job `id` on `subject`, its replies to come to `INBOX.ID`, with its declared
    /// `size` in a header if it has one (see `admission.rs`).
    /// The hand-over waits only while the client's outgoing buffer is full (a connection
    /// that dropped a moment ago), and never past `deadline`. It is tried once first without
    /// the runtime: with room in the buffer it completes at once, and no timer is armed (a
    /// new timer can cost a wake-up of the runtime's thread, on every job).
    pub(super) fn publish(
        &self,
        subject: &str,
        id: u64,
        payload: bytes::Bytes,
        size: Option<u64>,
        deadline: std::time::Instant,
    ) -> Result<(), String> {
        let reply = format!("{}.{id}", self.inbox);
        let mut headers = async_nats::HeaderMap::new();
        if let Some(size) = size {
            headers.insert(message::SIZE_HEADER, size.to_string());
        }
        let mut publish = std::pin::pin!(self.client.publish_with_reply_and_headers(
            subject.to_owned(),
            reply,
            headers,
            payload
        ));
        if let Some(sent) = (&mut publish).now_or_never() {
            return sent.map_err(|e| e.to_string());
        }
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match runtime.block_on(async { tokio::time::timeout(left, publish).await }) {
            Ok(sent) => sent.map_err(|e| e.to_string()),
            Err(_) => {
                Err("the client's outgoing buffer stayed full until the job's deadline".to_owned())
            }
        }
    }
}

impl CpuApply for NatsExecutor {
    /// Sends `work` to a node and blocks until its reply or its deadline.
    ///
    /// Call it from a handler thread, never from inside an async runtime: it blocks on this
    /// strategy's own runtime.
    fn apply(&self, work: &mut dyn Work) {
        let Some(task) = portable_task(work, &self.registry, "nats", "this nats strategy") else {
            return;
        };
        let _in_flight = self.stats.in_flight();
        round_trip::run(self, work, task);
    }

    fn describe(&self) -> String {
        self.config.to_string()
    }

    /// Runs per task; a run's wait is the time until a node took it.
    fn metrics(&self) -> Metrics {
        self.stats.metrics(self.describe(), 0)
    }
}

impl Drop for NatsExecutor {
    fn drop(&mut self) {
        self.router.abort();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for NatsExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsExecutor")
            .field("config", &self.describe())
            .finish()
    }
}
