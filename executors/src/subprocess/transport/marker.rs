//! The worker's start-up settings, which the parent puts in its environment.
//!
//! ```text
//! YTHREAD_SUBPROCESS_WORKER=VERSION;PARENT_PID;SPIN_NANOS;MEMORY_BYTES;MAX_PAYLOAD;ARGS_FD;RESULTS_FD;SOCKET_FD;SERVER_NAME
//! ```
//!
//! The server name comes last because it is a path that may contain `;`.

use std::time::Duration;

use super::protocol::TRANSPORT_VERSION;

/// The environment variable that makes a process a worker.
pub(crate) const MARKER_ENV: &str = "YTHREAD_SUBPROCESS_WORKER";

/// What a worker learns from its environment:
/// `VERSION;PARENT_PID;SPIN_NANOS;MEMORY_BYTES;MAX_PAYLOAD;ARGS_FD;RESULTS_FD;SOCKET_FD;SERVER_NAME`
/// (memory 0: no limit).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) parent: u32,
    pub(crate) spin: Duration,
    /// The worker's memory limit in bytes; 0 for none.
    pub(crate) memory: u64,
    /// The largest argument or result in bytes.
    pub(crate) max_payload: u64,
    /// The descriptor numbers of the inherited args and results regions.
    pub(crate) regions: (i32, i32),
    /// The descriptor number of the worker's end of its socket.
    pub(crate) socket: i32,
    pub(crate) server: String,
}

impl Marker {
    /// The marker's value in the environment.
    pub(crate) fn encode(&self) -> String {
        format!(
            "{TRANSPORT_VERSION};{};{};{};{};{};{};{};{}",
            self.parent,
            self.spin.as_nanos(),
            self.memory,
            self.max_payload,
            self.regions.0,
            self.regions.1,
            self.socket,
            self.server
        )
    }

    /// Parses the environment value; the error says what is wrong with it.
    pub(crate) fn decode(value: &str) -> Result<Self, String> {
        let mut fields = value.splitn(9, ';');
        let mut next = |what: &str| {
            fields
                .next()
                .filter(|f| !f.is_empty())
                .ok_or_else(|| format!("{MARKER_ENV} has no {what}"))
        };
        let version = next("protocol version")?;
        if version != TRANSPORT_VERSION.to_string() {
            return Err(format!(
                "the pool speaks subprocess protocol {version} and this worker speaks \
                 {TRANSPORT_VERSION}; build the parent and the worker program from the same \
                 version of ythread-executors"
            ));
        }
        let parent = next("parent pid")?;
        let spin = next("spin budget")?;
        let memory = next("memory limit")?;
        let max_payload = next("payload limit")?;
        let args_fd = next("args region")?;
        let results_fd = next("results region")?;
        let socket = next("socket")?;
        let server = next("server name")?;
        Ok(Marker {
            parent: parent
                .parse()
                .map_err(|_| format!("{MARKER_ENV} has a bad parent pid `{parent}`"))?,
            spin: Duration::from_nanos(
                spin.parse()
                    .map_err(|_| format!("{MARKER_ENV} has a bad spin budget `{spin}`"))?,
            ),
            memory: memory
                .parse()
                .map_err(|_| format!("{MARKER_ENV} has a bad memory limit `{memory}`"))?,
            max_payload: max_payload
                .parse()
                .map_err(|_| format!("{MARKER_ENV} has a bad payload limit `{max_payload}`"))?,
            regions: (
                args_fd
                    .parse()
                    .map_err(|_| format!("{MARKER_ENV} has a bad region `{args_fd}`"))?,
                results_fd
                    .parse()
                    .map_err(|_| format!("{MARKER_ENV} has a bad region `{results_fd}`"))?,
            ),
            socket: socket
                .parse()
                .map_err(|_| format!("{MARKER_ENV} has a bad socket `{socket}`"))?,
            server: server.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_rejects_other_versions() {
        let marker = Marker {
            parent: 42,
            spin: Duration::from_micros(20),
            memory: 512 << 20,
            max_payload: 1 << 30,
            regions: (5, 6),
            socket: 7,
            server: "/tmp/x;y/socket".to_owned(),
        };
        assert_eq!(Marker::decode(&marker.encode()).unwrap(), marker);
        let err = Marker::decode("999;1;0;0;1;5;6;7;/tmp/s").unwrap_err();
        assert!(err.contains("protocol 999"), "{err}");
        let truncated = format!("{TRANSPORT_VERSION};1");
        assert!(
            Marker::decode(&truncated)
                .unwrap_err()
                .contains("spin budget")
        );
    }
}
