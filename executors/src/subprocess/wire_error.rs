//! [`WireError`]: a failure inside a worker, in a form that crosses the process boundary,
//! and the error the caller sees for it.

use serde::{Deserialize, Serialize};
use ythread::{Error as WorkError, ErrorKind};

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
    pub(super) fn into_error(self, task: &str, pid: u32) -> WorkError {
        self.into_error_at(task, &format!("worker process {pid}"))
    }

    /// The error the caller sees for `task`, run at `place` (`worker process 42`, `node
    /// host:42`).
    pub(crate) fn into_error_at(self, task: &str, place: &str) -> WorkError {
        match self {
            WireError::Panicked { message, location } => {
                WorkError::panicked(format!("task `{task}` in {place}"), message, location)
            }
            WireError::UnknownTask => WorkError::unknown_task(
                task,
                format!("in {place}, which runs a different build of the program"),
            ),
            WireError::Codec(text) => WorkError::codec(format!("run task `{task}`"), text),
            WireError::Other(text) => {
                WorkError::unavailable(format!("{place} could not run task `{task}`: {text}"))
            }
        }
    }
}
