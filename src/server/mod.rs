//! The sum server: the article's threaded TCP server, one yieldable thread per connection,
//! the CPU work of each request yielded to whatever strategy the executor carries.
//!
//! ```text
//! accept loop (one thread, one epoll) ──▶ YieldableThread per connection:
//!   · listener readable: accept, admit        read a request · y.apply(sumn, n) · reply · repeat
//!   · a peer left: cancel its handler's work
//! ```
//!
//! Trade-offs: a thread per connection is the simplest code and handles blocking I/O well;
//! handler threads are reused, so a connection costs a hand-off to a parked thread rather
//! than a thread start, but every connection still holds a thread while it is open, and each
//! request costs a few context switches that an event loop avoids (see `docs/server.md` for
//! the figures). The accept loop does constant work per event, whatever the number of open
//! connections: it holds no duplicate of any socket (a handler's socket closes the moment the
//! handler drops it), learns of departures from edge-triggered hang-up events, and finds the
//! connection to shed at the cap by sampling. The defences, each bounded: a cap on
//! connections ([`ServerConfig::max_connections`]), a whole-request deadline in line framing,
//! a bounded drain after an over-long request, write timeouts for clients that stop reading,
//! and cancellation of work for clients that left. The default wire protocol has no framing
//! (see [`protocol`]) so that the article's own client works unchanged; [`Framing::Line`] is
//! the opt-in for clients that pipeline. Stopping is graceful and bounded (see
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
mod resting;
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
