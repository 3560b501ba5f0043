//! [`Response`]: a status, headers and a body, written in one go.

use std::io;

use crate::Connection;

/// What a handler answers. `Content-Length` and `Connection` are written by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code, such as 200 or 404.
    pub status: u16,
    /// Headers besides `Content-Length` and `Connection`.
    pub headers: Vec<(String, String)>,
    /// The body (not sent in reply to HEAD; its length is).
    pub body: Vec<u8>,
    /// Close the connection after this response.
    pub close: bool,
}

impl Response {
    /// A response with `status`, `Content-Type: content_type` and `body`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.into(),
            close: false,
        }
    }

    /// A plain-text response of one line: `reason` and a line break.
    pub fn text(status: u16, reason: impl Into<String>) -> Response {
        let mut body = reason.into().replace(['\r', '\n'], " ").into_bytes();
        body.push(b'\n');
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Marks the connection to close after this response.
    pub fn closing(mut self) -> Response {
        self.close = true;
        self
    }

    /// The response's bytes: the head, and the body unless `head_only` (a reply to HEAD).
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(128 + if head_only { 0 } else { self.body.len() });
        bytes.extend_from_slice(
            format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).as_bytes(),
        );
        for (name, value) in &self.headers {
            // A header with a line break would split the response: drop the break.
            let value = value.replace(['\r', '\n'], " ");
            bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        bytes.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        if self.close {
            bytes.extend_from_slice(b"Connection: close\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }

    /// Writes the response, each write bounded by the server's write timeout.
    pub(crate) fn write(&self, connection: &mut Connection<'_>, head_only: bool) -> io::Result<()> {
        connection.write_all(&self.to_bytes(head_only))
    }
}

/// The reason phrase of `status` (the phrase is informative only; clients go by the code).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}
