//! The tokio peer: the sum server's wire protocol (`ythread_suite::server::protocol`) served
//! by a tokio runtime, so the comparison can answer "ythread or tokio?" with numbers taken in
//! the same run, against the same clients.
//!
//! Three forms, the ones a tokio user reaches for:
//! - `tokio, work inline`: `sumn` runs inside the async task, blocking its runtime worker for
//!   the whole computation (what the tokio docs warn against, and what naive code does);
//! - `tokio + spawn_blocking`: the work goes to tokio's blocking pool (up to 512 threads, so
//!   it oversubscribes the cores much like a thread per connection does);
//! - `tokio + rayon`: the work goes to a dedicated rayon pool of one thread per core and the
//!   reply comes back on a `tokio::sync::oneshot`, the pattern the tokio docs recommend for
//!   CPU-bound work.
//!
//! Trade-offs: the runtime has one worker per core, as `#[tokio::main]` would; connection
//! I/O is async, so the peer needs no thread per connection. Protocol behaviour matches the
//! sum server's: each read is one request, bad input gets its `error:` line, an over-long
//! request closes the connection, an idle one is closed after [`IDLE_TIMEOUT`].

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{oneshot, watch};
use ythread_suite::server::Work;
use ythread_suite::server::protocol::{self, MAX_REQUEST_BYTES};
use ythread_suite::tasks::sumn;

/// Where the peer runs a request's CPU work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokioForm {
    /// In the async task, on the runtime's worker.
    Inline,
    /// `tokio::task::spawn_blocking`.
    SpawnBlocking,
    /// A dedicated rayon pool, the reply on a oneshot channel.
    Rayon,
}

impl TokioForm {
    pub(crate) const ALL: [TokioForm; 3] = [
        TokioForm::Inline,
        TokioForm::SpawnBlocking,
        TokioForm::Rayon,
    ];

    /// The row label in the report.
    pub(crate) fn label(self) -> &'static str {
        match self {
            TokioForm::Inline => "tokio, work inline",
            TokioForm::SpawnBlocking => "tokio + spawn_blocking",
            TokioForm::Rayon => "tokio + rayon",
        }
    }
}

/// A connection with no request for this long is closed, as the sum server's default.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long in-flight work may take to finish when the peer stops.
const STOP_BOUND: Duration = Duration::from_secs(5);

/// A running tokio peer. Dropping it stops it too.
pub(crate) struct TokioServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    runtime: Option<Runtime>,
}

impl TokioServer {
    /// Starts the peer in `form` with `threads` runtime workers (and as many rayon threads).
    pub(crate) fn start(form: TokioForm, threads: usize) -> io::Result<TokioServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("tokio-peer")
            .enable_io()
            .enable_time()
            .build()?;
        let pool = match form {
            TokioForm::Rayon => Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("tokio-peer-rayon-{i}"))
                    .build()
                    .map_err(io::Error::other)?,
            )),
            _ => None,
        };
        let listener = runtime.block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        runtime.spawn(accept_loop(listener, form, pool, stopped));
        Ok(TokioServer {
            addr,
            stop,
            runtime: Some(runtime),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes the connections and waits, boundedly, for the runtime.
    pub(crate) fn shutdown(mut self) -> Result<(), String> {
        self.stop_runtime()
    }

    fn stop_runtime(&mut self) -> Result<(), String> {
        let _ = self.stop.send(true);
        if let Some(runtime) = self.runtime.take() {
            // Tasks are dropped at their next await; work running inline or in the blocking
            // pool gets STOP_BOUND to finish before its threads are left behind.
            runtime.shutdown_timeout(STOP_BOUND);
        }
        Ok(())
    }
}

impl Drop for TokioServer {
    fn drop(&mut self) {
        let _ = self.stop_runtime();
    }
}

async fn accept_loop(
    listener: TcpListener,
    form: TokioForm,
    pool: Option<Arc<rayon::ThreadPool>>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, form, pool.clone()));
            }
        }
    }
}

/// The sum server's connection loop, async: read a request, compute, reply, until EOF.
async fn serve(mut stream: TcpStream, form: TokioForm, pool: Option<Arc<rayon::ThreadPool>>) {
    let max_n = Work::Sumn.default_max_n();
    let mut buffer = [0u8; MAX_REQUEST_BYTES + 1];
    loop {
        let len = match tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(len)) => len,
            Err(_elapsed) => {
                let reply = protocol::error_reply(format_args!(
                    "no request within {IDLE_TIMEOUT:?}; closing the connection"
                ));
                let _ = stream.write_all(reply.as_bytes()).await;
                return;
            }
        };
        let (reply, keep_open) = match protocol::parse_request(&buffer[..len], max_n) {
            Ok(n) => (compute(form, pool.as_deref(), n).await, true),
            Err(bad) => (protocol::error_reply(&bad), !bad.closes_connection()),
        };
        if stream.write_all(reply.as_bytes()).await.is_err() || !keep_open {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

async fn compute(form: TokioForm, pool: Option<&rayon::ThreadPool>, n: u64) -> String {
    let outcome = match (form, pool) {
        (TokioForm::Rayon, Some(pool)) => {
            let (reply, answer) = oneshot::channel();
            pool.spawn(move || {
                let _ = reply.send(sumn.call(n));
            });
            answer
                .await
                .map_err(|_| "the rayon pool dropped the work; restart the server".to_owned())
        }
        (TokioForm::SpawnBlocking, _) => tokio::task::spawn_blocking(move || sumn.call(n))
            .await
            .map_err(|e| format!("the blocking task failed ({e}); try again")),
        _ => Ok(sumn.call(n)),
    };
    match outcome {
        Ok(value) => protocol::answer_reply(value),
        Err(message) => protocol::error_reply(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ythread_suite::client::Connection;

    const BOUND: Duration = Duration::from_secs(30);

    #[test]
    fn every_form_speaks_the_sum_server_protocol() {
        for form in TokioForm::ALL {
            let server = TokioServer::start(form, 2).unwrap();
            let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
            assert_eq!(
                connection.request(b"25000").unwrap(),
                "312512500",
                "{form:?}"
            );
            assert_eq!(connection.request(b" 4\n").unwrap(), "10", "{form:?}");
            let bad = connection.request(b"x").unwrap();
            assert!(bad.starts_with("error: `x` is not a whole number"), "{bad}");
            assert_eq!(connection.request(b"1").unwrap(), "1", "{form:?}");
            server.shutdown().unwrap();
        }
    }
}
