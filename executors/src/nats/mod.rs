//! `nats://HOST:PORT`: work shipped to worker nodes through a NATS server.
//!
//! Each yielded task goes out as one request on `PREFIX.DIGEST.task.TASK` (see `subjects.rs`):
//! the registry digest in the subject means a node built from other tasks never receives it,
//! and a task no node serves gets the broker's "no responders" at once. Nodes are this same
//! program started with [`WORKER_ENV`](crate::WORKER_ENV)` = nats://HOST:PORT`: [`init`]
//! serves the registry's tasks instead of returning, through the node's own local strategy
//! (`YTHREAD_EXECUTOR`, `subprocess:8` for crash isolation on the node, say). The nodes of one
//! registry form one queue group, so each job goes to one of them.
//!
//! Trade-offs:
//! - A round trip crosses the broker twice: tens of µs on one machine, plus the network's
//!   latency between machines, plus about what the subprocess strategy pays per byte. It pays
//!   for work of milliseconds or more, or for more cores than one machine has.
//! - The job and reply bodies are the subprocess strategy's own (the crate's `wire`, see `message.rs`): one encoding
//!   for work that leaves the process.
//! - Core NATS delivers at most once: a job whose node dies is lost and fails at its deadline,
//!   naming the node. A node never queues jobs beyond what its strategy runs at once (it
//!   answers "busy" and the caller sends the job again), so a dying node loses only those.
//! - A job bigger than the broker's `max_payload` (1 MiB by default) fails at once with an
//!   error naming the limit; it is not chunked (see `docs/nats.md` for why).
//! - The async client lives on a runtime of one thread that the strategy owns; handler
//!   threads block on their reply as they do with every other strategy.
//! - What comes back from a node is untrusted: its text is bounded and stripped of control
//!   characters (`untrusted.rs`), and the run time it reports is capped by the caller's own
//!   measure of the round trip before the cost model learns it. What a node runs is decided
//!   by the subject, so the broker's permissions limit it (see `docs/nats.md`, threat model).
//!
//! # Layout
//!
//! `config` ← the shared files ← {`caller/`, `node/`}: the caller and the node meet only in
//! what both put on the wire, and neither imports the other. Nothing here imports the crate's
//! configuration, the subprocess strategy, or [`init`]: `init` reads `YTHREAD_WORKER` and
//! `YTHREAD_EXECUTOR`, builds the node's local strategy and hands it to the node as a value.
//!
//! | file | concern |
//! |---|---|
//! | `config.rs` | [`NatsConfig`]: `nats://HOST:PORT[,timeout=D][,subject=PREFIX]` |
//! | `connect.rs` | the runtime and the reconnecting client both sides use |
//! | `subjects.rs` | subject names: prefix, registry digest, task |
//! | `message.rs` | what a node answers: taken, busy, the reply |
//! | `status.rs` | [`NodeStatus`]: what a node reports about itself |
//! | `untrusted.rs` | a node's text as data: bounded, control characters escaped |
//! | `caller/executor.rs` | [`NatsExecutor`]: connecting, sending a job, metrics |
//! | `caller/routes.rs` | the caller's one reply subscription, routed to waiting threads |
//! | `caller/round_trip.rs` | one job: send, retry when turned away, one deadline |
//! | `node/serve.rs` | the worker node: serve, bound, run every job off the I/O thread |
//! | `node/admission.rs` | what a node checks first: the subject's task is the body's; the size |
//! | `node/drain.rs` | how a node stops: drain on SIGTERM within its bound, whatever its jobs do |
//! | `node/identity.rs` | a node's `HOST:PID` |
//!
//! [`init`]: crate::init()

mod caller;
mod config;
mod connect;
mod message;
pub(crate) mod node;
mod status;
mod subjects;
mod untrusted;

pub use self::caller::NatsExecutor;
pub use self::config::{DEFAULT_SUBJECT, DEFAULT_TIMEOUT, NatsConfig};
pub use self::node::{EXIT_ABANDONED, UNANNOUNCED_BELOW};
pub use self::status::NodeStatus;
