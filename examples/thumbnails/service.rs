//! The thumbnails HTTP service: tiny_http parses the requests, each request gets a yieldable
//! thread of its own, and the image work is yielded as the `thumbnail` task to whatever
//! strategy the executor carries.
//!
//! ```text
//! accept loop (one thread) ──▶ YieldableThread per request:
//!     route · check width · read the body (bounded) · y.apply(thumbnail, job) · reply
//! ```
//!
//! Trade-offs: a thread per request keeps the handler plain blocking code, at the price of a
//! thread hand-off per request (reused threads make that a few microseconds). tiny_http reads
//! each connection on a thread of its own pool and hands whole requests to the accept loop,
//! so a slow client costs one of its threads, never a handler. Requests beyond
//! [`ServiceConfig::max_in_flight`] reading their body or waiting for their work are refused
//! with 503 rather than queued without bound (the refusal runs on the request's own thread:
//! tiny_http already holds a thread per connection, so this adds no new unbounded cost).
//! tiny_http 0.12 drains an unread body into a buffer as large as the declared length, so a
//! declared `Content-Length` the machine cannot reserve would abort the server: such a
//! request gets its 413 and its connection is abandoned ([`MAX_DRAINED`]), which leaks a
//! socket and a tiny_http thread per such request (see docs/thumbnails.md); in production,
//! put a proxy with a body limit in front of it.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use tiny_http::{Header, Method, Request, Response};
use ythread::{ErrorKind, Executor, JoinHandle, YieldableThread, Yielder};

use super::task::{MAX_WIDTH, Rejected, ThumbnailJob, thumbnail};

/// How often the accept loop looks for a stop while no request arrives.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

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

/// A body declared longer than this is not drained after its 413. tiny_http 0.12 drains an
/// unread body into one buffer of the remaining declared length: reserved lazily, that costs
/// little up to here, but a declared length past what the machine can reserve makes the
/// allocation fail and the process abort. Such a request's connection is abandoned instead.
pub(crate) const MAX_DRAINED: u64 = 1 << 30;

/// The default bound on requests handled at once.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// A bound HTTP server and the executor its handlers yield the image work to.
pub(crate) struct Service {
    http: Arc<tiny_http::Server>,
    local_addr: SocketAddr,
    executor: Executor,
    config: ServiceConfig,
    /// Requests reading their body or waiting for their thumbnail.
    busy: Arc<AtomicUsize>,
}

impl Service {
    /// Binds `config.addr`. Nothing is served until [`Service::run`].
    pub(crate) fn bind(config: ServiceConfig, executor: Executor) -> Result<Service, String> {
        let http = tiny_http::Server::http(config.addr).map_err(|e| {
            format!(
                "could not listen on {}: {e}; pick another address or port 0",
                config.addr
            )
        })?;
        let local_addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| "the server is not listening on an IP address".to_owned())?;
        Ok(Service {
            http: Arc::new(http),
            local_addr,
            executor,
            config,
            busy: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The address actually bound (with the port the OS picked for port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The strategy the image work goes to.
    pub(crate) fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Serves until `stop()` says so (it is asked at least every 50 ms), then stops accepting
    /// and gives the requests in flight `grace` to finish; handlers still running then are
    /// cancelled and left to unwind. Returns how many were left running.
    ///
    /// # Errors
    /// If tiny_http's accept loop fails; the handlers are stopped first.
    pub(crate) fn run(self, stop: &dyn Fn() -> bool, grace: Duration) -> io::Result<usize> {
        let mut live: Vec<JoinHandle<()>> = Vec::new();
        let outcome = loop {
            if stop() {
                break Ok(());
            }
            live.retain(|handler| !handler.is_finished());
            match self.http.recv_timeout(POLL_INTERVAL) {
                Ok(Some(request)) => {
                    if let Some(handler) = self.start_handler(request) {
                        live.push(handler);
                    }
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        drop(self.http);
        let left = stop_handlers(live, grace);
        outcome.map(|()| left)
    }

    /// Starts the handler of one request. The accept loop never answers itself: answering
    /// drops the request, and tiny_http drains an unread body on drop, which would block the
    /// loop for as long as the client takes to send it.
    fn start_handler(&self, request: Request) -> Option<JoinHandle<()>> {
        let config = self.config;
        let busy = Arc::clone(&self.busy);
        // One name for every handler: threads are reused only under the name they started with.
        let started =
            YieldableThread::builder()
                .name("thumbnails-request")
                .spawn(&self.executor, move |y| {
                    let mut request = request;
                    let reply = match Slot::take(&busy, config.max_in_flight) {
                        Some(_slot) => answer(y, &mut request, &config),
                        None => overloaded(&request, config.max_in_flight),
                    };
                    respond(request, reply);
                });
        match started {
            Ok(handler) => Some(handler),
            Err(e) => {
                // The request went with the failed closure, and tiny_http closes what it drops.
                eprintln!("thumbnails: could not start a handler thread: {e}; dropped a request");
                None
            }
        }
    }
}

/// One of the [`ServiceConfig::max_in_flight`] places for a request's body and work, given
/// back on drop.
struct Slot<'a>(&'a AtomicUsize);

impl<'a> Slot<'a> {
    fn take(busy: &'a AtomicUsize, max: usize) -> Option<Slot<'a>> {
        busy.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(busy))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The answer when every place is taken: 503, leaving the body unread (a body declared past
/// [`MAX_DRAINED`] is abandoned with its connection, as in [`read_body`]).
fn overloaded(request: &Request, max: usize) -> Reply {
    let mut reply = Reply::text(
        503,
        format!("the server is handling {max} requests already; try again later"),
    );
    reply.abandon = request
        .body_length()
        .is_some_and(|length| length as u64 > MAX_DRAINED);
    reply
}

/// Waits at most `grace` for the handlers, cancels the rest; returns how many were left.
fn stop_handlers(mut live: Vec<JoinHandle<()>>, grace: Duration) -> usize {
    let deadline = Instant::now() + grace;
    for handler in &mut live {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = handler.join_timeout(left);
    }
    live.retain(|handler| !handler.is_finished());
    for handler in &live {
        handler.cancel();
    }
    live.len()
}

/// What a handler answers: a status, a content type, a body.
#[derive(Debug)]
pub(crate) struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    allow_post: bool,
    /// Answer, then leave the connection to tiny_http's thread without draining the body
    /// (see [`MAX_DRAINED`]).
    abandon: bool,
}

impl Reply {
    /// A one-line plain-text reply.
    fn text(status: u16, reason: String) -> Reply {
        let mut body = reason.into_bytes();
        body.push(b'\n');
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
            allow_post: false,
            abandon: false,
        }
    }
}

fn respond(request: Request, reply: Reply) {
    let mut response = Response::from_data(reply.body)
        .with_status_code(reply.status)
        .with_header(header("Content-Type", reply.content_type));
    if reply.allow_post {
        response = response.with_header(header("Allow", "POST"));
    }
    if reply.abandon {
        // Answering through `upgrade` hands back the connection with its unread body instead
        // of draining it; forgetting that stream leaks the connection (a socket and a
        // tiny_http thread, as an idle client holds) rather than letting tiny_http reserve
        // the declared length, which would abort the whole server.
        std::mem::forget(request.upgrade("close", response));
        return;
    }
    // A client that went away needs no answer.
    let _ = request.respond(response);
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static headers are valid")
}

/// Routes and answers one request.
fn answer(y: &Yielder<'_>, request: &mut Request, config: &ServiceConfig) -> Reply {
    let (path, query) = match request.url().split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (request.url().to_owned(), String::new()),
    };
    if path != "/thumbnail" {
        return Reply::text(
            404,
            format!("no such path `{path}`; POST an image to /thumbnail?width=W"),
        );
    }
    if *request.method() != Method::Post {
        let mut reply = Reply::text(
            405,
            format!(
                "{} is not allowed here; POST an image to /thumbnail?width=W",
                request.method()
            ),
        );
        reply.allow_post = true;
        return reply;
    }
    let width = match parse_width(&query) {
        Ok(width) => width,
        Err(reason) => return Reply::text(400, reason),
    };
    let image = match read_body(request, config.max_body) {
        Ok(image) => image,
        Err(reply) => return reply,
    };
    if image.is_empty() {
        return Reply::text(
            400,
            "the body is empty; send a PNG or JPEG image".to_owned(),
        );
    }
    let job = ThumbnailJob {
        image: ByteBuf::from(image),
        width,
        decoder_limits: config.decoder_limits,
    };
    match y.apply(thumbnail, job) {
        Ok(Ok(png)) => Reply {
            status: 200,
            content_type: "image/png",
            body: png.into_vec(),
            allow_post: false,
            abandon: false,
        },
        Ok(Err(rejected)) => Reply::text(rejected_status(&rejected), rejected.reason().to_owned()),
        Err(e) => Reply::text(
            failure_status(&e),
            format!("the thumbnail could not be made: {e}"),
        ),
    }
}

/// The `width` of the query string, in 1..=MAX_WIDTH.
fn parse_width(query: &str) -> Result<u32, String> {
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("width="))
        .ok_or_else(|| {
            format!("the query has no width; add ?width=W with W from 1 to {MAX_WIDTH}")
        })?;
    match value.parse::<u32>() {
        Ok(width) if (1..=MAX_WIDTH).contains(&width) => Ok(width),
        _ => Err(format!(
            "width `{value}` is not a whole number from 1 to {MAX_WIDTH}"
        )),
    }
}

/// Reads the body, refusing one over `max_body` with 413 (by its declared length when it
/// has one, else as it arrives).
fn read_body(request: &mut Request, max_body: u64) -> Result<Vec<u8>, Reply> {
    let too_large = || {
        Reply::text(
            413,
            format!(
                "the body is larger than this server's limit of {max_body} bytes; send a smaller image"
            ),
        )
    };
    match request.body_length() {
        Some(length) if length as u64 > MAX_DRAINED => {
            let mut reply = too_large();
            reply.abandon = true;
            return Err(reply);
        }
        Some(length) if length as u64 > max_body => return Err(too_large()),
        _ => {}
    }
    let mut body = Vec::with_capacity(request.body_length().unwrap_or(0));
    request
        .as_reader()
        .take(max_body + 1)
        .read_to_end(&mut body)
        .map_err(|e| Reply::text(400, format!("could not read the body: {e}")))?;
    if body.len() as u64 > max_body {
        return Err(too_large());
    }
    Ok(body)
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
