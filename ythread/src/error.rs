//! The one error type of `ythread`: what can go wrong with a piece of yielded work or with a
//! handler thread as a whole.
//!
//! The error is a small boxed struct with a public [`ErrorKind`] and accessors, so that new
//! kinds and new detail can be added without breaking callers, and so that a `Result<T, Error>`
//! stays one pointer wide on the hot path.
//!
//! # `Display` carries the cause
//!
//! An error's `Display` is the whole story on one line: what failed, why (a codec's cause, a
//! worker's signal, a panic's message and location) and what to do. So
//! [`std::error::Error::source`] returns `None`: reporters that walk the source chain
//! (`anyhow`'s `{:#}`, `eyre`) print each cause once. The details are there for code through
//! the accessors ([`Error::kind`], [`Error::termination`], [`Error::message`], ...).
//! `ythread-executors` follows the same rule.
//!
//! `Debug` is the `Display` text followed by the kind, on one line, because that is what
//! `fn main() -> Result<(), ythread::Error>` prints when `main` fails:
//!
//! ```text
//! Error: the handler was cancelled (kind: Cancelled)
//! ```

use std::fmt;
use std::time::Duration;

/// What kind of failure an [`Error`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The work (or the handler) panicked; see [`Error::message`] and [`Error::location`].
    Panicked,
    /// The worker process running the work died (abort, segfault, kill, out of memory).
    WorkerDied,
    /// The work ran past its deadline and was stopped, or a join timed out.
    TimedOut,
    /// The handler was cancelled through [`JoinHandle::cancel`](crate::JoinHandle::cancel).
    Cancelled,
    /// Closure work was given to a strategy that can only run named, serialisable tasks.
    NotPortable,
    /// No task of that name is registered where the work was sent.
    UnknownTask,
    /// Arguments or results could not be encoded or decoded.
    Codec,
    /// The strategy cannot take work: it is shut down or could not start.
    Unavailable,
}

/// How a worker process ended, as far as the parent could tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Termination {
    /// Killed by this signal number.
    Signal(i32),
    /// Exited on its own with this status code.
    Exited(i32),
    /// The process is gone but its status could not be read.
    Unknown,
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Termination::Signal(sig) => write!(f, "killed by signal {sig} ({})", signal_name(sig)),
            Termination::Exited(code) => write!(f, "exited with status {code}"),
            Termination::Unknown => f.write_str("ended with an unknown status"),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "other signal",
    }
}

/// Why a piece of work or a handler thread failed.
///
/// Every message is lowercase, names what went wrong and, where there is something to do, what
/// to do. Use [`Error::kind`] or the `is_*` predicates to branch on it.
///
/// `Display` is the whole story on one line, the cause included; so `source()` returns `None`
/// (reporters that walk the chain print each cause once), and the details are there for code
/// through the accessors. `Debug` is the `Display` text and the kind on one line, which is what
/// `fn main() -> Result<(), Error>` prints; `{:#?}` lists the kind, the text and the details.
/// `ythread-executors` keeps the same convention.
pub struct Error {
    inner: Box<Inner>,
}

enum Inner {
    Panicked {
        what: String,
        message: String,
        location: Option<String>,
    },
    WorkerDied {
        pid: u32,
        termination: Termination,
        task: String,
        /// The worker's memory limit, when its death is read as having exceeded it.
        memory_limit: Option<u64>,
    },
    TimedOut {
        what: String,
        limit: Duration,
    },
    Cancelled,
    NotPortable {
        strategy: String,
    },
    /// Closure work refused by the strict check of `portable.rs`, whatever the strategy.
    Refused {
        closure: String,
    },
    UnknownTask {
        task: String,
        place: String,
    },
    Codec {
        what: String,
        cause: String,
    },
    Unavailable {
        reason: String,
    },
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inner::Panicked {
                what,
                message,
                location,
            } => write!(
                f,
                "{what} panicked at {}: {message}",
                location.as_deref().unwrap_or("an unknown location")
            ),
            Inner::WorkerDied {
                pid,
                termination,
                task,
                memory_limit,
            } => f.write_str(&died_message(*pid, *termination, task, *memory_limit)),
            Inner::TimedOut { what, limit } => {
                write!(f, "{what} did not finish within {}", humanize(*limit))
            }
            Inner::Cancelled => f.write_str("the handler was cancelled"),
            Inner::NotPortable { strategy } => write!(
                f,
                "closure work cannot leave this process, so the {strategy} strategy cannot run \
                 it; define the work with `ythread::task!` and call `Yielder::apply`, or pick an \
                 in-process strategy"
            ),
            Inner::Refused { closure } => write!(
                f,
                "closure work (`{closure}`) cannot leave this process, and strict mode refuses \
                 work a worker process could not run; define the work with `ythread::task!`, \
                 register it and call `Yielder::apply`, or leave strict mode off"
            ),
            Inner::UnknownTask { task, place } => write!(
                f,
                "task `{task}` is not registered {place}; add it to the `TaskRegistry` given to \
                 init()"
            ),
            Inner::Codec { what, cause } => write!(f, "could not {what}: {cause}"),
            Inner::Unavailable { reason } => f.write_str(reason),
        }
    }
}

fn died_message(pid: u32, termination: Termination, task: &str, limit: Option<u64>) -> String {
    match limit {
        None => format!(
            "worker process {pid} {termination} while running task `{task}`; the job is lost \
             and the pool starts a replacement worker"
        ),
        Some(limit) => format!(
            "worker process {pid} exceeded its memory limit of {} while running task `{task}` \
             (an allocation failed and it was {termination}); the job is lost and the pool \
             starts a replacement worker; raise the pool's `memory` limit if the task needs \
             more",
            humanize_bytes(limit),
            termination = PastTense(termination),
        ),
    }
}

/// "killed by signal 6 (SIGABRT)" reads after "it was"; the other terminations need a verb.
struct PastTense(Termination);

impl fmt::Display for PastTense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Termination::Signal(_) => write!(f, "{}", self.0),
            Termination::Exited(code) => write!(f, "ended with exit status {code}"),
            Termination::Unknown => f.write_str("ended with an unknown status"),
        }
    }
}

/// A byte count in the largest binary unit that keeps it readable: `512 MiB`, `1.5 GiB`.
pub(crate) fn humanize_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut scaled = bytes as f64;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if scaled.fract() == 0.0 {
        format!("{scaled} {}", UNITS[unit])
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

fn humanize(d: Duration) -> String {
    if d.as_secs() > 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{d:?}")
    }
}

impl Error {
    fn new(inner: Inner) -> Self {
        Error {
            inner: Box::new(inner),
        }
    }

    /// Work, or a handler, panicked. `what` names it (`"task `sumn`"`, `"the handler"`).
    pub fn panicked(
        what: impl Into<String>,
        message: impl Into<String>,
        location: Option<String>,
    ) -> Self {
        Self::new(Inner::Panicked {
            what: what.into(),
            message: message.into(),
            location,
        })
    }

    /// The worker process `pid` running `task` ended with `termination`.
    pub fn worker_died(pid: u32, termination: Termination, task: impl Into<String>) -> Self {
        Self::new(Inner::WorkerDied {
            pid,
            termination,
            task: task.into(),
            memory_limit: None,
        })
    }

    /// The worker process `pid` running `task` ended with `termination` after an allocation
    /// failed against its memory limit of `limit` bytes. Its kind is
    /// [`ErrorKind::WorkerDied`]; [`Error::memory_limit`] gives the limit.
    pub fn worker_out_of_memory(
        pid: u32,
        termination: Termination,
        task: impl Into<String>,
        limit: u64,
    ) -> Self {
        Self::new(Inner::WorkerDied {
            pid,
            termination,
            task: task.into(),
            memory_limit: Some(limit),
        })
    }

    /// `what` did not finish within `limit`.
    pub fn timed_out(what: impl Into<String>, limit: Duration) -> Self {
        Self::new(Inner::TimedOut {
            what: what.into(),
            limit,
        })
    }

    /// The handler was cancelled.
    pub fn cancelled() -> Self {
        Self::new(Inner::Cancelled)
    }

    /// Closure work reached `strategy`, which only runs portable tasks.
    pub fn not_portable(strategy: impl Into<String>) -> Self {
        Self::new(Inner::NotPortable {
            strategy: strategy.into(),
        })
    }

    /// Closure work of type `closure` refused by the strict check (see [`crate::portable`]).
    pub(crate) fn closure_refused(closure: &str) -> Self {
        Self::new(Inner::Refused {
            closure: closure.to_owned(),
        })
    }

    /// `task` is unknown at `place` (e.g. `"in this process"`, `"in worker process 42"`).
    pub fn unknown_task(task: impl Into<String>, place: impl Into<String>) -> Self {
        Self::new(Inner::UnknownTask {
            task: task.into(),
            place: place.into(),
        })
    }

    /// Encoding or decoding failed; `what` says what was being done, as in
    /// `"decode the arguments of task `sumn`"`.
    pub fn codec(what: impl Into<String>, cause: impl fmt::Display) -> Self {
        Self::new(Inner::Codec {
            what: what.into(),
            cause: cause.to_string(),
        })
    }

    /// The strategy cannot take work; `reason` says why and what to do.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::new(Inner::Unavailable {
            reason: reason.into(),
        })
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match *self.inner {
            Inner::Panicked { .. } => ErrorKind::Panicked,
            Inner::WorkerDied { .. } => ErrorKind::WorkerDied,
            Inner::TimedOut { .. } => ErrorKind::TimedOut,
            Inner::Cancelled => ErrorKind::Cancelled,
            Inner::NotPortable { .. } | Inner::Refused { .. } => ErrorKind::NotPortable,
            Inner::UnknownTask { .. } => ErrorKind::UnknownTask,
            Inner::Codec { .. } => ErrorKind::Codec,
            Inner::Unavailable { .. } => ErrorKind::Unavailable,
        }
    }

    /// The panic message, for [`ErrorKind::Panicked`].
    pub fn message(&self) -> Option<&str> {
        match &*self.inner {
            Inner::Panicked { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Where the panic happened (`file:line:column`), for [`ErrorKind::Panicked`], when known.
    pub fn location(&self) -> Option<&str> {
        match &*self.inner {
            Inner::Panicked { location, .. } => location.as_deref(),
            _ => None,
        }
    }

    /// The worker's process id, for [`ErrorKind::WorkerDied`].
    pub fn pid(&self) -> Option<u32> {
        match &*self.inner {
            Inner::WorkerDied { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// How the worker ended, for [`ErrorKind::WorkerDied`].
    pub fn termination(&self) -> Option<Termination> {
        match &*self.inner {
            Inner::WorkerDied { termination, .. } => Some(*termination),
            _ => None,
        }
    }

    /// The memory limit in bytes that the worker exceeded, for an [`ErrorKind::WorkerDied`]
    /// made by [`Error::worker_out_of_memory`].
    pub fn memory_limit(&self) -> Option<u64> {
        match &*self.inner {
            Inner::WorkerDied { memory_limit, .. } => *memory_limit,
            _ => None,
        }
    }

    /// The task involved, for [`ErrorKind::UnknownTask`] and [`ErrorKind::WorkerDied`].
    pub fn task(&self) -> Option<&str> {
        match &*self.inner {
            Inner::UnknownTask { task, .. } | Inner::WorkerDied { task, .. } => Some(task),
            _ => None,
        }
    }

    /// Whether the work or handler panicked.
    pub fn is_panic(&self) -> bool {
        self.kind() == ErrorKind::Panicked
    }

    /// Whether the worker process died.
    pub fn is_worker_died(&self) -> bool {
        self.kind() == ErrorKind::WorkerDied
    }

    /// Whether a deadline or a join timeout passed.
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::TimedOut
    }

    /// Whether the handler was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.kind() == ErrorKind::Cancelled
    }

    /// Whether closure work reached a strategy that needs a portable task.
    pub fn is_not_portable(&self) -> bool {
        self.kind() == ErrorKind::NotPortable
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for Error {
    /// The `Display` text and the kind on one line: what `main` prints when it returns this.
    /// `{:#?}` gives the kind, the text and every detail the accessors have, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return write!(f, "{self} (kind: {:?})", self.kind());
        }
        let mut fields = f.debug_struct("Error");
        fields
            .field("kind", &self.kind())
            .field("message", &format_args!("{self}"));
        if let Some(pid) = self.pid() {
            fields.field("pid", &pid);
        }
        if let Some(termination) = self.termination() {
            fields.field("termination", &termination);
        }
        if let Some(limit) = self.memory_limit() {
            fields.field("memory_limit", &limit);
        }
        if let Some(task) = self.task() {
            fields.field("task", &task);
        }
        if let Some(location) = self.location() {
            fields.field("location", &location);
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
    fn messages_are_lowercase_without_trailing_period() {
        let errors = [
            Error::panicked("task `sumn`", "boom", Some("src/lib.rs:1:2".into())),
            Error::worker_died(7, Termination::Signal(libc::SIGKILL), "sumn"),
            Error::worker_out_of_memory(7, Termination::Signal(libc::SIGABRT), "sumn", 512 << 20),
            Error::timed_out("task `sumn`", Duration::from_secs(2)),
            Error::cancelled(),
            Error::not_portable("subprocess"),
            Error::unknown_task("sumn", "in worker process 7"),
            Error::codec("decode the result of task `sumn`", "unexpected end"),
            Error::unavailable("the pool is shut down; build a new executor"),
        ];
        for e in errors {
            let text = e.to_string();
            assert!(text.starts_with(|c: char| !c.is_uppercase()), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
    }

    #[test]
    fn worker_died_names_pid_signal_and_task() {
        let e = Error::worker_died(4242, Termination::Signal(libc::SIGSEGV), "crash");
        assert!(e.is_worker_died());
        assert_eq!(e.pid(), Some(4242));
        assert_eq!(e.termination(), Some(Termination::Signal(libc::SIGSEGV)));
        let text = e.to_string();
        assert!(
            text.contains("4242") && text.contains("SIGSEGV") && text.contains("`crash`"),
            "{text}"
        );
    }

    #[test]
    fn out_of_memory_names_the_limit() {
        let e =
            Error::worker_out_of_memory(9, Termination::Signal(libc::SIGABRT), "big", 512 << 20);
        assert!(e.is_worker_died());
        assert_eq!(e.memory_limit(), Some(512 << 20));
        let text = e.to_string();
        assert!(
            text.contains("worker process 9 exceeded its memory limit of 512 MiB")
                && text.contains("SIGABRT"),
            "{text}"
        );
        assert_eq!(humanize_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(humanize_bytes(100), "100 B");
    }

    #[test]
    fn debug_is_the_display_text_and_the_kind_on_one_line() {
        let e = Error::codec("decode the result of task `sumn`", "unexpected end");
        assert_eq!(
            format!("{e:?}"),
            "could not decode the result of task `sumn`: unexpected end (kind: Codec)"
        );
        assert!(!format!("{e:?}").contains('\n'));
        let pretty = format!(
            "{:#?}",
            Error::worker_died(7, Termination::Signal(6), "sumn")
        );
        assert!(
            pretty.contains("kind: WorkerDied")
                && pretty.contains("pid: 7")
                && pretty.contains("termination: Signal(\n        6,\n    )")
                && pretty.contains("task: \"sumn\""),
            "{pretty}"
        );
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn timeouts_print_whole_seconds_plainly() {
        assert!(
            Error::timed_out("x", Duration::from_secs(2))
                .to_string()
                .ends_with("within 2s")
        );
    }
}
