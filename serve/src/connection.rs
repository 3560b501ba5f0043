//! [`Connection`]: what a turn reads from and writes to, with every wait bounded.
//!
//! Reads go through a buffer that outlives the turn, so that input read past the end of one
//! request (pipelined, or the start of the next) is the next turn's; the layer starts that
//! turn at once instead of resting the connection. A connection rests only with nothing
//! buffered, and then holds no buffer at all, so that a resting connection costs a few
//! hundred bytes.
//!
//! The reads of one turn share a deadline: [`ServeConfig::turn_deadline`] from the arrival of
//! the turn's first byte, however the rest is trickled. Only while that deadline is nearer
//! than the idle timeout does a read change the socket's receive timeout (one system call),
//! and the turn's end sets it back. Writes are bounded by the write timeout, inherited from
//! the listening socket.
//!
//! [`ServeConfig::turn_deadline`]: crate::ServeConfig::turn_deadline

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::state::ConnectionState;

/// At most this much input is read and dropped by [`Connection::close_after_reply`].
pub const DRAIN_LIMIT: usize = 64 * 1024;
/// How long, in all, [`Connection::close_after_reply`] waits for the client's input to stop.
pub const DRAIN_TIME: Duration = Duration::from_secs(1);

/// How far past its deadline a turn's read may return, rather than shorten the socket's
/// timeout for every read.
const TIMEOUT_SLACK: Duration = Duration::from_millis(10);

/// The timeouts every turn of one server keeps to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) idle: Duration,
    pub(crate) turn: Duration,
}

/// Input read but not yet consumed by a turn, kept between turns.
#[derive(Debug, Default)]
pub(crate) struct InputBuffer {
    bytes: Vec<u8>,
    start: usize,
    /// When the last read that added bytes returned.
    read_at: Option<Instant>,
}

impl InputBuffer {
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.bytes.len()
    }

    /// Reads what `socket` has now, up to `max` bytes, without waiting (see
    /// [`crate::sys::read_now`]); when it brings bytes, they arrived now.
    pub(crate) fn read_now(&mut self, socket: &TcpStream, max: usize) -> io::Result<usize> {
        let old = self.bytes.len();
        self.bytes.resize(old + max, 0);
        let outcome = loop {
            match crate::sys::read_now(socket, &mut self.bytes[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        self.bytes.truncate(old + *outcome.as_ref().unwrap_or(&0));
        if matches!(outcome, Ok(len) if len > 0) {
            self.read_at = Some(Instant::now());
        }
        outcome
    }

    /// Gives the memory back while the connection rests.
    pub(crate) fn release(&mut self) {
        *self = InputBuffer::default();
    }
}

/// One turn's view of its connection: buffered reads, blocking writes, and the marks that
/// tell the layer when the turn's work is in progress.
#[derive(Debug)]
pub struct Connection<'a> {
    socket: &'a TcpStream,
    input: &'a mut InputBuffer,
    state: &'a ConnectionState,
    timeouts: Timeouts,
    /// When the turn's reads must be done: the turn deadline from its first byte.
    deadline: Instant,
    /// Whether the socket's receive timeout is shorter than the idle timeout now.
    shortened: bool,
    /// Bytes consumed in this turn, so that a turn that takes none cannot loop.
    consumed: usize,
}

impl<'a> Connection<'a> {
    pub(crate) fn new(
        socket: &'a TcpStream,
        input: &'a mut InputBuffer,
        state: &'a ConnectionState,
        timeouts: Timeouts,
    ) -> Self {
        // Buffered input arrived with the last read; otherwise the first byte is waiting in
        // the socket now.
        let first_byte = match input.read_at {
            Some(at) if !input.is_empty() => at,
            _ => Instant::now(),
        };
        Connection {
            socket,
            input,
            state,
            timeouts,
            deadline: first_byte + timeouts.turn,
            shortened: false,
            consumed: 0,
        }
    }

    /// The socket, for what the buffered calls do not cover (its peer's address, options).
    /// Reading from it directly bypasses the buffer and the deadline.
    pub fn socket(&self) -> &TcpStream {
        self.socket
    }

    /// The input read but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.input.bytes[self.input.start..]
    }

    /// Marks the first `len` buffered bytes as used: the next turn will not see them.
    ///
    /// # Panics
    /// If fewer than `len` bytes are buffered.
    pub fn consume(&mut self, len: usize) {
        assert!(
            len <= self.buffered().len(),
            "consumed more than is buffered"
        );
        self.input.start += len;
        self.consumed += len;
        if self.input.is_empty() {
            self.input.bytes.clear();
            self.input.start = 0;
        }
    }

    /// Bytes consumed in this turn so far.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// Reads once more from the socket, at most `max` bytes, appending them to
    /// [`Connection::buffered`]; returns how many came, 0 at end-of-stream. Waits at most until
    /// the turn's deadline.
    ///
    /// # Errors
    /// `TimedOut` when the turn's deadline (or the idle timeout) passes first, and the
    /// socket's errors (a reset, a shutdown by the layer).
    pub fn read_more(&mut self, max: usize) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out(self.timeouts.turn));
        }
        // Within a few milliseconds the idle timeout (inherited by the socket) is as good, and
        // saves a system call per read.
        if left + TIMEOUT_SLACK < self.timeouts.idle {
            self.socket.set_read_timeout(Some(left))?;
            self.shortened = true;
        }
        // Compact before growing: what was consumed is not kept.
        if self.input.start > 0 {
            self.input.bytes.drain(..self.input.start);
            self.input.start = 0;
        }
        let old = self.input.bytes.len();
        self.input.bytes.resize(old + max, 0);
        let outcome = loop {
            match (&*self.socket).read(&mut self.input.bytes[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        let len = *outcome.as_ref().unwrap_or(&0);
        self.input.bytes.truncate(old + len);
        match outcome {
            Ok(len) => {
                if len > 0 {
                    self.input.read_at = Some(Instant::now());
                }
                Ok(len)
            }
            Err(e) if is_timeout(&e) => Err(timed_out(self.timeouts.turn)),
            Err(e) => Err(e),
        }
    }

    /// The request is whole and its work begins: the connection may not be shed from now on,
    /// and a departure cancels this turn (it unwinds at its next yield). `false` if the
    /// connection was shed first or the client has already gone: the turn should return
    /// [`Turn::Close`](crate::Turn::Close) without doing the work.
    pub fn begin_work(&self) -> bool {
        self.state.begin_request()
    }

    /// The work is done: while the reply is written the connection counts as idle, so that a
    /// client that does not read its replies cannot hold a place at the cap.
    pub fn end_work(&self) {
        self.state.wait_for_request();
    }

    /// Writes all of `bytes`, each write bounded by the server's write timeout.
    ///
    /// # Errors
    /// The socket's: a timeout (the client does not read), a reset.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        (&*self.socket).write_all(bytes)
    }

    /// Closes a connection whose input may hold unread bytes, after its last reply. Closing a
    /// socket with unread input makes the kernel send a reset, which can reach the client
    /// before the reply; so this sends end-of-stream first, then reads and drops what the
    /// client still sends until it closes too, within [`DRAIN_LIMIT`] bytes and
    /// [`DRAIN_TIME`] in all (not per read: a client trickling bytes cannot stretch it).
    pub fn close_after_reply(&mut self) {
        let mut socket = self.socket;
        if socket.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + DRAIN_TIME;
        let mut left = DRAIN_LIMIT;
        let mut scratch = [0u8; 4096];
        self.shortened = true;
        while left > 0 {
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() || socket.set_read_timeout(Some(wait)).is_err() {
                return;
            }
            let chunk = scratch.len().min(left);
            match socket.read(&mut scratch[..chunk]) {
                Ok(0) => return,
                Ok(len) => left -= len,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// The server's idle timeout, for protocols that name it in their replies.
    pub fn idle_timeout(&self) -> Duration {
        self.timeouts.idle
    }

    /// The turn is over: the socket's receive timeout goes back to the idle timeout.
    pub(crate) fn finish(self) -> usize {
        if self.shortened {
            let _ = self.socket.set_read_timeout(Some(self.timeouts.idle));
        }
        self.consumed
    }
}

impl Read for Connection<'_> {
    /// Buffered input first, then one read of the socket within the turn's deadline.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.buffered().is_empty() && self.read_more(out.len().max(1))? == 0 {
            return Ok(0);
        }
        let len = self.buffered().len().min(out.len());
        out[..len].copy_from_slice(&self.buffered()[..len]);
        self.consume(len);
        Ok(len)
    }
}

impl Write for Connection<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        (&*self.socket).write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn timed_out(deadline: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the request did not arrive whole within {deadline:?} of its first byte"),
    )
}

/// A read or write timeout shows as `WouldBlock` on Linux and `TimedOut` elsewhere.
pub fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
