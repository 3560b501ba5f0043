//! The thumbnails HTTP service on the serving layer's HTTP/1.1 (`ythread_serve::http`): each
//! request is a turn on a yieldable thread, and the image work is yielded as the `thumbnail`
//! task to whatever strategy the executor carries.
//!
//! ```text
//! acceptors / watcher (ythread-serve) ──▶ a turn per request, on a reused yieldable thread:
//!     route · check width · take a place · read the body (bounded) · y.apply(thumbnail, job)
//!     · reply · the connection rests without a thread until its next request
//! ```
//!
//! Trade-offs: a thread per request in progress keeps the handler plain blocking code, while
//! a keep-alive connection between requests, or a client that has not sent its request yet,
//! costs a descriptor and no thread (tiny_http, which this replaced, held a thread per
//! connection and drained an unread body into a buffer of its declared length). Requests
//! beyond [`ServiceConfig::max_in_flight`] reading their body or waiting for their work are
//! refused with 503 rather than queued without bound; the place is taken before the body is
//! read, so slow uploads count. A body over the limit is refused with 413 before a byte of
//! it is read, then drained for at most 1 s and 64 KiB before the connection closes.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_bytes::ByteBuf;
use ythread::{ErrorKind, Executor, Yielder};
use ythread_serve::http::{Body, Handler, Http, HttpLimits, Request, Response};
use ythread_serve::{ServeConfig, Server};
use ythread_suite::server::Work;
use ythread_suite::tasks::sumn;

use super::task::{MAX_WIDTH, Rejected, ThumbnailJob, thumbnail};

/// How the service serves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServiceConfig {
    /// Where to listen; port 0 lets the OS pick one.
    pub(crate) addr: SocketAddr,
    /// The largest request body accepted; larger ones get 413.
    pub(crate) max_body: u64,
    /// Whether the decoder enforces its own limits (see `task`).
    pub(crate) decoder_limits: bool,
    /// Requests handled at once; more get 503 at once.
    pub(crate) max_in_flight: usize,
}

/// The default body limit: 16 MiB, a large camera JPEG.
pub(crate) const DEFAULT_MAX_BODY: u64 = 16 << 20;

/// The default bound on requests handled at once.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// Binds `config.addr` with the service's HTTP protocol. Nothing is served until the server
/// runs.
///
/// # Errors
/// The OS error of binding, said with the address.
pub(crate) fn bind(config: ServiceConfig, executor: Executor) -> io::Result<Server> {
    let http = Http::new(Thumbnails {
        config,
        busy: AtomicUsize::new(0),
    })
    .limits(HttpLimits {
        max_body: config.max_body,
        ..HttpLimits::default()
    });
    Ok(Server::bind(config.addr, ServeConfig::default(), executor, http)?.named("thumbnails"))
}

/// The service's handler.
struct Thumbnails {
    config: ServiceConfig,
    /// Requests reading their body or waiting for their thumbnail.
    busy: AtomicUsize,
}

impl Handler for Thumbnails {
    fn handle(&self, y: &Yielder<'_>, request: &Request, body: &mut Body<'_, '_>) -> Response {
        match request.path.as_str() {
            "/thumbnail" => self.thumbnail(y, request, body),
            "/sum" => sum(y, request),
            path => Response::text(
                404,
                format!("no such path `{path}`; POST an image to /thumbnail?width=W"),
            ),
        }
    }
}

impl Thumbnails {
    fn thumbnail(&self, y: &Yielder<'_>, request: &Request, body: &mut Body<'_, '_>) -> Response {
        if request.method != "POST" {
            return Response::text(
                405,
                format!(
                    "{} is not allowed here; POST an image to /thumbnail?width=W",
                    request.method
                ),
            )
            .with_header("Allow", "POST");
        }
        let width = match parse_width(request) {
            Ok(width) => width,
            Err(reason) => return Response::text(400, reason),
        };
        let Some(_place) = Place::take(&self.busy, self.config.max_in_flight) else {
            return Response::text(
                503,
                format!(
                    "the server is handling {} requests already; try again later",
                    self.config.max_in_flight
                ),
            );
        };
        let image = match body.read() {
            Ok(image) => image,
            Err(refusal) => return refusal,
        };
        if image.is_empty() {
            return Response::text(400, "the body is empty; send a PNG or JPEG image");
        }
        let job = ThumbnailJob {
            image: ByteBuf::from(image),
            width,
            decoder_limits: self.config.decoder_limits,
        };
        match y.apply(thumbnail, job) {
            Ok(Ok(png)) => Response::new(200, "image/png", png.into_vec()),
            Ok(Err(rejected)) => Response::text(rejected_status(&rejected), rejected.reason()),
            Err(e) => Response::text(
                failure_status(&e),
                format!("the thumbnail could not be made: {e}"),
            ),
        }
    }
}

/// `GET /sum?n=N`: the sum server's work over HTTP, yielded, for load tests.
fn sum(y: &Yielder<'_>, request: &Request) -> Response {
    if request.method != "GET" && request.method != "HEAD" {
        return Response::text(
            405,
            format!("{} is not allowed here; GET /sum?n=N", request.method),
        )
        .with_header("Allow", "GET, HEAD");
    }
    let max_n = Work::Sumn.default_max_n();
    let n = match request.query_value("n").map(str::parse::<u64>) {
        Some(Ok(n)) if n <= max_n => n,
        _ => {
            return Response::text(
                400,
                format!("give n as a whole number from 0 to {max_n}: GET /sum?n=25000"),
            );
        }
    };
    match y.apply(sumn, n) {
        Ok(value) => Response::text(200, value.to_string()),
        Err(e) => Response::text(failure_status(&e), format!("the sum failed: {e}")),
    }
}

/// One of the [`ServiceConfig::max_in_flight`] places for a request's body and work, given
/// back on drop.
struct Place<'a>(&'a AtomicUsize);

impl<'a> Place<'a> {
    fn take(busy: &'a AtomicUsize, max: usize) -> Option<Place<'a>> {
        busy.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Place(busy))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The `width` of the query string, in 1..=MAX_WIDTH.
fn parse_width(request: &Request) -> Result<u32, String> {
    let value = request.query_value("width").ok_or_else(|| {
        format!("the query has no width; add ?width=W with W from 1 to {MAX_WIDTH}")
    })?;
    match value.parse::<u32>() {
        Ok(width) if (1..=MAX_WIDTH).contains(&width) => Ok(width),
        _ => Err(format!(
            "width `{value}` is not a whole number from 1 to {MAX_WIDTH}"
        )),
    }
}

fn rejected_status(rejected: &Rejected) -> u16 {
    match rejected {
        Rejected::NotAnImage(_) => 415,
        Rejected::Corrupt(_) | Rejected::TooLarge(_) => 422,
    }
}

/// The status of a job that failed in the strategy rather than in the decoder: a worker that
/// ran out of its memory cap (the input asked for more than a decode may use: 422, as for the
/// decoder's own limits), another worker death or a panic (500), the deadline passed or the
/// strategy cannot take work (503).
fn failure_status(error: &ythread::Error) -> u16 {
    if error.memory_limit().is_some() {
        return 422;
    }
    match error.kind() {
        ErrorKind::TimedOut | ErrorKind::Unavailable => 503,
        _ => 500,
    }
}
