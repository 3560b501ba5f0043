//! A minimal blocking HTTP/1.1 client, for the thumbnails service's tests and its load in the
//! strategy comparison: one request per connection (`Connection: close`), the whole reply
//! read into memory.
//!
//! Trade-offs: a new connection per request costs a TCP connect (tens of microseconds on
//! loopback), noise next to decoding an image; in exchange there is no connection state to
//! get wrong and a reply ends where the connection does. Replies are bounded
//! ([`MAX_REPLY_BYTES`]) so that a broken server cannot make a test allocate without limit.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The longest reply read, head and body together.
pub const MAX_REPLY_BYTES: usize = 64 << 20;

/// A reply: its status, its content type and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code, such as 200.
    pub status: u16,
    /// The `Content-Type` header, if there was one.
    pub content_type: Option<String>,
    /// The body, with any chunked transfer encoding removed.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The body as text (invalid UTF-8 replaced), without surrounding whitespace.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
}

/// Sends `METHOD TARGET` with `body` (as `application/octet-stream`, with its length) to
/// `addr` on a new connection and reads the whole reply. `timeout` bounds the connect and each
/// read and write.
///
/// # Errors
/// The I/O error of connecting, writing or reading (`TimedOut` or `WouldBlock` when the
/// server is silent for `timeout`); `InvalidData` for a reply that is not HTTP or longer than
/// [`MAX_REPLY_BYTES`]; `UnexpectedEof` if the connection closed before the reply was whole.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
    timeout: Duration,
) -> io::Result<HttpReply> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    stream.write_all(&request)?;
    let mut reply = Vec::new();
    (&mut stream)
        .take(MAX_REPLY_BYTES as u64 + 1)
        .read_to_end(&mut reply)?;
    if reply.len() > MAX_REPLY_BYTES {
        return Err(invalid(format!(
            "the reply is longer than {MAX_REPLY_BYTES} bytes"
        )));
    }
    parse_reply(&reply)
}

/// Parses a whole reply: status line, headers, then the body as its headers frame it.
fn parse_reply(reply: &[u8]) -> io::Result<HttpReply> {
    let end_of_head = find(reply, b"\r\n\r\n").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection closed before the reply's head was whole",
        )
    })?;
    let head = std::str::from_utf8(&reply[..end_of_head])
        .map_err(|_| invalid("the reply's head is not UTF-8".to_owned()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("`{status_line}` is not an HTTP status line")))?;
    let (mut content_type, mut length, mut chunked) = (None, None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(value.to_owned()),
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    let rest = &reply[end_of_head + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = length {
        rest.get(..length)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the reply declared {length} body bytes and sent {}",
                        rest.len()
                    ),
                )
            })?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpReply {
        status,
        content_type,
        body,
    })
}

/// Removes chunked transfer encoding.
fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n")
            .ok_or_else(|| invalid("a chunk's size line is not terminated".to_owned()))?;
        let size_text = std::str::from_utf8(&rest[..line_end]).unwrap_or("");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("`{size_text}` is not a chunk size")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| invalid("a chunk is cut short".to_owned()))?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_with_a_length_or_chunks_parses() {
        let plain = parse_reply(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nno\n",
        )
        .unwrap();
        assert_eq!(plain.status, 404);
        assert_eq!(plain.content_type.as_deref(), Some("text/plain"));
        assert_eq!(plain.text(), "no");
        let chunked = parse_reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, b"abcde");
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").is_err());
        assert!(parse_reply(b"garbage\r\n\r\n").is_err());
    }
}
