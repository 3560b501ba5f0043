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
//! Tasks are named (`ythread::task!`) and looked up in the worker's [`TaskRegistry`](ythread::TaskRegistry); closures
//! cannot leave the process and fail with `NotPortable`. A panic in a task is caught in the
//! worker and comes back as `Panicked` with its message and location.
//!
//! Isolation holds against a compromised worker too (code that took over a worker through a
//! decoder exploit, say): the parent reads worker bytes only through bounded, checked paths,
//! a reply that breaks the protocol kills and replaces its worker, and replies are numbered
//! per job. What such a worker can still do is in `docs/subprocess.md`, "Threat model".
//!
//! Workers are this program started again: `main` must call [`init`] first.
//!
//! # Layout
//!
//! Three rooms over one floor, so that the two sides of the boundary between processes never
//! import each other: `settings` ← `transport/` ← {`pool/`, `worker/`}. The parent's side
//! (`pool/`) and the child's (`worker/`) share only what both put on the wire; the job and
//! reply bodies themselves are the crate's `wire` module, which the `nats` strategy sends too.
//! Nothing here imports the crate's configuration or [`init`]: settings come down as
//! [`SubprocessConfig`] values, and `init` calls into `worker/`, never the reverse.
//!
//! | file | concern |
//! |---|---|
//! | `settings.rs` | [`SubprocessConfig`], its text, the defaults and bounds, [`CopyMode`] |
//! | `transport/marker.rs` | the worker's start-up settings in its environment |
//! | `transport/protocol.rs` | handshake and the messages around the bodies of `crate::wire` |
//! | `transport/payload.rs` | arguments and results inline, in shared memory or apart, `max_payload` |
//! | `transport/shm.rs` | the workers' shared-memory regions (memfd) |
//! | `transport/direct.rs` | direct copies of large byte strings between the parent and a worker |
//! | `transport/socket.rs` | the worker's socket, read without trusting the worker |
//! | `transport/frame.rs` | length-prefixed, numbered frames in packets |
//! | `transport/receive.rs` | spin-then-block receive, ended by the worker's death |
//! | `pool/strategy.rs` | [`SubprocessPool`]: dispatching a job, giving the worker back; [`PoolStatus`] |
//! | `pool/builder.rs` | [`SubprocessBuilder`]: settings, checks, start-up |
//! | `pool/supervisor.rs` | the thread that starts, replaces, times and stops workers |
//! | `pool/launch.rs` | starting a worker and checking its handshake, with a timeout |
//! | `pool/dispatch.rs` | the pool's members in their lanes, over the shared waiting line |
//! | `pool/process.rs` | one worker as the parent sees it: a job round trip, reaping |
//! | `pool/job.rs` | a job's start: arming its deadline, arguments sent by direct copies |
//! | `pool/deaths.rs` | noticing workers that die while idle (pidfds) |
//! | `pool/output.rs` | a worker's stdout and stderr, forwarded; what its last line said |
//! | `pool/deadline.rs` | per-job deadlines |
//! | `pool/events.rs` | the `tracing` target of the pool's lifecycle events |
//! | `worker/serve.rs` | the worker's serve loop, entered from [`init`]; dying with the parent |
//! | `worker/answer.rs` | the worker's side of a job, and of direct copies |

mod pool;
mod settings;
mod transport;
pub(crate) mod worker;

pub use self::pool::{PoolStatus, SubprocessBuilder, SubprocessPool};
pub use self::settings::{
    CopyMode, DEFAULT_EXPRESS, DEFAULT_MAX_PAYLOAD, DEFAULT_REGULAR_PRIORITY,
    DEFAULT_SHUTDOWN_GRACE, DEFAULT_SPIN, DEFAULT_START_TIMEOUT, MAX_EXPRESS, MIN_MAX_PAYLOAD,
    MIN_MEMORY, SubprocessConfig,
};
/// Kept here too, where they were first defined, so that `subprocess::init` keeps working.
pub use crate::init::{WORKER_ENV, init, init_strict};
