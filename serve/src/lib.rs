//! A thread per request, not per connection: serve any TCP protocol on yieldable threads.
//!
//! ```text
//! acceptors (yieldable threads, blocked in accept)      watcher (one thread, one epoll)
//!   accept · admit · first byte within 2 ms? ─ no ─▶ rest   · a resting connection has input
//!        yes: turn · turn · ... (while input is           nobody took: a thread for it
//!        buffered) · rest ────────────────────────▶       · a peer left mid-turn: cancel it
//!   · carry on: serve resting connections with            · rested a whole idle timeout: close
//!     input now, taken off the epoll · accept again
//! ```
//!
//! The user supplies a [`Protocol`]: its [`turn`](Protocol::turn) is called on a yieldable
//! thread when a connection has input, reads and writes the [`Connection`] with ordinary
//! blocking calls, yields its CPU work with `y.apply(..)` to whatever strategy the executor
//! carries, and returns [`Turn::Keep`] or [`Turn::Close`]. Between turns a connection with
//! nothing buffered rests in the watcher's epoll and holds no thread; so does a new one until
//! its first byte. Buffered (pipelined) input starts the next turn at once on the same thread,
//! so a connection is never served by two turns at once and its requests are answered in
//! order. A thread whose connection rests or closes *carries on*: it takes the next ready
//! event off the watcher's epoll without waiting and serves that resting connection's turn
//! itself, until none is ready; the watcher starts a thread only for input nobody took. Threads follow the turns in progress: at most those, the acceptors waiting in
//! `accept` (4 at most) and the watcher. This is how Tomcat's NIO connector serves blocking
//! servlets (a poller holds idle keep-alive connections, a bounded set of threads takes them
//! only while a request is in progress), with threads that are reused and cost a microsecond
//! to hand a turn, pooled stacks, and CPU work that leaves the thread.
//!
//! Every protocol gets the defences, each bounded (see [`ServeConfig`]): a connection cap
//! derived from the fd limit and a thread cap derived from the thread and memory-map limits
//! ([`ConnectionLimits`]), both printed at start by the servers of this workspace, past which
//! newcomers get the protocol's [`busy`](Protocol::busy) reply instead of a hang; shedding the
//! idlest connection for a newcomer at the cap; an idle timeout for resting connections; a
//! turn deadline from a request's first byte, however it is trickled; write timeouts for
//! clients that stop reading; [`Connection::close_after_reply`]'s bounded drain; cancellation
//! of a turn whose client left (queued work leaves the strategy's line, a subprocess worker is
//! killed); shortages of descriptors and threads survived and said once on stderr; a graceful,
//! bounded stop ([`Server::run`]); SIGINT and SIGTERM ([`Server::stop_on_signals`]).
//!
//! Why a crate of its own (`ythread-serve`, one dependency line away) rather than a module of
//! `ythread` behind a feature: the core crate is about threads and strategies and has no
//! sockets; the serving layer needs `socket2`, epoll and signal handling, which a user of the
//! core alone should not compile, and a separate crate makes the layering visible in the
//! folder layout (`ythread/`, `executors/`, `serve/`). It depends on `ythread` only (no
//! tokio, no executor crate): the executor is the caller's.
//!
//! Trade-offs: the protocol is blocking code, so a turn reading a request that trickles in
//! holds its thread until the request is whole or its deadline passes. A keep-alive request
//! after the first pays two `epoll_ctl` calls (its connection re-registered for its input, then
//! for its hang-up) that a thread per connection waiting in `read` would not; under load it
//! pays no hand-off, because the thread that finished a turn takes the next ready connection
//! itself (0.24 context switches a request, against 1.5 when the watcher woke a thread for
//! every one: `wrk -t2 -c256` on `GET /sum?n=1` went from 0.76-1.4x to 1.4-1.9x axum's rate
//! with its work on rayon, `examples/http_peers.rs`). Only input that arrives while every
//! thread is inside a turn waits for the watcher to start a thread for it, so a long turn
//! never holds up other connections. Why this rather than the alternatives: a thread that
//! waits on its own connection for the next request helps only when that request comes
//! within the wait, which under 256 connections (a round trip of milliseconds) it does not,
//! and it holds a thread per waiting connection; leader/followers (idle threads taking turns
//! in `epoll_wait`) still wakes a follower per event; carrying on wakes nobody while there is
//! work. The price is fairness under saturation: a thread serves whatever is ready next,
//! so the p99 latency under `wrk` rose from 10-15 ms to about 31 ms, level with axum's. In
//! exchange a quiet connection costs a descriptor and a few hundred bytes instead of a
//! thread, six memory maps and 14 KiB. The
//! watcher wakes every [`POLL_INTERVAL`] to notice a stop, which bounds how late a stop or a
//! signal is seen. Linux only (epoll, `/proc`).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod accept;
mod acceptors;
mod config;
mod connection;
mod connections;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod hub;
mod limits;
mod listener;
mod lock;
mod protocol;
mod ready;
mod resting;
mod running;
mod state;
mod stop;
mod sys;
mod turns;
mod watcher;

use std::time::Duration;

pub use accept::{FIRST_BYTE_WAIT, MAX_FIRST_BYTE_WAITERS};
pub use config::{
    ConfigError, DEFAULT_SHED_IDLE_AFTER, DEFAULT_STOP_GRACE, ServeConfig, parse_duration,
};
pub use connection::{Connection, DRAIN_LIMIT, DRAIN_TIME, is_timeout};
pub use connections::SHED_SAMPLE;
pub use limits::{
    ConnectionLimits, LimitSource, MAPS_PER_THREAD, RESERVED_FDS, RESERVED_MAPS,
    default_max_connections, max_backlog,
};
pub use listener::Server;
pub use protocol::{Protocol, Turn};
pub use running::{RunningServer, ShutdownHandle};
pub use sys::{install_signal_handlers, termination_signal};

/// How often the watcher checks for a stop while no connection has news.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The example of the crate's README, run as a doctest so that it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
