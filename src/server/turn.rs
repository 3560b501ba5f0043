//! The sum protocol's turn: the article's `serve_client`, one request at a time. Read a
//! request with blocking I/O, yield the CPU work with `y.apply(sumn, n)`, write the reply with
//! blocking I/O; the serving layer (`ythread-serve`) calls it whenever the connection has
//! input and does everything else. It never names the strategy. A failure of the work (a
//! panic, a worker process that died, a deadline) is that request's `error:` reply; the
//! connection goes on.

use std::time::Duration;

use ythread::Yielder;
use ythread_serve::{Connection, Protocol, Turn};

use super::protocol::{self, BadRequest, MAX_REQUEST_BYTES};
use super::reader::{Next, next_request};
use super::{Framing, Work};
use crate::tasks::{fib, sumn};

/// The sum protocol of one server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SumProtocol {
    pub(crate) work: Work,
    pub(crate) max_n: u64,
    pub(crate) direct_below: u64,
    pub(crate) framing: Framing,
}

impl Protocol for SumProtocol {
    fn turn(&self, y: &Yielder<'_>, connection: &mut Connection<'_>) -> Turn {
        let request = match next_request(connection, self.framing) {
            Next::Request(request) => request,
            Next::Closed => return Turn::Close,
            Next::Idle => {
                let reply = idle_reply(connection.idle_timeout());
                let _ = connection.write_all(reply.as_bytes());
                return Turn::Close;
            }
            Next::Incomplete => {
                let reply = protocol::error_reply(format_args!(
                    "the request did not arrive whole within {:?} of its first byte; send \
                     each request as one line ending in a line break (closing the connection)",
                    connection.idle_timeout()
                ));
                let _ = connection.write_all(reply.as_bytes());
                return Turn::Close;
            }
            Next::TooLong => {
                let reply = line_too_long().replace('\n', " (closing the connection)\n");
                if connection.write_all(reply.as_bytes()).is_ok() {
                    connection.close_after_reply();
                }
                return Turn::Close;
            }
        };
        // Shed to make room, or the client has already left.
        if !connection.begin_work() {
            return Turn::Close;
        }
        let (reply, keep_open) = match protocol::parse_request(&request, self.max_n) {
            Ok(n) => (self.answer(y, n), true),
            // A whole line too long for a request: the framing is intact, so go on.
            Err(BadRequest::TooLong) if self.framing == Framing::Line => (line_too_long(), true),
            Err(bad) => (protocol::error_reply(&bad), !bad.closes_connection()),
        };
        // The work is done: a client that does not read its reply may be shed from here on,
        // so it cannot hold a place by reading a byte now and then.
        connection.end_work();
        if connection.write_all(reply.as_bytes()).is_err() {
            return Turn::Close;
        }
        if !keep_open {
            connection.close_after_reply();
            return Turn::Close;
        }
        Turn::Keep
    }

    fn busy(&self, why: &str) -> Vec<u8> {
        protocol::error_reply(why).into_bytes()
    }

    fn idle(&self, idle_for: Duration) -> Vec<u8> {
        idle_reply(idle_for).into_bytes()
    }
}

impl SumProtocol {
    /// Runs the work for `n` through the thread's strategy (the yield point), or directly
    /// when it is below the server's `direct_below` threshold.
    fn answer(&self, y: &Yielder<'_>, n: u64) -> String {
        let direct = n < self.direct_below;
        let outcome = match self.work {
            Work::Sumn if direct => Ok(sumn.call(n)),
            Work::Sumn => y.apply(sumn, n),
            Work::Fib => match u32::try_from(n) {
                Ok(n) if direct => Ok(fib.call(n)),
                Ok(n) => y.apply(fib, n),
                Err(_) => {
                    return protocol::error_reply(format_args!("n = {n} is too large for fib"));
                }
            },
        };
        match outcome {
            Ok(value) => protocol::answer_reply(value),
            Err(error) => protocol::error_reply(error),
        }
    }
}

/// The line that ends a connection idle for `timeout`.
fn idle_reply(timeout: Duration) -> String {
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
