//! Reading one request at a time off a connection, in either [`Framing`], within deadlines.
//!
//! Read-once framing needs no state: one read is one request, and the socket's receive
//! timeout (the idle timeout, inherited from the listening socket) bounds the wait. Line
//! framing keeps what arrived after a request's newline for the next one, and bounds a request
//! as a whole: from its first byte, the rest must arrive within the idle timeout, however it
//! is trickled. Only while a request is partial does it change the socket's receive timeout
//! (one syscall per read, to what is left of the deadline), and it sets it back for the wait
//! between requests.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::Framing;
use super::protocol::MAX_REQUEST_BYTES;

/// The longest line: a request, a `\r` and the `\n`.
const MAX_LINE_BYTES: usize = MAX_REQUEST_BYTES + 2;

/// What reading the next request found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<'a> {
    /// A request's bytes (for read-once framing, possibly an over-long one).
    Request(&'a [u8]),
    /// The client closed its side, or the connection broke.
    Closed,
    /// No request began within the idle timeout.
    Idle,
    /// A request began but did not arrive whole within the idle timeout of its first byte.
    Incomplete,
    /// A line longer than a request can be (line framing).
    TooLong,
}

/// Reads the requests of one connection.
#[derive(Debug)]
pub(crate) struct RequestReader {
    framing: Framing,
    idle_timeout: Duration,
    buffer: [u8; MAX_LINE_BYTES + 1],
    /// Bytes in `buffer`; for line framing, those not yet handed out start at `consumed`.
    filled: usize,
    consumed: usize,
    /// Whether the socket's receive timeout is currently shorter than the idle timeout.
    timeout_shortened: bool,
    /// When the first byte of the partial request in `buffer` arrived.
    partial_since: Option<Instant>,
    /// When the last read returned.
    read_at: Instant,
}

impl RequestReader {
    pub(crate) fn new(framing: Framing, idle_timeout: Duration) -> Self {
        RequestReader {
            framing,
            idle_timeout,
            buffer: [0; MAX_LINE_BYTES + 1],
            filled: 0,
            consumed: 0,
            timeout_shortened: false,
            partial_since: None,
            read_at: Instant::now(),
        }
    }

    /// Whether bytes of a next request have already been read (line framing only).
    pub(crate) fn has_buffered(&self) -> bool {
        self.filled > self.consumed
    }

    /// Waits for the next request.
    pub(crate) fn next(&mut self, stream: &TcpStream) -> Next<'_> {
        match self.framing {
            Framing::ReadOnce => self.next_read(stream),
            Framing::Line => self.next_line(stream),
        }
    }

    fn next_read(&mut self, mut stream: &TcpStream) -> Next<'_> {
        // One byte more than a request, so that an over-long one shows as a full buffer.
        let buffer = &mut self.buffer[..MAX_REQUEST_BYTES + 1];
        loop {
            return match stream.read(buffer) {
                Ok(0) => Next::Closed,
                Ok(len) => Next::Request(&self.buffer[..len]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => Next::Idle,
                Err(_) => Next::Closed,
            };
        }
    }

    fn next_line(&mut self, mut stream: &TcpStream) -> Next<'_> {
        // Shift what is left of the previous read to the front.
        self.buffer.copy_within(self.consumed..self.filled, 0);
        self.filled -= self.consumed;
        self.consumed = 0;
        if self.filled == 0 {
            self.partial_since = None;
        }
        loop {
            if let Some(end) = self.buffer[..self.filled].iter().position(|&b| b == b'\n') {
                self.consumed = end + 1;
                // What follows the line, if anything, is the next request's start: it
                // arrived with the last read.
                self.partial_since = (self.filled > self.consumed).then_some(self.read_at);
                if self.timeout_shortened {
                    self.timeout_shortened = false;
                    if stream.set_read_timeout(Some(self.idle_timeout)).is_err() {
                        return Next::Closed;
                    }
                }
                let line = &self.buffer[..end];
                return Next::Request(line.strip_suffix(b"\r").unwrap_or(line));
            }
            if self.filled > MAX_LINE_BYTES - 1 {
                return Next::TooLong;
            }
            if let Some(since) = self.partial_since {
                let left = (since + self.idle_timeout).saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Next::Incomplete;
                }
                if stream.set_read_timeout(Some(left)).is_err() {
                    return Next::Closed;
                }
                self.timeout_shortened = true;
            }
            match stream.read(&mut self.buffer[self.filled..]) {
                Ok(0) => return Next::Closed,
                Ok(len) => {
                    self.read_at = Instant::now();
                    // The deadline runs from the request's first byte.
                    if self.filled == 0 {
                        self.partial_since = Some(self.read_at);
                    }
                    self.filled += len;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && self.filled == 0 => return Next::Idle,
                Err(e) if is_timeout(&e) => return Next::Incomplete,
                Err(_) => return Next::Closed,
            }
        }
    }
}

/// A read or write timeout shows as `WouldBlock` on Linux and `TimedOut` elsewhere.
pub(crate) fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
