//! A worker's output: its stdout and stderr go into one pipe, which a thread of the parent
//! forwards to the parent's stderr line by line, keeping the one fact the pool needs about
//! it: whether the worker's output ends with Rust's report of a failed allocation (and the
//! backtrace Rust prints after it when `RUST_BACKTRACE` asks).
//!
//! Why: under a memory limit, an allocation past the limit fails and Rust aborts the worker
//! (SIGABRT) after writing `memory allocation of N bytes failed` to stderr. A SIGABRT alone
//! does not say that: `abort()`, a C `assert`, a panic in a panic all end the same way. The
//! line is written before the abort, so once the worker is reaped and its pipe read to the
//! end, the parent knows which it was, without trusting anything the worker sends on purpose
//! (a worker could write the line and abort to be reported out of memory, which misleads only
//! about itself).
//!
//! Lines are forwarded whole so that workers' lines do not interleave mid-line; a line longer
//! than [`LINE_BOUND`] is forwarded in pieces of that size, so a worker cannot make the parent
//! hold more than that.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// The longest line held back before it is forwarded in pieces.
const LINE_BOUND: usize = 8 << 10;

/// What Rust writes to stderr before it aborts on a failed allocation:
/// `memory allocation of N bytes failed`.
const ALLOC_PREFIX: &[u8] = b"memory allocation of ";
const ALLOC_SUFFIX: &[u8] = b" bytes failed";

/// The parent's view of one worker's output.
pub(super) struct Output {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    ended: Condvar,
    /// Where forwarded output goes: the parent's stderr.
    sink: fn(&[u8]),
}

#[derive(Default)]
struct State {
    /// What the whole lines forwarded so far end with.
    tail: Tail,
    /// Whether the pipe was read to its end: every process that held it is gone.
    ended: bool,
}

/// A pipe for a worker's stdout and stderr: the parent's end to read and the worker's to
/// write, both close-on-exec (the worker's copy is made by the spawn's `dup2`).
pub(super) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    crate::sys::pipe_cloexec()
}

impl Output {
    /// Starts forwarding what arrives on `read`, the parent's end of worker `pid`'s pipe,
    /// until every writer is gone.
    pub(super) fn forward(read: OwnedFd, pid: u32) -> io::Result<Output> {
        Self::forward_to(read, pid, to_stderr)
    }

    fn forward_to(read: OwnedFd, pid: u32, sink: fn(&[u8])) -> io::Result<Output> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ended: Condvar::new(),
            sink,
        });
        let forwarder = Arc::clone(&shared);
        thread::Builder::new()
            .name(format!("ythread-out-{pid}"))
            .stack_size(64 << 10)
            .spawn(move || forwarder.forward(File::from(read)))?;
        Ok(Output { shared })
    }

    /// Whether the worker's output ends with Rust's report of a failed allocation (and the
    /// backtrace Rust may print after it), once its output is read to the end (the worker is reaped, so that is at once unless a process it
    /// started in another process group still holds the pipe); `None` if that takes past
    /// `deadline`.
    pub(super) fn ended_with_failed_allocation(&self, deadline: Instant) -> Option<bool> {
        let mut state = self.shared.state.lock();
        while !state.ended {
            if self
                .shared
                .ended
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                return None;
            }
        }
        Some(state.tail != Tail::Other)
    }
}

impl Shared {
    fn forward(&self, mut pipe: File) {
        let mut chunk = vec![0u8; LINE_BOUND];
        let mut pending = Vec::with_capacity(LINE_BOUND);
        loop {
            let read = match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            pending.extend_from_slice(&chunk[..read]);
            let whole = match pending.iter().rposition(|&b| b == b'\n') {
                Some(end) => end + 1,
                None if pending.len() >= LINE_BOUND => pending.len(),
                None => continue,
            };
            (self.sink)(&pending[..whole]);
            let mut tail = self.state.lock().tail;
            if whole == pending.len() && pending.last() != Some(&b'\n') {
                // A piece of an overlong line: no line of Rust's reports.
                tail = Tail::Other;
            } else {
                for line in pending[..whole].split_inclusive(|&b| b == b'\n') {
                    tail = tail.then(line);
                }
            }
            pending.drain(..whole);
            self.state.lock().tail = tail;
        }
        drop(pipe);
        if !pending.is_empty() {
            (self.sink)(&pending);
        }
        let mut state = self.state.lock();
        // Output after the last whole line means that line was not the last thing written.
        if !pending.is_empty() {
            state.tail = Tail::Other;
        }
        state.ended = true;
        self.ended.notify_all();
    }
}

/// A parent whose stderr is gone loses the worker's output, as the worker itself would have;
/// the pipe is still read, so the worker never blocks on it.
fn to_stderr(bytes: &[u8]) {
    let _ = io::stderr().lock().write_all(bytes);
}

/// What a worker's output ends with, line by line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Tail {
    /// Anything else.
    #[default]
    Other,
    /// `memory allocation of N bytes failed`.
    FailedAllocation,
    /// That, then a backtrace (`stack backtrace:` and whatever follows it, frames and notes).
    Backtrace,
}

impl Tail {
    /// The state after `line` (with its newline).
    fn then(self, line: &[u8]) -> Tail {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if is_failed_allocation(line) {
            return Tail::FailedAllocation;
        }
        match self {
            Tail::FailedAllocation if line == b"stack backtrace:" => Tail::Backtrace,
            Tail::Backtrace => Tail::Backtrace,
            _ => Tail::Other,
        }
    }
}

/// Whether `line` is `memory allocation of N bytes failed`.
fn is_failed_allocation(line: &[u8]) -> bool {
    line.strip_prefix(ALLOC_PREFIX)
        .and_then(|rest| rest.strip_suffix(ALLOC_SUFFIX))
        .is_some_and(|digits| !digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(output: &[u8]) -> Tail {
        output
            .split_inclusive(|&b| b == b'\n')
            .fold(Tail::Other, Tail::then)
    }

    #[test]
    fn only_output_that_ends_with_rusts_report_of_a_failed_allocation_counts() {
        let failed = Tail::FailedAllocation;
        assert_eq!(
            tail_of(b"started\nmemory allocation of 1073741824 bytes failed\n"),
            failed
        );
        assert_eq!(
            tail_of(
                b"memory allocation of 8 bytes failed\nstack backtrace:\n   0: std::alloc\n\
                  note: Some details are omitted\n"
            ),
            Tail::Backtrace
        );
        assert_eq!(
            tail_of(b"memory allocation of 8 bytes failed\nthen more\n"),
            Tail::Other
        );
        assert_eq!(tail_of(b"stack backtrace:\n   0: main\n"), Tail::Other);
        assert_eq!(
            tail_of(b"memory allocation of many bytes failed\n"),
            Tail::Other
        );
        assert_eq!(tail_of(b"Aborted\n"), Tail::Other);
    }

    #[test]
    fn the_last_line_is_known_once_every_writer_is_gone() {
        let (read, write) = pipe().unwrap();
        let output = Output::forward_to(read, 0, |_| {}).unwrap();
        let mut writer = File::from(write);
        writer
            .write_all(b"a line\nmemory allocation of 64 bytes failed\n")
            .unwrap();
        drop(writer);
        let bound = Instant::now() + std::time::Duration::from_secs(60);
        assert_eq!(output.ended_with_failed_allocation(bound), Some(true));

        let (read, write) = pipe().unwrap();
        let output = Output::forward_to(read, 0, |_| {}).unwrap();
        let mut writer = File::from(write);
        writer
            .write_all(b"memory allocation of 64 bytes failed\nAborted")
            .unwrap();
        drop(writer);
        assert_eq!(output.ended_with_failed_allocation(bound), Some(false));
    }
}
