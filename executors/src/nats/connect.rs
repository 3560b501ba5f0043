//! The runtime and client that callers and nodes both start: one small tokio runtime per
//! strategy or node, and an async-nats client that reconnects quickly and forever.

use std::time::Duration;

use async_nats::{Client, ConnectOptions};
use tokio::runtime::Runtime;

use super::config::NatsConfig;
use crate::Error;

/// How long connecting may take before a caller's build or a node's start fails.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest pause between reconnection attempts. The client's default backs off to
/// seconds; a short fixed ceiling makes jobs flow again well within 2 s of the broker's return,
/// for the price of a connection attempt every quarter second while it is down.
const RECONNECT_CEILING: Duration = Duration::from_millis(250);

/// A runtime of one I/O thread (`name`), plus blocking threads for nodes.
pub(crate) fn runtime(name: &str) -> Result<Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| Error::start(format!("could not start the {name} runtime")).with_source(e))
}

/// The client options both sides use, with `events` called on connection changes.
pub(crate) fn options<F, Fut>(name: &str, events: F) -> ConnectOptions
where
    F: Fn(async_nats::Event) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    ConnectOptions::new()
        .name(name)
        .connection_timeout(CONNECT_TIMEOUT)
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
            (Duration::from_millis(20) * attempts).min(RECONNECT_CEILING)
        })
        .event_callback(events)
}

/// Connects within [`CONNECT_TIMEOUT`]; the error names the URL and says what to do.
pub(crate) async fn connect(options: ConnectOptions, config: &NatsConfig) -> Result<Client, Error> {
    let url = config.url();
    let refused = |why: String| {
        Error::start(format!(
            "could not reach the nats server at {url}: {why}; start one (`nats-server -a {} -p \
             {}`) or fix the address",
            config.host, config.port
        ))
    };
    match tokio::time::timeout(
        CONNECT_TIMEOUT + Duration::from_secs(1),
        options.connect(&url),
    )
    .await
    {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(refused(e.to_string())),
        Err(_) => Err(refused(format!("no answer within {CONNECT_TIMEOUT:?}"))),
    }
}
