//! The `tracing` target of the pool's lifecycle events: workers started, replaced, killed,
//! timed out, and jobs cancelled. One name for every file of the pool, so that a subscriber
//! filters them with one directive (`ythread::subprocess=info`).

/// The `tracing` target of the pool's lifecycle events.
pub(super) const EVENTS: &str = "ythread::subprocess";
