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

use std::time::{Duration, Instant};

use ipc_channel::ipc::IpcBytesReceiver;
use ipc_channel::{IpcError, TryRecvError};

/// How many receives a run of misses may skip spinning, at most.
const MAX_BACKOFF: u32 = 64;

/// One end of a byte channel, with an adaptive spin-then-block receive.
pub(super) struct Receiver {
    channel: IpcBytesReceiver,
    spin: Duration,
    /// Receives left that block without spinning.
    skip: u32,
    /// What `skip` becomes after the next miss.
    backoff: u32,
}

impl Receiver {
    pub(super) fn new(channel: IpcBytesReceiver, spin: Duration) -> Self {
        Receiver {
            channel,
            spin,
            skip: 0,
            backoff: 1,
        }
    }

    /// Waits for the next frame. `Err(IpcError::Disconnected)` means the other side is gone.
    pub(super) fn recv(&mut self) -> Result<Vec<u8>, IpcError> {
        if self.spin.is_zero() {
            return self.channel.recv();
        }
        if self.skip > 0 {
            self.skip -= 1;
            return self.channel.recv();
        }
        if let Some(received) = self.poll(self.spin) {
            self.backoff = 1;
            return received;
        }
        self.skip = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.channel.recv()
    }

    /// Waits for a frame that should come after about `expected` (the other side is busy
    /// copying): polls that much longer than the budget, when polling is on, and a miss does
    /// not make later receives block.
    pub(super) fn recv_expecting(&mut self, expected: Duration) -> Result<Vec<u8>, IpcError> {
        if self.spin.is_zero() {
            return self.channel.recv();
        }
        match self.poll(self.spin + expected) {
            Some(received) => received,
            None => self.channel.recv(),
        }
    }

    /// Polls for up to `budget`; `None` if nothing came.
    fn poll(&mut self, budget: Duration) -> Option<Result<Vec<u8>, IpcError>> {
        let started = Instant::now();
        loop {
            match self.channel.try_recv() {
                Ok(frame) => return Some(Ok(frame)),
                Err(TryRecvError::IpcError(e)) => return Some(Err(e)),
                Err(TryRecvError::Empty) if started.elapsed() < budget => {
                    std::thread::yield_now();
                }
                Err(TryRecvError::Empty) => return None,
            }
        }
    }
}
