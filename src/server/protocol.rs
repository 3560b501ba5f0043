//! The wire protocol of the article's sum server, and what the server says to bad input.
//!
//! A request is the decimal `n` in ASCII, at most [`MAX_REQUEST_BYTES`] bytes, with no
//! terminator: the protocol has no framing, so *each read is one request*, exactly as in the
//! article (`int(c.recv(16))`). The reply is one line: the decimal answer, or
//! `error: WHAT; WHAT TO DO`, ended by `\n`. The connection stays open for further requests
//! until the client closes it.
//!
//! Consequences of having no framing, kept on purpose so the article's client works unchanged:
//! a client must wait for each reply before sending its next request (two requests that reach
//! the server in one segment read as one number: `1` and `2` sent together are answered as
//! `12`), and a request split across two segments reads as two (`250`, a pause, `00` gets the
//! answers for 250 and for 0). Surrounding ASCII whitespace is ignored, so
//! `printf '25000\n' | nc` works. An over-long request (more than 16 bytes in one read) leaves
//! the stream with no way to tell where the next request starts, so it gets its `error:` line
//! and the connection is closed; every other bad request gets its `error:` line and the
//! connection goes on.
//!
//! [`Framing::Line`](super::Framing::Line) is the opt-in cure: one request per `\n`-ended line
//! (a `\r` before it is ignored), so requests may be pipelined or arrive in pieces, and a
//! line must arrive whole within the idle timeout of its first byte. The replies are the same.

use std::fmt;

/// The longest request: the article reads with `recv(16)`.
pub const MAX_REQUEST_BYTES: usize = 16;

/// Why a request was refused. Its `Display` is the text after `error: ` in the reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// Nothing but whitespace.
    Empty,
    /// More than [`MAX_REQUEST_BYTES`] bytes arrived in one read.
    TooLong,
    /// Not a whole decimal number; holds the request as printable text.
    NotANumber(String),
    /// A negative number; holds the request as text.
    Negative(String),
    /// A number above the server's limit.
    AboveLimit {
        /// What was asked for.
        n: u64,
        /// The server's limit.
        max_n: u64,
    },
}

impl BadRequest {
    /// Whether the server closes the connection after replying (only for [`BadRequest::TooLong`],
    /// whose unread rest cannot be told apart from the next request).
    pub fn closes_connection(&self) -> bool {
        matches!(self, BadRequest::TooLong)
    }
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRequest::Empty => f.write_str("empty request; send n as decimal digits, e.g. 25000"),
            BadRequest::TooLong => write!(
                f,
                "request longer than {MAX_REQUEST_BYTES} bytes; send n as at most \
                 {MAX_REQUEST_BYTES} decimal digits and wait for each reply before the next \
                 request (closing the connection)"
            ),
            BadRequest::NotANumber(text) => write!(
                f,
                "`{text}` is not a whole number; send n as decimal digits, e.g. 25000"
            ),
            BadRequest::Negative(text) => {
                write!(f, "`{text}` is negative; send a whole number from 0 up")
            }
            BadRequest::AboveLimit { n, max_n } => write!(
                f,
                "n = {n} is above this server's limit of {max_n}; ask for less, or start the \
                 server with a higher --max-n"
            ),
        }
    }
}

/// Reads one request: `bytes` is what one read returned, at most `MAX_REQUEST_BYTES + 1` long
/// (a read into a buffer one byte larger than a request is how an over-long one shows).
///
/// # Errors
/// [`BadRequest`] for anything but a whole number from 0 to `max_n`.
pub fn parse_request(bytes: &[u8], max_n: u64) -> Result<u64, BadRequest> {
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(BadRequest::TooLong);
    }
    let text = bytes.trim_ascii();
    if text.is_empty() {
        return Err(BadRequest::Empty);
    }
    let printable = || printable(text);
    if let Some(rest) = text.strip_prefix(b"-")
        && !rest.is_empty()
        && rest.iter().all(u8::is_ascii_digit)
    {
        return Err(BadRequest::Negative(printable()));
    }
    // `u64::from_str` also takes a leading `+`, as Python's `int()` does; 16 digits always
    // fit in a u64, so a parse failure means "not a number".
    let n: u64 = std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| BadRequest::NotANumber(printable()))?;
    if n > max_n {
        return Err(BadRequest::AboveLimit { n, max_n });
    }
    Ok(n)
}

/// The reply line for an answer.
pub fn answer_reply(value: u64) -> String {
    format!("{value}\n")
}

/// The reply line for a failure: `error: ` and `message` on one line (line breaks inside
/// `message` become spaces), ended by `\n`.
pub fn error_reply(message: impl fmt::Display) -> String {
    let message = message.to_string().replace(['\r', '\n'], " ");
    format!("error: {message}\n")
}

/// The request as text that cannot break the reply line: bytes outside printable ASCII are
/// escaped (`\xff`, `\n`).
fn printable(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_with_surrounding_whitespace() {
        assert_eq!(parse_request(b"25000", 100_000), Ok(25_000));
        assert_eq!(parse_request(b" 7\r\n", 10), Ok(7));
        assert_eq!(parse_request(b"0", 10), Ok(0));
        assert_eq!(parse_request(b"+5", 10), Ok(5));
        assert_eq!(
            parse_request(b"9999999999999999", u64::MAX),
            Ok(9_999_999_999_999_999)
        );
    }

    #[test]
    fn bad_requests_are_classified() {
        assert_eq!(parse_request(b"", 10), Err(BadRequest::Empty));
        assert_eq!(parse_request(b" \n", 10), Err(BadRequest::Empty));
        assert_eq!(
            parse_request(&[b'1'; 17], u64::MAX),
            Err(BadRequest::TooLong)
        );
        assert_eq!(
            parse_request(b"-3", 10),
            Err(BadRequest::Negative("-3".into()))
        );
        assert_eq!(
            parse_request(b"-", 10),
            Err(BadRequest::NotANumber("-".into()))
        );
        assert_eq!(
            parse_request(b"1e3", 10),
            Err(BadRequest::NotANumber("1e3".into()))
        );
        assert_eq!(
            parse_request(b"1 2", 10),
            Err(BadRequest::NotANumber("1 2".into()))
        );
        assert_eq!(
            parse_request(b"11", 10),
            Err(BadRequest::AboveLimit { n: 11, max_n: 10 })
        );
    }

    #[test]
    fn error_replies_are_one_line() {
        let bad = parse_request(b"\xff\x07a\nb", 10).unwrap_err();
        let reply = error_reply(&bad);
        assert!(
            reply.starts_with("error: `\\xff\\x07a\\nb` is not"),
            "{reply}"
        );
        assert_eq!(reply.matches('\n').count(), 1, "{reply:?}");
        assert!(reply.ends_with('\n'));
        assert_eq!(error_reply("two\nlines"), "error: two lines\n");
    }

    #[test]
    fn only_an_over_long_request_closes_the_connection() {
        assert!(BadRequest::TooLong.closes_connection());
        assert!(!BadRequest::Empty.closes_connection());
        assert!(!BadRequest::AboveLimit { n: 2, max_n: 1 }.closes_connection());
    }
}
