//! [`WireError`]: a failure inside a worker, in a form that crosses the process boundary,
//! and the error the caller sees for it.
//!
//! A worker's text is data from an untrusted process, and it may end up in a reply a server
//! writes to a client or in a terminal: every string that comes from a worker is cut to
//! [`MAX_WORKER_TEXT`] bytes and stripped of control characters ([`worker_text`]) before it
//! becomes part of an error.

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
            WireError::Panicked { message, location } => WorkError::panicked(
                format!("task `{task}` in {place}"),
                worker_text(&message),
                location.as_deref().map(worker_text),
            ),
            WireError::UnknownTask => WorkError::unknown_task(
                task,
                format!("in {place}, which runs a different build of the program"),
            ),
            WireError::Codec(text) => {
                WorkError::codec(format!("run task `{task}`"), worker_text(&text))
            }
            WireError::Other(text) => WorkError::unavailable(format!(
                "{place} could not run task `{task}`: {}",
                worker_text(&text)
            )),
        }
    }
}

/// The most bytes of a worker's text that reach an error.
pub(crate) const MAX_WORKER_TEXT: usize = 2048;

/// `text` from a worker, safe to show: control characters (newlines, escape sequences) and
/// the invisible characters that reorder text become spaces, and it is cut to
/// [`MAX_WORKER_TEXT`] bytes.
pub(crate) fn worker_text(text: &str) -> String {
    let mut clean = String::with_capacity(text.len().min(MAX_WORKER_TEXT + 16));
    for (at, c) in text.char_indices() {
        if at + c.len_utf8() > MAX_WORKER_TEXT {
            clean.push_str(&format!("... ({} more bytes)", text.len() - at));
            break;
        }
        let reorders = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        clean.push(if c.is_control() || reorders { ' ' } else { c });
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_text_loses_its_control_characters_and_its_excess() {
        assert_eq!(
            worker_text("line\nnext\x1b[31mred\u{202e}"),
            "line next [31mred "
        );
        assert_eq!(worker_text("fine text"), "fine text");
        let long = "é".repeat(MAX_WORKER_TEXT);
        let cut = worker_text(&long);
        assert!(cut.len() < MAX_WORKER_TEXT + 32, "{}", cut.len());
        assert!(cut.ends_with(&format!("({} more bytes)", long.len() - MAX_WORKER_TEXT)));
    }

    #[test]
    fn errors_from_a_worker_carry_only_clean_text() {
        let wire = WireError::Panicked {
            message: "boom\r\nHTTP/1.1 200 OK".to_owned(),
            location: Some("src/x.rs:1\n".to_owned()),
        };
        let error = wire.into_error("t", 7);
        assert_eq!(error.message(), Some("boom  HTTP/1.1 200 OK"));
        assert!(!error.to_string().contains('\n'), "{error}");
        let other = WireError::Other("\x07bell".to_owned()).into_error("t", 7);
        assert!(!other.to_string().contains('\x07'), "{other}");
    }
}
