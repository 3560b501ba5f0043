//! The error type of `ythread-executors`: building a strategy failed.
//!
//! Failures of individual pieces of work are [`ythread::Error`]s; this type covers what can go
//! wrong before any work runs: a configuration that does not parse, or a strategy that cannot
//! start (a worker pool whose processes do not come up or do not pass the handshake).
//!
//! # One convention for both crates: `Display` carries the cause
//!
//! An error's `Display` is the whole story on one line: what failed, why (the underlying
//! cause, when there is one, after a colon) and what to do. [`std::error::Error::source`]
//! therefore returns `None`, so that reporters that walk the source chain (`anyhow`'s `{:#}`,
//! `eyre`) do not print the cause twice; the cause stays reachable for code that needs to
//! branch on it through [`Error::cause`]. [`ythread::Error`] follows the same rule.
//!
//! `Debug` is the `Display` text followed by the kind, on one line, because that is what
//! `fn main() -> Result<(), Error>` prints when `main` fails:
//!
//! ```text
//! Error: invalid executor `rayon:0`: `rayon` needs a count of at least 1; ... (kind: Config)
//! ```
//!
//! Trade-off: a reporter that prints only the top error's `Display` gets everything, and
//! one that walks the chain gets no more; code that wants the typed cause asks for it.

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
///
/// `Display` is the whole story on one line, the underlying cause included; so `source()`
/// returns `None` (reporters that walk the chain print each cause once) and [`Error::cause`]
/// gives the typed cause to code that branches on it. `Debug` is the `Display` text and the
/// kind on one line, which is what `fn main() -> Result<(), Error>` prints. `ythread::Error`
/// keeps the same convention.
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

    /// Keeps `source` as the underlying cause: `Display` appends it after a colon and
    /// [`Error::cause`] returns it (see [`Error`] for why `source()` does not).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The underlying cause given to [`Error::with_source`], such as the `io::Error` of a
    /// process that could not start, for code that branches on it (downcast it with
    /// `downcast_ref`). Its text is already part of this error's `Display`.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
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
    /// The `Display` text and the kind on one line: what `main` prints when it returns this.
    /// `{:#?}` gives the kind, the text and the cause's own `Debug`, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return write!(f, "{self} (kind: {:?})", self.kind);
        }
        let mut fields = f.debug_struct("Error");
        fields
            .field("kind", &self.kind)
            .field("message", &format_args!("{self}"));
        if let Some(cause) = &self.source {
            fields.field("cause", cause);
        }
        fields.finish()
    }
}

/// The cause is in `Display`, so `source()` keeps its default `None` (see the module docs).
impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_in_display_once_and_reachable_typed_but_not_as_source() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no exec permission");
        let e = Error::start("could not start a worker process").with_source(io);
        assert_eq!(
            e.to_string(),
            "could not start a worker process: no exec permission"
        );
        assert!(std::error::Error::source(&e).is_none());
        let cause = e.cause().and_then(|c| c.downcast_ref::<std::io::Error>());
        assert_eq!(
            cause.map(std::io::Error::kind),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        assert_eq!(
            format!("{e:?}"),
            "could not start a worker process: no exec permission (kind: Start)"
        );
        assert!(Error::config("bad").cause().is_none());
        let pretty = format!("{e:#?}");
        assert!(
            pretty.contains("kind: Start") && pretty.contains("kind: PermissionDenied"),
            "{pretty}"
        );
    }
}
