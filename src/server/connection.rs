//! One connection, served by one handler on its own yieldable thread.
//!
//! The handler is the article's `serve_client` as a loop: read a request with blocking I/O,
//! yield the CPU work with `y.apply(sumn, n)`, write the reply with blocking I/O, until the
//! client closes. It never names the strategy. A failure of the work (a panic, a worker
//! process that died, a deadline) is that request's `error:` reply; the connection goes on.
//!
//! Every wait is bounded: the wait for a request by the idle timeout (and, in line framing,
//! the rest of a request by the idle timeout from its first byte), each reply's write by the
//! idle timeout too, so a client that never reads its replies is cut off at most one idle
//! timeout after its socket's buffers fill, and the drain before closing after an over-long
//! request by [`DRAIN_TIME`] and [`DRAIN_LIMIT`] in all. The handler tells the watcher when
//! it waits for a request (the connection may then be shed at the cap) and when it has one
//! (it may not).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use ythread::Yielder;

use super::connections::Admitted;
use super::protocol::{self, BadRequest, MAX_REQUEST_BYTES};
use super::reader::{Next, RequestReader};
use super::state::ConnectionState;
use super::{Framing, Work};
use crate::tasks::{fib, sumn};

/// What every handler of one server needs to know.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) work: Work,
    pub(crate) max_n: u64,
    pub(crate) idle_timeout: Duration,
    pub(crate) direct_below: u64,
    pub(crate) framing: Framing,
}

/// Serves requests on an admitted connection until the client closes it, goes idle, sends an
/// over-long or incomplete request, or leaves while its request is in progress (then the
/// watcher cancels this handler, which unwinds at its yield). I/O errors (a reset, a
/// client that stopped reading) end the connection quietly: they concern that client only.
///
/// After the first reply, with nothing more buffered, the connection is handed back to rest
/// in the watcher rather than waited on here (see [`super::resting`]), unless it came
/// back from resting already.
pub(crate) fn serve(y: &Yielder<'_>, admitted: Admitted, settings: Settings) {
    match serve_requests(
        y,
        &admitted.socket,
        &admitted.state,
        settings,
        admitted.may_rest,
    ) {
        Served::Rest => admitted.rest(),
        Served::Done => admitted.close(),
    }
}

/// How a handler leaves its connection.
enum Served {
    /// Over: close it.
    Done,
    /// Idle between requests: hand it back to rest.
    Rest,
}

fn serve_requests(
    y: &Yielder<'_>,
    mut stream: &TcpStream,
    state: &ConnectionState,
    settings: Settings,
    may_rest: bool,
) -> Served {
    let mut reader = RequestReader::new(settings.framing, settings.idle_timeout);
    loop {
        state.wait_for_request();
        let request = match reader.next(stream) {
            Next::Request(request) => request,
            Next::Closed => return Served::Done,
            Next::Idle => {
                let _ = stream.write_all(idle_reply(settings.idle_timeout).as_bytes());
                return Served::Done;
            }
            Next::Incomplete => {
                let reply = protocol::error_reply(format_args!(
                    "the request did not arrive whole within {:?} of its first byte; send \
                     each request as one line ending in a line break (closing the connection)",
                    settings.idle_timeout
                ));
                let _ = stream.write_all(reply.as_bytes());
                return Served::Done;
            }
            Next::TooLong => {
                let reply = line_too_long().replace('\n', " (closing the connection)\n");
                if stream.write_all(reply.as_bytes()).is_ok() {
                    close_after_reply(stream);
                }
                return Served::Done;
            }
        };
        // Shed to make room, or the client has already left.
        if !state.begin_request() {
            return Served::Done;
        }
        let (reply, keep_open) = match protocol::parse_request(request, settings.max_n) {
            Ok(n) => (answer(y, settings, n), true),
            // A whole line too long for a request: the framing is intact, so go on.
            Err(BadRequest::TooLong) if settings.framing == Framing::Line => {
                (line_too_long(), true)
            }
            Err(bad) => (protocol::error_reply(&bad), !bad.closes_connection()),
        };
        // The work is done: a client that does not read its reply may be shed from here on,
        // so it cannot hold a place by reading a byte now and then.
        state.wait_for_request();
        if stream.write_all(reply.as_bytes()).is_err() {
            return Served::Done;
        }
        if !keep_open {
            close_after_reply(stream);
            return Served::Done;
        }
        if may_rest && !reader.has_buffered() {
            return Served::Rest;
        }
    }
}

/// The line that ends a connection idle for `timeout`.
pub(crate) fn idle_reply(timeout: Duration) -> String {
    protocol::error_reply(format_args!(
        "no request within {timeout:?}; closing the connection"
    ))
}

/// The reply to a line longer than a request can be.
fn line_too_long() -> String {
    protocol::error_reply(format_args!(
        "line longer than {MAX_REQUEST_BYTES} bytes; send n as at most {MAX_REQUEST_BYTES} \
         decimal digits and a line break"
    ))
}

/// Closes a connection whose input may hold unread bytes. Closing a socket with unread input
/// makes the kernel send a reset, and a reset can reach the client before it has read the
/// reply; so send end-of-stream first, then read and drop what the client still sends until
/// it closes too, within [`DRAIN_LIMIT`] bytes and [`DRAIN_TIME`] in all (not per read: a
/// client trickling bytes cannot stretch it).
fn close_after_reply(mut stream: &TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + DRAIN_TIME;
    let mut left = DRAIN_LIMIT;
    let mut scratch = [0u8; 4096];
    while left > 0 {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
            return;
        }
        let chunk = scratch.len().min(left);
        match stream.read(&mut scratch[..chunk]) {
            Ok(0) => return,
            Ok(len) => left -= len,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// At most this much input is read and dropped when closing after an over-long request.
pub(crate) const DRAIN_LIMIT: usize = 64 * 1024;
/// How long, in all, a closing connection waits for the client's input to stop.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Runs the work for `n` through the thread's strategy (the yield point), or directly when
/// it is below the server's `direct_below` threshold.
fn answer(y: &Yielder<'_>, settings: Settings, n: u64) -> String {
    let direct = n < settings.direct_below;
    let outcome = match settings.work {
        Work::Sumn if direct => Ok(sumn.call(n)),
        Work::Sumn => y.apply(sumn, n),
        Work::Fib => match u32::try_from(n) {
            Ok(n) if direct => Ok(fib.call(n)),
            Ok(n) => y.apply(fib, n),
            Err(_) => return protocol::error_reply(format_args!("n = {n} is too large for fib")),
        },
    };
    match outcome {
        Ok(value) => protocol::answer_reply(value),
        Err(error) => protocol::error_reply(error),
    }
}
