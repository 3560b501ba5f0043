//! The strategies of `ythread` beyond inline, and the configuration that picks one.
//!
//! | strategy | file | for |
//! |---|---|---|
//! | `inline` | `ythread::Inline` | the default: run work on the handler's thread |
//! | `exclusive` | [`exclusive`] | one fair lock: CPU work one piece at a time |
//! | `rayon[:N]` | [`rayon_pool`] | bounded parallelism on a dedicated pool, short work on express threads ahead of heavy work |
//! | `subprocess[:N]` | [`subprocess`] | isolation in worker processes: crashes, leaks, runaway tasks |
//! | `nats://HOST:PORT` | `nats` (feature `nats`) | more cores than one machine: worker nodes behind a NATS server |
//!
//! The three that queue work share one [waiting line and scheduler](schedule): they learn
//! what each task costs, serve the work predicted shortest first (with aging), run work
//! cheaper than their own hand-off on the handler's thread where that is allowed, and keep
//! [metrics](ythread::Metrics).
//!
//! Build one from configuration with [`ExecutorConfig`]:
//!
//! ```
//! use ythread::{Executor, YieldableThread};
//! use ythread_executors::ExecutorConfig;
//!
//! ythread::task!(fn square(x: u64) -> u64 { x * x });
//!
//! let config: ExecutorConfig = "rayon:2".parse().unwrap(); // or ExecutorConfig::from_env()
//! let executor: Executor = config.build().unwrap();
//! let handle = YieldableThread::spawn(&executor, |y| y.apply(square, 12));
//! assert_eq!(handle.join().unwrap().unwrap(), 144);
//! ```
//!
//! Programs that may use the subprocess or nats strategies call [`init()`] first thing in `main`;
//! it also turns on the checks of [`mistakes`] (work a worker could not run, threads started
//! before `init`).
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `nats` | off | the `nats://HOST:PORT` strategy: `NatsConfig`, `NatsExecutor` and the `nats` module, with the broker's client (`async-nats`) on a small tokio runtime of its own |
//!
//! Without `nats`, the form `nats://HOST:PORT` parses to an error that says to enable it.
//!
//! # Threads: `Send` and `Sync`
//!
//! Every strategy ([`Exclusive`], [`RayonPool`], [`SubprocessPool`], `NatsExecutor`) is
//! `Send + Sync`, as [`ythread::CpuApply`] requires: one strategy serves every handler thread.
//! The configuration values ([`ExecutorConfig`], [`SubprocessConfig`], the [`schedule`]
//! settings, [`WorkerPriority`], [`CopyMode`]), [`PoolStatus`], [`SubprocessBuilder`] and
//! [`Error`] are `Send + Sync` too. `tests/send_sync.rs` in the repository asserts all of
//! this at compile time.
//!
//! # Errors
//!
//! An [`Error`]'s `Display` carries its cause on one line, and `source()` returns `None`;
//! `Debug` adds the kind, so `fn main() -> Result<(), Error>` prints one readable line. The
//! same convention holds for [`ythread::Error`].

#![cfg_attr(docsrs, feature(doc_cfg))]
// Unsafe code lives in the modules that say `#[allow(unsafe_code)]` where they are declared
// (system calls behind safe signatures), and nowhere else; every block argues its SAFETY.
#![deny(unsafe_code)]

// Linux only: said at once, rather than as many errors from the system calls below.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "ythread-executors builds on Linux only: its worker processes and pool priorities use Linux \
     system calls (memfd, process_vm_readv, prctl, SCHED_IDLE); build on Linux, or in a Linux \
     container or VM"
);
pub mod config;
mod error;
pub mod exclusive;
mod init;
pub mod mistakes;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
mod portable;
mod priority;
pub mod rayon_pool;
mod role;
pub mod schedule;
pub mod subprocess;
#[allow(unsafe_code)]
mod sys;
mod units;
mod untrusted;
mod wire;

pub use config::{ENV_VAR, ExecutorConfig, SubprocessConfig};
pub use error::{Error, ErrorKind};
pub use exclusive::Exclusive;
pub use init::{WORKER_ENV, init, init_strict};
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub use nats::{NatsConfig, NatsExecutor};
pub use priority::WorkerPriority;
pub use rayon_pool::{RayonBuilder, RayonPool};
pub use subprocess::{CopyMode, PoolStatus, SubprocessBuilder, SubprocessPool};
pub use units::parse_duration;

/// The example of the crate's README, run as a doctest so that it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
