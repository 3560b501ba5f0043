//! Reading one request off a connection: the head parsed by `httparse` as its bytes arrive,
//! then, when the handler asks for it, a `Content-Length` body ([`Body`]), each under its
//! limit and the turn deadline.

use crate::{Connection, is_timeout};

use super::{HttpLimits, Response};

/// One request, whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method, such as `GET`.
    pub method: String,
    /// The request target's path, without the query.
    pub path: String,
    /// The query string after `?`, or empty.
    pub query: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The headers, in order, with their names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body's length, from `Content-Length` (0 without one); within the server's limit.
    pub body_length: usize,
}

impl Request {
    /// The first header named `name` (case-insensitive), if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
            .map(str::trim)
    }

    /// The value of `name` in the query string (`a=1&b=2`), undecoded.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }

    /// Whether the client asked to keep the connection: HTTP/1.1 unless `Connection: close`,
    /// HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keeps_alive(&self) -> bool {
        let connection = self.header("Connection").unwrap_or("");
        let has = |token: &str| {
            connection
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        };
        if self.minor_version >= 1 {
            !has("close")
        } else {
            has("keep-alive")
        }
    }
}

/// What reading a request came to, when it did not come to a request.
pub(crate) enum Unread {
    /// The client closed, or the connection broke: nothing to answer.
    Gone,
    /// Answer this, then close (draining what the client still sends).
    Refuse(Response),
}

/// Reads the next request's head off `connection` within `limits`; its body is left for
/// [`Body`].
pub(crate) fn read_request(
    connection: &mut Connection<'_>,
    limits: &HttpLimits,
) -> Result<Request, Unread> {
    let (mut request, head_len) = read_head(connection, limits)?;
    connection.consume(head_len);
    request.body_length = body_length(&request, limits)?;
    Ok(request)
}

/// A request's body, read when the handler asks for it: so a handler can refuse a request
/// (or take a place for it) before the body is read. A body the handler leaves unread closes
/// the connection after the response, with a bounded drain.
#[derive(Debug)]
pub struct Body<'c, 'a> {
    connection: &'c mut Connection<'a>,
    length: usize,
    read: bool,
}

impl<'c, 'a> Body<'c, 'a> {
    pub(crate) fn new(connection: &'c mut Connection<'a>, length: usize) -> Self {
        Body {
            connection,
            length,
            read: length == 0,
        }
    }

    /// The body's length, from `Content-Length`.
    pub fn len(&self) -> usize {
        self.length
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Reads the whole body (once; later calls return it empty).
    ///
    /// # Errors
    /// The response to send instead: 408 if it did not arrive within the turn deadline, 400
    /// if the client closed before sending it all.
    pub fn read(&mut self) -> Result<Vec<u8>, Response> {
        if self.read {
            return Ok(Vec::new());
        }
        while self.connection.buffered().len() < self.length {
            let missing = self.length - self.connection.buffered().len();
            read_more(self.connection, missing.min(BODY_CHUNK), "body").map_err(|unread| {
                match unread {
                    Unread::Refuse(response) => response,
                    Unread::Gone => {
                        Response::text(400, "the body ended before its Content-Length").closing()
                    }
                }
            })?;
        }
        let body = self.connection.buffered()[..self.length].to_vec();
        self.connection.consume(self.length);
        self.read = true;
        Ok(body)
    }

    /// Whether the body has been read (or was empty).
    pub(crate) fn is_read(&self) -> bool {
        self.read
    }
}

/// The most a body read asks the socket for at once.
const BODY_CHUNK: usize = 256 * 1024;

fn read_head(
    connection: &mut Connection<'_>,
    limits: &HttpLimits,
) -> Result<(Request, usize), Unread> {
    loop {
        let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(connection.buffered()) {
            Ok(httparse::Status::Complete(head_len)) => {
                return owned(&parsed).map(|request| (request, head_len));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(refuse(
                    431,
                    format!("more than {} header fields; send fewer", limits.max_headers),
                ));
            }
            Err(e) => {
                return Err(refuse(400, format!("the request's head is malformed: {e}")));
            }
        }
        let buffered = connection.buffered().len();
        if buffered >= limits.max_head_bytes {
            return Err(refuse(
                431,
                format!(
                    "the request line and headers are longer than {} bytes; send a shorter head",
                    limits.max_head_bytes
                ),
            ));
        }
        let room = (limits.max_head_bytes - buffered).min(HEAD_CHUNK);
        read_more(connection, room, "head")?;
    }
}

/// The most a head read asks the socket for at once.
const HEAD_CHUNK: usize = 4096;

/// Reads more of a request; end-of-stream or an error in the middle of one is the client gone,
/// the turn deadline passing is a 408.
fn read_more(connection: &mut Connection<'_>, max: usize, part: &str) -> Result<(), Unread> {
    match connection.read_more(max) {
        Ok(0) => Err(Unread::Gone),
        Ok(_) => Ok(()),
        Err(e) if is_timeout(&e) => {
            if part == "head" && connection.buffered().is_empty() {
                return Err(Unread::Gone);
            }
            Err(refuse(
                408,
                format!("the request's {part} did not arrive in time: {e}"),
            ))
        }
        Err(_) => Err(Unread::Gone),
    }
}

fn owned(parsed: &httparse::Request<'_, '_>) -> Result<Request, Unread> {
    let (Some(method), Some(target), Some(minor_version)) =
        (parsed.method, parsed.path, parsed.version)
    else {
        return Err(refuse(400, "the request line is incomplete".to_owned()));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        minor_version,
        headers: parsed
            .headers
            .iter()
            .map(|header| (header.name.to_owned(), header.value.to_vec()))
            .collect(),
        body_length: 0,
    })
}

/// The body's length from `Content-Length`, within the limit; chunked bodies are refused.
fn body_length(request: &Request, limits: &HttpLimits) -> Result<usize, Unread> {
    if request
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Transfer-Encoding"))
    {
        return Err(refuse(
            501,
            "Transfer-Encoding is not supported; send the body with a Content-Length".to_owned(),
        ));
    }
    let mut lengths = request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, value)| {
            std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
        });
    let length = match (lengths.next(), lengths.next()) {
        (None, _) => 0,
        (Some(Some(length)), None) => length,
        _ => {
            return Err(refuse(
                400,
                "Content-Length must be one whole number".to_owned(),
            ));
        }
    };
    if length > limits.max_body {
        return Err(refuse(
            413,
            format!(
                "the body is larger than this server's limit of {} bytes; send a smaller one",
                limits.max_body
            ),
        ));
    }
    usize::try_from(length).map_err(|_| refuse(413, "the body is too large".to_owned()))
}

fn refuse(status: u16, reason: String) -> Unread {
    Unread::Refuse(Response::text(status, reason).closing())
}
