//! The sum server: the article's threaded TCP server, each connection served by a yieldable
//! thread, the CPU work of each request yielded to whatever strategy the executor carries.
//!
//! ```text
//! acceptors (yieldable threads, blocked in accept)      watcher (one thread, one epoll)
//!   accept · admit · read a request ·                     · a resting connection has input:
//!   y.apply(sumn, n) · reply · rest the connection ──▶       a handler for it, or the close
//!   · accept again                                       · a peer left mid-request: cancel
//! ```
//!
//! Trade-offs: a thread per connection in service is the simplest code and handles blocking
//! I/O well. The kernel hands each new connection to a thread already waiting in `accept`
//! (leader/follower, `accept.rs`), which serves it: no hand-off between threads on the way in.
//! After its first reply a connection rests in the watcher's epoll rather than on a thread
//! (`resting.rs`): a client that sends one request per connection costs no thread while it
//! reads its reply and closes, and a connection idle after its first reply holds a descriptor,
//! not a thread (one that has sent nothing yet holds the acceptor that took it). A
//! client that comes back for more gets a handler of its own that keeps its thread. The
//! price: under CPU contention a new connection waits for its acceptor to be scheduled, which
//! lengthens the latency tail (see `docs/server.md` for the figures). The watcher does
//! constant work per event, whatever the number of open connections: it holds no duplicate
//! of any socket (a handler's socket closes the moment the handler drops it), learns of
//! departures from edge-triggered hang-up events, and the connection to shed at the cap is
//! found by sampling. The defences, each bounded: a cap on connections
//! ([`ServerConfig::max_connections`]), a whole-request deadline in line framing, a bounded
//! drain after an over-long request, write timeouts for clients that stop reading, and
//! cancellation of work for clients that left. The default wire protocol has no framing (see
//! [`protocol`]) so that the article's own client works unchanged; [`Framing::Line`] is the
//! opt-in for clients that pipeline. Stopping is graceful and bounded (see [`Server::run`]).
//! The watcher wakes every [`POLL_INTERVAL`] to notice a stop, which bounds how late a stop
//! or a signal is seen.

mod accept;
mod acceptors;
mod config;
mod connection;
mod connections;
mod hub;
mod limits;
mod listener;
mod lock;
pub mod protocol;
mod reader;
mod resting;
mod running;
mod state;
mod stop;
mod sys;
mod watcher;

use std::time::Duration;

pub use config::{Framing, ServerConfig, Work, parse_duration};
pub use connections::{DEFAULT_SHED_IDLE_AFTER, SHED_SAMPLE};
pub use limits::{ConnectionLimits, RESERVED_FDS, default_max_connections, max_backlog};
pub use listener::{DEFAULT_SHUTDOWN_GRACE, Server};
pub use running::{RunningServer, ShutdownHandle};
pub use sys::{install_signal_handlers, termination_signal};

/// How often the watcher checks for a stop while no connection has news.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
