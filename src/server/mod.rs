//! The sum server: the article's threaded TCP server, one yieldable thread per connection,
//! the CPU work of each request yielded to whatever strategy the executor carries.
//!
//! ```text
//! accept loop (one thread) ──▶ YieldableThread per connection:
//!                                 read n  ·  y.apply(sumn, n)  ·  write the answer  ·  repeat
//! ```
//!
//! Trade-offs: a thread per connection is the simplest code and handles blocking I/O well,
//! but costs a thread start (tens of microseconds) per connection and a thread per open
//! connection; the article's client opens a connection per request, so that cost is part of
//! every number it measures. The wire protocol has no framing (see [`protocol`]); it is kept
//! so the article's own client works unchanged. Stopping is graceful and bounded (see
//! [`Server::run`]). The accept loop wakes every [`POLL_INTERVAL`] to notice a stop, which
//! bounds how late a stop or a signal is seen.

mod accept;
mod config;
mod connection;
mod connections;
mod limits;
mod listener;
pub mod protocol;
mod reader;
mod running;
mod stop;
mod sys;

use std::time::Duration;

pub use config::{Framing, ServerConfig, Work, parse_duration};
pub use connections::{DEFAULT_SHED_IDLE_AFTER, SHED_SAMPLE};
pub use limits::{ConnectionLimits, RESERVED_FDS, default_max_connections, max_backlog};
pub use listener::{DEFAULT_SHUTDOWN_GRACE, Server};
pub use running::{RunningServer, ShutdownHandle};
pub use sys::{install_signal_handlers, termination_signal};

/// How often the accept loop checks for a stop while no connection arrives.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
