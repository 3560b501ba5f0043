//! Threads that do their own blocking I/O and *yield* their heavy CPU work.
//!
//! A handler runs on its own OS thread as a stackful coroutine. It reads and writes its socket
//! directly, like any thread-per-request code, but whenever it has heavy CPU work it yields a
//! work descriptor instead of calling the function. The thread's driver hands the descriptor to
//! a strategy chosen by configuration (run it here, behind one fair lock, on a rayon pool, in a
//! pool of worker processes) and resumes the handler with the result. The handler never names
//! the strategy. This is David Beazley's "yieldable threads" thought experiment, made real.
//!
//! ```
//! use ythread::{Executor, YieldableThread};
//!
//! ythread::task! {
//!     /// Sums 1..=n the slow way: the CPU work of the example server.
//!     pub fn sumn(n: u64) -> u64 {
//!         (1..=n).fold(0, |acc, i| acc + std::hint::black_box(i))
//!     }
//! }
//!
//! let executor = Executor::inline(); // or one built from config by `ythread-executors`
//! let handler = YieldableThread::spawn(&executor, |y| {
//!     // ... read the request with blocking I/O ...
//!     let total = y.apply(sumn, 25_000)?; // yield the CPU work, get its result
//!     // ... write the reply with blocking I/O ...
//!     Ok::<u64, ythread::Error>(total)
//! });
//! assert_eq!(handler.join().unwrap().unwrap(), 312_512_500);
//! ```
//!
//! # Pieces
//!
//! | piece | what it is |
//! |---|---|
//! | [`task!`] / [`Task`] | a named function with serde argument and result: portable work |
//! | [`YieldableThread`] / [`Builder`] | starts a handler on its own thread and coroutine stack |
//! | [`Yielder`] | the yield point: [`Yielder::apply`] for tasks, [`Yielder::run`] for closures |
//! | [`CpuApply`] / [`Executor`] | a strategy, and the shareable handle that carries one |
//! | [`Inline`] | the default strategy: run the work on the handler's thread |
//! | [`TaskRegistry`] | tasks by name, so another process of the same program can run them |
//! | [`ByteSink`] / [`Encoded`] | where encoded work goes, and encodings whose large byte strings travelled apart |
//! | [`CostModel`] | what each task has cost, by size, so strategies can predict the next call |
//! | [`Metrics`] | a snapshot of what a strategy ran, waited on and learned, per task |
//! | [`Error`] / [`ErrorKind`] | every failure, with predicates and actionable messages |
//! | [`portable`] | the check, turned on by `ythread_executors::init`, that reports work a worker process could not run |
//!
//! The other strategies and the configuration that picks one live in `ythread-executors`.
//!
//! # Feature flags
//!
//! `ythread` has no optional features: the core is small, and everything optional (the
//! strategies beyond inline and their configuration, the `nats` strategy behind its own
//! feature) lives in `ythread-executors`.
//!
//! # Threads: `Send` and `Sync`
//!
//! | type | `Send` | `Sync` | why |
//! |---|---|---|---|
//! | [`Executor`], [`Inline`], [`TaskRegistry`], [`CostModel`], [`Error`], [`Metrics`] | yes | yes | shared by every handler thread |
//! | [`JoinHandle<R>`] | yes | yes | wait for or cancel a handler from any thread (`R: Send`) |
//! | [`Builder`], [`Cancellation`], [`CancelGuard`], [`Encoded`] | yes | yes | plain data and shared state |
//! | [`Yielder`] | no | no | it is the handler's coroutine: it cannot leave the handler's stack |
//!
//! A strategy ([`CpuApply`]) must be `Send + Sync`; a [`Task`] is `Copy + Send + Sync`.
//! `tests/send_sync.rs` in the repository asserts each line of this table at compile time.
//!
//! # Errors
//!
//! [`Error`]'s `Display` carries the cause on one line and `source()` returns `None`; `Debug`
//! adds the kind, so `fn main() -> Result<(), ythread::Error>` prints one readable line.
//! `ythread-executors` keeps the same convention.
//!
//! # Panics
//!
//! One policy everywhere: a panic is caught at the boundary of what panicked and comes back as
//! an [`Error`] one level up. A panic in yielded work comes back at the yield point as
//! [`ErrorKind::Panicked`] with its message and location, and the handler goes on (such panics
//! are not printed: the error carries them). A panic in a handler ends that thread only;
//! [`JoinHandle::join`] returns it. Cancellation unwinds the handler with a private payload
//! that is not a panic; a handler that catches unwinds itself must let it pass.
//!
//! Locations come from a panic hook that ythread installs (chained to the previous one) the
//! first time work runs. A program that sets its own hook *after* that replaces it: work
//! panics then still come back as errors, but print as usual and report no location. Set your
//! hook before the first yieldable thread starts and ythread chains to it.
//!
//! # Stacks
//!
//! The handler's frames live on a coroutine stack of [`DEFAULT_STACK_SIZE`] usable bytes
//! (change it with [`Builder::stack_size`]); inline work runs on the OS thread's own stack.
//! Coroutine stacks come from a process-wide pool, so spawning does not map a fresh stack each
//! time. A handler that overflows its coroutine stack hits a guard page and the process dies
//! with SIGSEGV, like any stack overflow, after one line on stderr that names the stack size:
//! `ythread: a handler overflowed its coroutine stack of 1048576 bytes; give it a larger one
//! with ythread::Builder::stack_size`. Raise the size with [`Builder::stack_size`]; the pages
//! are committed only as the handler touches them, so a generous size costs address space,
//! not memory.

mod cancel;
mod cost;
mod decode;
mod driver;
mod duration;
mod encoded;
mod error;
mod executor;
mod handler_state;
mod join;
mod metrics;
mod os_thread;
mod overflow;
pub mod portable;
mod registry;
mod sink;
mod spin;
mod stack_pool;
mod task;
mod thread;
mod unwind;
mod work;
mod yielder;

pub use cancel::{CancelGuard, Cancellation};
pub use cost::{CostModel, CostSize, LearnedCost};
pub use duration::parse_duration;
pub use encoded::{Apart, BadGaps, Encoded};
pub use error::{Error, ErrorKind, Termination};
pub use executor::{CpuApply, Executor, Inline};
pub use join::JoinHandle;
pub use metrics::{Metrics, TaskMetrics};
pub use os_thread::{DEFAULT_IDLE_TIMEOUT, MAX_PARKED_THREADS, parked_threads};
pub use registry::TaskRegistry;
pub use sink::{ByteSink, SinkRefused};
pub use task::Task;
pub use thread::{Builder, DEFAULT_STACK_SIZE, YieldableThread};
pub use unwind::payload_message;
pub use work::Work;
pub use yielder::Yielder;

/// The example of the crate's README, run as a doctest so that it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
