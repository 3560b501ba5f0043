//! The error type of `ythread-executors`: building a strategy failed.
//!
//! Failures of individual pieces of work are [`ythread::Error`]s; this type covers what can go
//! wrong before any work runs: a configuration that does not parse, or a strategy that cannot
//! start (a worker pool whose processes do not come up or do not pass the handshake).

use std::fmt;

/// What kind of failure an [`Error`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An executor configuration string or value is invalid.
    Config,
    /// The strategy could not start (threads, processes, handshake).
    Start,
}

/// Building an executor failed. Messages are lowercase and say what to do.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A configuration error with its message.
    pub fn config(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Config,
            message: message.into(),
            source: None,
        }
    }

    /// A start failure with its message.
    pub fn start(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Start,
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `source` as the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether this is a configuration error.
    pub fn is_config(&self) -> bool {
        self.kind == ErrorKind::Config
    }

    /// Whether the strategy failed to start.
    pub fn is_start(&self) -> bool {
        self.kind == ErrorKind::Start
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.to_string())
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}
