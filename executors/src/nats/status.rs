//! What a node reports about itself when a caller asks ([`NatsExecutor::nodes`]): who it is,
//! what it runs, how much it has run, and its local strategy's metrics.
//!
//! Every node of a registry listens on `PREFIX.DIGEST.status` (no queue group, so each one
//! answers); the caller collects the answers that arrive within the time it was given.
//!
//! [`NatsExecutor::nodes`]: super::NatsExecutor::nodes

use serde::{Deserialize, Serialize};

/// One node's account of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeStatus {
    /// `HOST:PID`, as errors name the node.
    pub node: String,
    /// The node's own strategy, in its configuration form.
    pub strategy: String,
    /// The most jobs it runs at once.
    pub capacity: usize,
    /// Jobs running now.
    pub in_flight: usize,
    /// Jobs it has run.
    pub served: u64,
    /// Jobs it answered "busy" because it was full.
    pub turned_away: u64,
    /// Its local strategy's metrics, as `Metrics` displays them.
    pub metrics: String,
}
