//! The parent's half of a job's start: the moment the worker becomes involved (which arms the
//! job's deadline), and the large arguments it receives by direct copies before its frame.
//!
//! Kept apart from `transport/direct.rs`, which does the copies for both sides: what to do
//! when a worker asked for room is pool policy (arm the deadline, count a decline), and the
//! worker side must not see it.

use std::time::{Duration, Instant};

use super::deadline::Watch;
use crate::subprocess::transport::direct;
use crate::subprocess::transport::frame::FrameReceiver;
use crate::subprocess::transport::payload::{Refusal, SendApart};
use crate::subprocess::transport::protocol;
use crate::untrusted::{TEXT_LIMIT, clean};

/// Arms a worker's watch once, when the job starts to involve the worker: at its first
/// direct copy, or when its frame is sent. Serialising the arguments before that counts
/// neither against the deadline nor for a cancel's kill.
pub(super) struct JobStart<'w> {
    pub(super) watch: &'w Watch,
    pub(super) timeout: Option<Duration>,
    pub(super) armed: bool,
}

impl JobStart<'_> {
    /// Arms the watch unless it is armed already; false if the job's handler was cancelled
    /// first, and the job must not start.
    pub(super) fn arm(&mut self) -> bool {
        if !self.armed {
            let deadline = self
                .timeout
                .and_then(|limit| Instant::now().checked_add(limit));
            self.armed = self.watch.arm(deadline);
        }
        self.armed
    }
}

/// Moves a job's large byte strings into the worker by direct copies: asks it for room, then
/// writes into it.
pub(super) struct ArgsToWorker<'a, 'w> {
    pub(super) pid: u32,
    /// Whether the worker's socket is open for sending.
    pub(super) open: bool,
    pub(super) link: &'a mut FrameReceiver,
    pub(super) message: &'a mut Vec<u8>,
    /// Arms the job's watch before the first `want`: from then on the worker is involved.
    pub(super) start: &'a mut JobStart<'w>,
    /// Whether the next `want` is the job's first.
    pub(super) first: bool,
    /// Whether the worker declined direct copies.
    pub(super) declined: bool,
}

impl SendApart for ArgsToWorker<'_, '_> {
    fn send_apart(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        if !self.start.arm() {
            return Err(Refusal::Cancelled);
        }
        let pid = self.pid;
        let gone = || Refusal::Lost(format!("worker process {pid} is gone"));
        if !self.open {
            return Err(gone());
        }
        let first = u64::from(std::mem::replace(&mut self.first, false));
        protocol::small_message(
            self.message,
            protocol::TO_WORKER_WANT,
            &[bytes.len() as u64, first],
        );
        self.link.wire().send(self.message).map_err(|_| gone())?;
        let answer = self.link.recv().map_err(|e| match e {
            e if e.is_garbled() => Refusal::Lost(format!("worker process {pid} misbehaved: {e}")),
            _ => gone(),
        })?;
        match answer.split_first() {
            Some((&protocol::FROM_WORKER_ROOM, fields)) => {
                let [address] = protocol::small_fields(fields)
                    .ok_or_else(|| Refusal::Lost("a malformed answer to `want`".to_owned()))?;
                direct::write_to(pid, address, bytes).map_err(|e| {
                    Refusal::Lost(format!("could not write into worker process {pid}: {e}"))
                })
            }
            Some((&protocol::FROM_WORKER_NO_ROOM, why)) => Err(Refusal::NoRoom(clean(
                &String::from_utf8_lossy(why),
                TEXT_LIMIT,
            ))),
            Some((&protocol::FROM_WORKER_DECLINED, [])) => {
                self.declined = true;
                Err(Refusal::Declined)
            }
            _ => Err(Refusal::Lost(format!(
                "worker process {pid} answered `want` with something else"
            ))),
        }
    }
}
