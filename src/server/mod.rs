//! The sum server: the article's threaded TCP server, on the serving layer `ythread-serve`.
//! Each request is one turn on a yieldable thread, its CPU work yielded to whatever strategy
//! the executor carries; between requests a connection rests without a thread.
//!
//! This module is only the protocol: [`ServerConfig`] and its [`Work`] and [`Framing`], the
//! request and reply lines ([`protocol`]), reading a request in either framing, and the turn
//! that answers it. Everything else (acceptors, the watcher that rests connections, the caps
//! and shedding, drains, write timeouts, departures that cancel work, the graceful stop,
//! signals) is `ythread-serve`'s, shared with every protocol; see its crate docs and
//! `docs/server.md` for the trade-offs. The default wire protocol has no framing (see
//! [`protocol`]) so that the article's own client works unchanged; [`Framing::Line`] is the
//! opt-in for clients that pipeline.

mod config;
pub mod protocol;
mod reader;
mod turn;

use std::io;

use ythread::Executor;

pub use config::{Framing, ServerConfig, Work};
pub use ythread_serve::{
    ConnectionLimits, DEFAULT_SHED_IDLE_AFTER, DEFAULT_STOP_GRACE, POLL_INTERVAL, RESERVED_FDS,
    RunningServer, SHED_SAMPLE, ShutdownHandle, default_max_connections, install_signal_handlers,
    max_backlog, parse_duration, termination_signal,
};

/// The sum server: [`Server::bind`] gives a [`ythread_serve::Server`] speaking the sum
/// protocol.
///
/// ```
/// use ythread_suite::server::{Server, ServerConfig};
/// use ythread_suite::client::request_once;
/// use std::time::Duration;
///
/// let server = Server::bind(ServerConfig::default(), ythread::Executor::inline())?.spawn();
/// let reply = request_once(server.addr(), b"25000", Duration::from_secs(10))?;
/// assert_eq!(reply, "312512500");
/// server.shutdown()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub enum Server {}

impl Server {
    /// Validates `config` and binds its address. Nothing is accepted until
    /// [`ythread_serve::Server::run`] or [`ythread_serve::Server::spawn`].
    ///
    /// # Errors
    /// `InvalidInput` for a configuration that cannot work (a max n whose answer overflows, a
    /// zero idle timeout), or the OS error of binding (address in use, no permission).
    pub fn bind(config: ServerConfig, executor: Executor) -> io::Result<ythread_serve::Server> {
        config.validate()?;
        let protocol = turn::SumProtocol {
            work: config.work,
            max_n: config.max_n,
            direct_below: config.direct_below,
            framing: config.framing,
        };
        Ok(
            ythread_serve::Server::bind(config.addr, config.serve_config(), executor, protocol)?
                .named("sumserver"),
        )
    }
}
