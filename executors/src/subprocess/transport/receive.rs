//! Receiving a frame: poll briefly, then block.
//!
//! A blocking receive puts the thread to sleep, and waking it again costs a scheduler round
//! trip, more when the wake-up has to bring an idle core out of its sleep. When the answer is
//! expected within microseconds, polling with `try_recv` for a short budget first skips that
//! wake-up. Each poll yields the core, so a peer that shares it can still run. The budget is only spent when it is
//! likely to pay off: after a receive that the spin missed, [`Receiver`] blocks straight away
//! for the next 1, 2, 4 ... 64 receives before probing again, so a worker that runs long tasks
//! costs its caller at most one wasted budget every 64 jobs, while tiny jobs keep the fast path.
//! A receive that knows the other side is busy for a while (copying a large payload) polls
//! that much longer, and its miss does not count ([`Receiver::recv_expecting`]).
//! See `docs/subprocess.md` for the measurements behind the default.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use super::socket::{Socket, SocketError};

/// How many receives a run of misses may skip spinning, at most.
const MAX_BACKOFF: u32 = 64;

/// One end of a worker's socket, with an adaptive spin-then-block receive.
pub(crate) struct Receiver {
    socket: Socket,
    /// The other process's pidfd, if known: its exit ends a blocked wait.
    peer: Option<OwnedFd>,
    spin: Duration,
    /// Receives left that block without spinning.
    skip: u32,
    /// What `skip` becomes after the next miss.
    backoff: u32,
}

impl Receiver {
    pub(crate) fn new(socket: Socket, peer: Option<OwnedFd>, spin: Duration) -> Self {
        Receiver {
            socket,
            peer,
            spin,
            skip: 0,
            backoff: 1,
        }
    }

    /// The socket, to send on.
    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Sends one packet; a peer that exits ends a wait for room.
    pub(crate) fn send(&self, packet: &[u8]) -> Result<(), SocketError> {
        self.socket
            .send(packet, self.peer.as_ref().map(AsFd::as_fd))
    }

    /// Receives a packet if one is waiting, without blocking.
    pub(crate) fn try_recv(&mut self, into: &mut Vec<u8>) -> Result<bool, SocketError> {
        self.socket.try_recv(into)
    }

    /// Waits for the next packet. `Err(SocketError::Closed)` means the other side is gone.
    pub(crate) fn recv(&mut self, into: &mut Vec<u8>) -> Result<(), SocketError> {
        if self.spin.is_zero() {
            return self.block(into);
        }
        if self.skip > 0 {
            self.skip -= 1;
            return self.block(into);
        }
        if self.poll(self.spin, into)? {
            self.backoff = 1;
            return Ok(());
        }
        self.skip = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.block(into)
    }

    /// Waits for a packet that should come after about `expected` (the other side is busy
    /// copying): polls that much longer than the budget, when polling is on, and a miss does
    /// not make later receives block.
    pub(crate) fn recv_expecting(
        &mut self,
        expected: Duration,
        into: &mut Vec<u8>,
    ) -> Result<(), SocketError> {
        if self.spin.is_zero() || !self.poll(self.spin + expected, into)? {
            return self.block(into);
        }
        Ok(())
    }

    fn block(&mut self, into: &mut Vec<u8>) -> Result<(), SocketError> {
        self.socket.recv(into, self.peer.as_ref().map(AsFd::as_fd))
    }

    /// Polls for up to `budget`; false if nothing came.
    fn poll(&mut self, budget: Duration, into: &mut Vec<u8>) -> Result<bool, SocketError> {
        let started = Instant::now();
        loop {
            if self.socket.try_recv(into)? {
                return Ok(true);
            }
            if started.elapsed() >= budget {
                return Ok(false);
            }
            std::thread::yield_now();
        }
    }
}
