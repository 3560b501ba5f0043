//! The showcase of `ythread`: the tasks, the sum server and the load client shared by the
//! examples, the integration tests and the benchmarks.

pub mod client;
pub mod echo_floor;
pub mod hostile;
pub mod nats_broker;
pub mod required_tool;
pub mod server;
pub mod tasks;

/// The code blocks of `docs/guide.md`, compiled and run as doctests so the guide stays true.
#[doc = include_str!("../docs/guide.md")]
#[cfg(doctest)]
pub struct GuideDoctests;

/// The code blocks of the README, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
