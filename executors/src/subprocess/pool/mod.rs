//! The parent's side: the strategy, its builder, the supervisor thread that keeps its workers
//! running, and one worker as the parent sees it. Imports `settings` and `transport/`; never
//! `worker/`, whose code runs in another process.

mod builder;
mod deadline;
#[allow(unsafe_code)] // pidfd_open and poll, for deaths noticed while idle
mod deaths;
mod dispatch;
mod events;
mod job;
mod launch;
mod output;
mod process;
mod strategy;
mod supervisor;

pub use self::builder::SubprocessBuilder;
pub use self::strategy::{PoolStatus, SubprocessPool};
