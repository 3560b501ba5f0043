//! Connections that rest between requests: after its first reply, a handler hands its
//! connection to the watcher (see [`super::watcher`]) and goes on to other work, and the
//! connection waits for its next input in the watcher's epoll instead of in a blocking read.
//!
//! Why: the article's client, like most HTTP/1.0-style clients, sends one request per
//! connection and then closes. A handler that waited on its thread for that end-of-stream
//! paid two context switches (sleep, wake) per connection for nothing but a `read` that
//! returns 0, and held its thread meanwhile; the watcher instead sees the end among the
//! other events of one wake-up and closes the socket itself. A connection that does send a
//! second request is woken into a new handler, which from then on keeps its thread and waits
//! in blocking reads as before: a client that keeps its connection for many requests pays the
//! hand-back once, not per request.
//!
//! While it rests, the watcher enforces the idle timeout (the same `error: no request
//! within ...` line a handler sends), the connection is a candidate for shedding at the cap
//! like any idle one, and a stop closes it. A connection rests only with nothing buffered
//! (in line framing, a pipelined request keeps its handler).
//!
//! Trade-off: a keep-alive client's second request costs one more hand-off (to the watcher
//! and to a new handler) than the others; every later request costs the same as the first.

use std::io;
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::sync::Arc;

use socket2::SockRef;

use super::connections::Admitted;

impl Admitted {
    /// Hands the connection to the watcher to wait for its next input; the handler then goes
    /// on. If the poller cannot watch it (out of memory), it rests until its idle
    /// timeout, then closes.
    pub(crate) fn rest(self) {
        let socket = Arc::clone(&self.socket);
        let key = self.key.to_u64();
        let shared = Arc::clone(&self.departure.shared);
        let mut resting = shared.resting.lock();
        if resting.closed {
            // The server is stopping: nobody would wake it.
            drop(resting);
            self.close();
            return;
        }
        resting.connections.push(self);
        drop(resting);
        // Only now: any input reported from here on finds the connection in the queue, and
        // input that came before is reported too (the watch is level-triggered).
        let _ = shared.poller.watch_input_once(&*socket, key);
    }
}

/// What a woken connection has for its next handler.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Input {
    /// Bytes of a request.
    Request,
    /// End-of-stream, a reset or another error: the connection is over.
    Closed,
    /// Nothing after all.
    Nothing,
}

/// Looks at the next input of `socket` without taking it and without blocking.
pub(crate) fn peek(socket: &TcpStream) -> Input {
    let mut byte = [MaybeUninit::<u8>::uninit()];
    loop {
        return match SockRef::from(socket)
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        {
            Ok(0) => Input::Closed,
            Ok(_) => Input::Request,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Input::Nothing,
            Err(_) => Input::Closed,
        };
    }
}
