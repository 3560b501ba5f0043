//! One client connection to a sum server: send a request, read the one-line reply.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Replies longer than this are not the sum server's (its longest is an `error:` line).
const MAX_REPLY_BYTES: usize = 4096;

/// A connection to a sum server that can carry many requests, one at a time.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    timeout: Duration,
}

impl Connection {
    /// Connects to `addr`; `timeout` bounds the connect and each later read and write.
    ///
    /// # Errors
    /// The OS error of connecting (refused, timed out), or `InvalidInput` for a zero timeout.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream, timeout })
    }

    /// Sends `request` in one write and returns the reply line without its line break
    /// (a number, or `error: ...`).
    ///
    /// # Errors
    /// The I/O error; `TimedOut` if no reply came within the timeout; `UnexpectedEof` if the
    /// server closed the connection without a reply; `InvalidData` for a reply that is too
    /// long or not UTF-8.
    pub fn request(&mut self, request: &[u8]) -> io::Result<String> {
        self.stream.write_all(request)?;
        self.read_reply()
    }

    /// Reads until a line break, or until the server closes after a reply without one (the
    /// article's own server does that).
    fn read_reply(&mut self) -> io::Result<String> {
        let mut reply = Vec::with_capacity(32);
        let mut chunk = [0u8; 256];
        loop {
            let len = match self.stream.read(&mut chunk) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no reply within {:?}", self.timeout),
                    ));
                }
                Err(e) => return Err(e),
            };
            if len == 0 {
                if reply.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection without replying",
                    ));
                }
                break;
            }
            reply.extend_from_slice(&chunk[..len]);
            if reply.contains(&b'\n') {
                break;
            }
            if reply.len() > MAX_REPLY_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the reply is longer than {MAX_REPLY_BYTES} bytes; is this a sum server?"
                    ),
                ));
            }
        }
        let line = reply.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = std::str::from_utf8(line).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, "the reply is not UTF-8 text")
        })?;
        Ok(line.trim_end_matches('\r').to_owned())
    }
}

/// Sends one request on a fresh connection, as the article's client does, and returns the
/// reply line without its line break.
///
/// # Errors
/// As [`Connection::connect`] and [`Connection::request`].
pub fn request_once(addr: SocketAddr, request: &[u8], timeout: Duration) -> io::Result<String> {
    Connection::connect(addr, timeout)?.request(request)
}
