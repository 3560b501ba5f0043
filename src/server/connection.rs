//! One connection, served by one handler on its own yieldable thread.
//!
//! The handler is the article's `serve_client` as a loop: read a request with blocking I/O,
//! yield the CPU work with `y.apply(sumn, n)`, write the reply with blocking I/O, until the
//! client closes. It never names the strategy. A failure of the work (a panic, a worker
//! process that died, a deadline) is that request's `error:` reply; the connection goes on.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use ythread::Yielder;

use super::Work;
use super::protocol::{self, MAX_REQUEST_BYTES};
use crate::tasks::{fib, sumn};

/// What every handler of one server needs to know.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) work: Work,
    pub(crate) max_n: u64,
    pub(crate) idle_timeout: Duration,
    pub(crate) direct_below: u64,
}

/// Serves requests on `stream` until the client closes it, goes idle, or sends an over-long
/// request. I/O errors (a reset, a client that stopped reading) end the connection quietly:
/// they concern that client only.
pub(crate) fn serve(y: &Yielder<'_>, mut stream: TcpStream, settings: Settings) {
    // One byte more than a request, so that an over-long one shows as a full buffer.
    let mut buffer = [0u8; MAX_REQUEST_BYTES + 1];
    loop {
        let len = match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => {
                let reply = protocol::error_reply(format_args!(
                    "no request within {:?}; closing the connection",
                    settings.idle_timeout
                ));
                let _ = stream.write_all(reply.as_bytes());
                return;
            }
            Err(_) => return,
        };
        let (reply, keep_open) = match protocol::parse_request(&buffer[..len], settings.max_n) {
            Ok(n) => (answer(y, settings, n), true),
            Err(bad) => (protocol::error_reply(&bad), !bad.closes_connection()),
        };
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
        if !keep_open {
            close_after_reply(&mut stream);
            return;
        }
    }
}

/// Closes a connection whose input may hold unread bytes. Closing a socket with unread input
/// makes the kernel send a reset, and a reset can reach the client before it has read the
/// reply; so send end-of-stream first, then read and drop what the client still sends until
/// it closes too, within [`DRAIN_LIMIT`] bytes and [`DRAIN_TIME`].
fn close_after_reply(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err()
        || stream.set_read_timeout(Some(DRAIN_TIME)).is_err()
    {
        return;
    }
    let _ = io::copy(&mut stream.take(DRAIN_LIMIT), &mut io::sink());
}

/// At most this much input is read and dropped when closing after an over-long request.
const DRAIN_LIMIT: u64 = 64 * 1024;
/// How long a closing connection waits for the client's input to stop.
const DRAIN_TIME: Duration = Duration::from_secs(1);

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

/// A read or write timeout shows as `WouldBlock` on Linux and `TimedOut` elsewhere.
fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
