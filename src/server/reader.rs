//! Reading one request off a connection's buffered input, in either [`Framing`].
//!
//! Read-once framing needs no state: one read is one request. Line framing leaves what
//! arrived after a request's newline in the connection's buffer, where the serving layer finds
//! it and starts the next turn at once; the turn deadline (the idle timeout, from the
//! request's first byte) bounds a line however it is trickled.

use ythread_serve::{Connection, is_timeout};

use super::Framing;
use super::protocol::MAX_REQUEST_BYTES;

/// The longest line: a request, a `\r` and the `\n`.
const MAX_LINE_BYTES: usize = MAX_REQUEST_BYTES + 2;

/// What reading the next request found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// A request's bytes (for read-once framing, possibly an over-long one).
    Request(Vec<u8>),
    /// The client closed its side, or the connection broke.
    Closed,
    /// No request began within the idle timeout.
    Idle,
    /// A request began but did not arrive whole within the idle timeout of its first byte.
    Incomplete,
    /// A line longer than a request can be (line framing).
    TooLong,
}

/// Reads the next request of `connection`.
pub(crate) fn next_request(connection: &mut Connection<'_>, framing: Framing) -> Next {
    match framing {
        Framing::ReadOnce => next_read(connection),
        Framing::Line => next_line(connection),
    }
}

fn next_read(connection: &mut Connection<'_>) -> Next {
    if connection.buffered().is_empty() {
        // One byte more than a request, so that an over-long one shows as a full read.
        match connection.read_more(MAX_REQUEST_BYTES + 1) {
            Ok(0) => return Next::Closed,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Next::Idle,
            Err(_) => return Next::Closed,
        }
    }
    let request = connection.buffered().to_vec();
    connection.consume(request.len());
    Next::Request(request)
}

fn next_line(connection: &mut Connection<'_>) -> Next {
    loop {
        let buffered = connection.buffered();
        // A line is too long by its length, however its bytes arrived: a first read of a
        // whole kilobyte may hold the line break of a line the reader would have given up on
        // after MAX_LINE_BYTES + 1 bytes, and both must end the same way.
        let newline = buffered.iter().position(|&b| b == b'\n');
        if newline.unwrap_or(buffered.len()) > MAX_LINE_BYTES {
            return Next::TooLong;
        }
        if let Some(end) = newline {
            let line = &buffered[..end];
            let request = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
            connection.consume(end + 1);
            return Next::Request(request);
        }
        let room = MAX_LINE_BYTES + 1 - buffered.len();
        let was_empty = buffered.is_empty();
        match connection.read_more(room) {
            Ok(0) => return Next::Closed,
            Ok(_) => {}
            Err(e) if is_timeout(&e) && was_empty => return Next::Idle,
            Err(e) if is_timeout(&e) => return Next::Incomplete,
            Err(_) => return Next::Closed,
        }
    }
}
