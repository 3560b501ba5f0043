//! What a protocol supplies: [`Protocol`], its turn handler and its refusals.
//!
//! A *turn* is one request's worth of a connection's life: the serving layer calls
//! [`Protocol::turn`] on a yieldable thread when the connection has input, and the turn reads
//! the request, yields its CPU work, writes the reply, all with ordinary blocking calls, and
//! says whether to [`Turn::Keep`] the connection. Between turns the connection rests in the
//! poller without a thread. The layer, not the protocol, owns everything else: admission and
//! the cap, shedding, idle closes, departures, the stop.
//!
//! Trade-off: a turn is a plain function of a blocking stream, so a protocol is written as
//! the simplest threaded server would write it, with no state machine; the price is that a
//! turn reading a request that arrives in pieces holds its thread until the request is whole
//! or its deadline passes (the deadline bounds it, see
//! [`ServeConfig::turn_deadline`](crate::ServeConfig::turn_deadline)).

use std::time::Duration;

use ythread::Yielder;

use crate::Connection;

/// What a turn decides about its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Keep the connection: the next turn starts at once if input is buffered, else the
    /// connection rests until its next input.
    Keep,
    /// Close the connection.
    Close,
}

/// A wire protocol served by [`Server`](crate::Server).
pub trait Protocol: Send + Sync + 'static {
    /// Serves one request of `connection`, which has input (buffered, or waiting in the
    /// socket). Call [`Connection::begin_work`] once the request is whole and
    /// [`Connection::end_work`] once its work is done, so that the connection is protected
    /// from shedding and a departure cancels the work only in between. A panic ends only this
    /// connection.
    fn turn(&self, y: &Yielder<'_>, connection: &mut Connection<'_>) -> Turn;

    /// The bytes that tell a client it was not admitted, or is being closed, because the
    /// server is busy; `why` is one line of explanation. Sent without blocking, then the
    /// connection closes.
    fn busy(&self, why: &str) -> Vec<u8>;

    /// The bytes sent to a connection closed after `idle_for` without a request (nothing by
    /// default).
    fn idle(&self, idle_for: Duration) -> Vec<u8> {
        let _ = idle_for;
        Vec::new()
    }
}
