//! HTTP/1.1 on the serving layer (feature `http`, on by default): a thin [`Protocol`] over
//! `httparse`, the parser hyper uses. Each request is one turn: the head is parsed as its
//! bytes arrive, the [`Handler`] answers on the turn's yieldable thread (reading the
//! `Content-Length` body when it wants it, yielding its CPU work as any turn does), and the
//! response is written with a `Content-Length`. Between requests a keep-alive connection rests without a thread,
//! and pipelined requests are answered in order.
//!
//! Bounded, with a one-line reason and the connection closed: a malformed head (400), a head
//! or body that does not arrive within the turn deadline of its first byte (408), a body over
//! [`HttpLimits::max_body`] (413, refused before a byte of it is read, then a bounded drain),
//! a head over [`HttpLimits::max_head_bytes`] or with more than [`HttpLimits::max_headers`]
//! fields (431), a chunked body (501), and the layer's refusals (503). `Connection: close`,
//! HTTP/1.0 without keep-alive, and HEAD (the head of the response, with its length, and no
//! body) are honoured.
//!
//! Trade-offs: no chunked bodies or responses, no `Expect: 100-continue`, no upgrades; a
//! body is read whole into memory (bounded by the limit), which keeps handlers plain
//! functions of a request. Enough for services behind a proxy and for
//! load tests; not a general-purpose web server.

mod request;
mod response;

use std::sync::Arc;

use ythread::Yielder;

use crate::{Connection, Protocol, Turn};

pub use request::{Body, Request};
pub use response::Response;

use request::{Unread, read_request};

/// Answers one request on the turn's yieldable thread.
pub trait Handler: Send + Sync + 'static {
    /// The response to `request`, whose body is read with [`Body::read`] if wanted; yield CPU
    /// work with `y.apply(..)`.
    fn handle(&self, y: &Yielder<'_>, request: &Request, body: &mut Body<'_, '_>) -> Response;
}

impl<F> Handler for F
where
    F: Fn(&Yielder<'_>, &Request, &mut Body<'_, '_>) -> Response + Send + Sync + 'static,
{
    fn handle(&self, y: &Yielder<'_>, request: &Request, body: &mut Body<'_, '_>) -> Response {
        self(y, request, body)
    }
}

/// The limits on what a request may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// The request line and headers, in bytes (default 8 KiB).
    pub max_head_bytes: usize,
    /// Header fields (default 64).
    pub max_headers: usize,
    /// The body, in bytes (default 1 MiB).
    pub max_body: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
            max_body: 1 << 20,
        }
    }
}

/// The HTTP/1.1 protocol with `handler` answering requests.
///
/// ```
/// use std::io::{Read, Write};
/// use ythread_serve::http::{Body, Http, Request, Response};
/// use ythread_serve::{ServeConfig, Server};
///
/// let hello = Http::new(|_y: &ythread::Yielder<'_>, request: &Request, _body: &mut Body<'_, '_>| {
///     Response::text(200, format!("hello from {}", request.path))
/// });
/// let addr = "127.0.0.1:0".parse().unwrap();
/// let server = Server::bind(addr, ServeConfig::default(), ythread::Executor::inline(), hello)?
///     .spawn();
/// let mut client = std::net::TcpStream::connect(server.addr())?;
/// client.write_all(b"GET /there HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
/// let mut reply = String::new();
/// client.read_to_string(&mut reply)?;
/// assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
/// assert!(reply.ends_with("\r\n\r\nhello from /there\n"), "{reply}");
/// server.shutdown()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Http {
    handler: Arc<dyn Handler>,
    limits: HttpLimits,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Http {
    /// HTTP with the default [`HttpLimits`].
    pub fn new(handler: impl Handler) -> Http {
        Http {
            handler: Arc::new(handler),
            limits: HttpLimits::default(),
        }
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: HttpLimits) -> Http {
        self.limits = limits;
        self
    }
}

impl Protocol for Http {
    fn turn(&self, y: &Yielder<'_>, connection: &mut Connection<'_>) -> Turn {
        let request = match read_request(connection, &self.limits) {
            Ok(request) => request,
            Err(Unread::Gone) => return Turn::Close,
            Err(Unread::Refuse(response)) => {
                if response.write(connection, false).is_ok() {
                    connection.close_after_reply();
                }
                return Turn::Close;
            }
        };
        if !connection.begin_work() {
            return Turn::Close;
        }
        let mut body = Body::new(connection, request.body_length);
        let mut response = self.handler.handle(y, &request, &mut body);
        // The next request starts where this body ends: unread, it ends the connection.
        if !body.is_read() || !request.keeps_alive() {
            response.close = true;
        }
        connection.end_work();
        let head_only = request.method == "HEAD";
        if response.write(connection, head_only).is_err() {
            return Turn::Close;
        }
        if response.close {
            connection.close_after_reply();
            return Turn::Close;
        }
        Turn::Keep
    }

    fn busy(&self, why: &str) -> Vec<u8> {
        Response::text(503, why).closing().to_bytes(false)
    }
}
