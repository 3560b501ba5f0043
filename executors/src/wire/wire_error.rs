//! [`WireError`]: a failure inside a worker, in a form that crosses the process boundary,
//! and the error the caller sees for it.
//!
//! A worker's text (a subprocess worker's or a nats node's) is data from an untrusted process,
//! and it may end up in a reply a server writes to a client or in a terminal: every string in
//! a [`WireError`] is cleaned (see `untrusted.rs`) when it becomes an error.

use serde::{Deserialize, Serialize};
use ythread::{Error as WorkError, ErrorKind};

use crate::untrusted::{TEXT_LIMIT, clean};

/// A failure inside the worker, in a form that crosses the process boundary.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    /// The task panicked; the worker caught it.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The worker does not know the task.
    UnknownTask,
    /// Arguments or result did not decode or encode; the text says which.
    Codec(String),
    /// Anything else, as its message.
    Other(String),
}

impl WireError {
    pub(crate) fn from_error(error: &WorkError) -> Self {
        match error.kind() {
            ErrorKind::Panicked => WireError::Panicked {
                message: error.message().unwrap_or_default().to_owned(),
                location: error.location().map(str::to_owned),
            },
            ErrorKind::UnknownTask => WireError::UnknownTask,
            ErrorKind::Codec => WireError::Codec(error.to_string()),
            _ => WireError::Other(error.to_string()),
        }
    }

    /// The error the caller sees for `task`, run by worker `pid`.
    pub(crate) fn into_error(self, task: &str, pid: u32) -> WorkError {
        self.into_error_at(task, &format!("worker process {pid}"))
    }

    /// The error the caller sees for `task`, run at `place` (`worker process 42`, `node
    /// host:42`).
    pub(crate) fn into_error_at(self, task: &str, place: &str) -> WorkError {
        match self {
            WireError::Panicked { message, location } => WorkError::panicked(
                format!("task `{task}` in {place}"),
                clean(&message, TEXT_LIMIT),
                location.as_deref().map(|l| clean(l, TEXT_LIMIT)),
            ),
            WireError::UnknownTask => WorkError::unknown_task(
                task,
                format!("in {place}, which runs a different build of the program"),
            ),
            WireError::Codec(text) => {
                WorkError::codec(format!("run task `{task}`"), clean(&text, TEXT_LIMIT))
            }
            WireError::Other(text) => WorkError::unavailable(format!(
                "{place} could not run task `{task}`: {}",
                clean(&text, TEXT_LIMIT)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_from_a_worker_is_cleaned_before_it_is_an_error() {
        let wire = WireError::Panicked {
            message: "boom\r\nHTTP/1.1 200 OK".to_owned(),
            location: Some("x".repeat(10_000)),
        };
        let error = wire.into_error("t", 7);
        assert_eq!(error.message(), Some("boom\\r\\nHTTP/1.1 200 OK"));
        assert!(error.location().unwrap().len() < TEXT_LIMIT + 40);
        assert!(!error.to_string().contains('\n'), "{error}");
        let other = WireError::Other("\x07bell".to_owned()).into_error("t", 7);
        assert!(!other.to_string().contains('\x07'), "{other}");
    }
}
