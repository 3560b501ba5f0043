//! A server under measurement, whichever it is: the sum server on yieldable threads with one
//! strategy, or the tokio peer. The sections only need its address and a way to stop it, so
//! both are measured by the same client code, side by side.

use std::net::SocketAddr;

use ythread::Executor;
use ythread_suite::server::{RunningServer, Server, ServerConfig, Work};

use crate::tokio_peer::{TokioForm, TokioServer};

/// A server listening on loopback.
pub(crate) trait Served {
    fn addr(&self) -> SocketAddr;
    /// Stops the server, boundedly; the error says what did not stop cleanly.
    fn stop(self: Box<Self>) -> Result<(), String>;
}

impl Served for RunningServer {
    fn addr(&self) -> SocketAddr {
        RunningServer::addr(self)
    }

    fn stop(self: Box<Self>) -> Result<(), String> {
        self.shutdown().map_err(|e| e.to_string())
    }
}

impl Served for TokioServer {
    fn addr(&self) -> SocketAddr {
        TokioServer::addr(self)
    }

    fn stop(self: Box<Self>) -> Result<(), String> {
        self.shutdown()
    }
}

/// A started server, or why it could not start.
pub(crate) type Started = Result<Box<dyn Served>, String>;

/// The sum server yielding to `executor`; requests below `direct_below` are computed
/// directly (0 yields every request).
pub(crate) fn sum_server(executor: &Result<Executor, String>, direct_below: u64) -> Started {
    let executor = executor.as_ref().map_err(Clone::clone)?;
    let config = ServerConfig {
        direct_below,
        ..ServerConfig::for_work(Work::Sumn)
    };
    Server::bind(config, executor.clone())
        .map(|server| Box::new(server.spawn()) as Box<dyn Served>)
        .map_err(|e| format!("could not start the sum server: {e}"))
}

/// The tokio peer in `form`, with one runtime worker (and rayon thread) per core.
pub(crate) fn tokio_peer(form: TokioForm, cores: usize) -> Started {
    TokioServer::start(form, cores)
        .map(|server| Box::new(server) as Box<dyn Served>)
        .map_err(|e| format!("unavailable: the tokio peer could not start: {e}"))
}
