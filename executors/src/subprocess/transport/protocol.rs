//! The wire protocol between a pool and its workers.
//!
//! Start-up: the parent puts a [`Marker`](super::marker::Marker) in the worker's environment (protocol version, parent
//! pid, spin budget, memory and payload limits, the descriptors of its shared-memory regions
//! and of its end of the worker's socket, and the name of a one-shot ipc-channel server; see
//! `marker.rs`). The worker answers with a [`Hello`] on that server: its pid, protocol version
//! and registry digest. From then on jobs and replies are frames (see `frame.rs`) on the
//! worker's socket (see `socket.rs`), which only the parent and that worker hold, so each side
//! sees end-of-file when the other closes it; the parent also watches the worker's pidfd. Their
//! bodies:
//!
//! ```text
//! to the worker:
//!   job:    0x00 ++ job body                 (see `crate::wire`)
//!   want:   0x01 ++ u64 LE length ++ u64 LE first    room for a byte string sent apart;
//!                                                    first = 1 for a job's first (older
//!                                                    room is stale: drop it)
//!   taken:  0x02                            the parent has read the offered result bytes
//! from the worker:
//!   reply:  reply body                      (see `crate::wire`: tags 0x00-0x12)
//!   room:   0x40 ++ u64 LE address          the room asked for by a `want`
//!   no room: 0x41 ++ UTF-8 reason
//!   declined: 0x43                          no direct copies (no longer dumpable)
//!   offer:  0x42 ++ u64 LE address ++ u64 LE length       result bytes to read, sent apart
//! ```
//!
//! Arguments and results above `payload::SHM_THRESHOLD` travel through the worker's
//! shared-memory regions (see `shm.rs`), written there directly by the encoder. Byte strings
//! of at least `direct::DIRECT_THRESHOLD` within them go by a direct copy instead (see
//! `direct.rs`), each announced by a `want` or an `offer` before the frame that lists them in
//! its gaps, in order. The `nats` strategy sends a job body without its first byte, and never
//! gaps.

use serde::{Deserialize, Serialize};

use super::frame;
use super::shm::Region;
use crate::wire::write_job_head;

/// The version of the subprocess transport: the marker, the hello and the frames, and the
/// bodies they carry. Bumped whenever any of them changes shape (6: frames on the worker's own
/// socket, with sequence numbers).
pub(crate) const TRANSPORT_VERSION: u32 = 6;

/// The exit status of a worker that could not set its memory limit.
pub(crate) const EXIT_NO_LIMIT: i32 = 93;

pub(crate) const FROM_WORKER_ROOM: u8 = 0x40;
pub(crate) const FROM_WORKER_NO_ROOM: u8 = 0x41;
pub(crate) const FROM_WORKER_OFFER: u8 = 0x42;
pub(crate) const FROM_WORKER_DECLINED: u8 = 0x43;

pub(crate) const TO_WORKER_JOB: u8 = 0;
pub(crate) const TO_WORKER_WANT: u8 = 1;
pub(crate) const TO_WORKER_TAKEN: u8 = 2;

/// The worker's first and only message on the one-shot server.
#[derive(Serialize, Deserialize)]
pub(crate) struct Hello {
    /// First, so that a different build fails on the version rather than on garbage.
    pub(crate) protocol: u32,
    pub(crate) pid: u32,
    pub(crate) digest: u64,
    /// Where the worker's probe buffer is (`direct::probe_address`), for the parent to read
    /// and write back; 0 if the worker declines direct copies.
    pub(crate) probe: u64,
}

/// Starts a job frame in `out` (cleared first); the caller appends the encoded arguments,
/// [`place_args`](crate::wire::place_args) and seals the frame.
pub(crate) fn start_job(task: &str, out: &mut Vec<u8>) {
    frame::start(out);
    out.push(TO_WORKER_JOB);
    write_job_head(task, out);
}

/// A sealed frame of one of the small messages: `tag` then `fields`.
pub(crate) fn small_message(out: &mut Vec<u8>, tag: u8, fields: &[u64]) {
    frame::start(out);
    out.push(tag);
    for field in fields {
        out.extend_from_slice(&field.to_le_bytes());
    }
    frame::seal(out);
}

/// The `u64` fields of a small message's body, after its tag.
pub(crate) fn small_fields<const N: usize>(body: &[u8]) -> Option<[u64; N]> {
    if body.len() != N * 8 {
        return None;
    }
    let mut fields = [0; N];
    for (field, bytes) in fields.iter_mut().zip(body.chunks_exact(8)) {
        *field = u64::from_le_bytes(bytes.try_into().ok()?);
    }
    Some(fields)
}

/// A worker's two shared-memory regions (see `shm.rs`).
pub(crate) struct Regions {
    /// Written by the parent, read by the worker.
    pub(crate) args: Region,
    /// Written by the worker, read by the parent.
    pub(crate) results: Region,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::wire::{
        Args, Gap, Job, Placement, Reply, finish_reply, place_args, read_job, read_reply,
        split_job, start_reply,
    };

    /// The body of a sealed frame.
    fn body(frame: &[u8]) -> &[u8] {
        let mut joined = Vec::new();
        let len = frame::receive(frame, &mut joined, usize::MAX, |_| unreachable!())
            .unwrap()
            .1
            .len();
        &frame[frame.len() - len..]
    }

    #[test]
    fn job_bodies_carry_the_name_then_the_untouched_args() {
        for name in ["t", &"x".repeat(200), &"y".repeat(20_000)] {
            let mut job = Vec::new();
            start_job(name, &mut job);
            let tag = job.len() - 1;
            job.extend_from_slice(b"ARGS");
            place_args(&mut job, tag, Placement::Inline, &[], false);
            frame::seal(&mut job);
            let (&kind, rest) = body(&job).split_first().unwrap();
            assert_eq!(kind, TO_WORKER_JOB);
            let (task, args) = split_job(rest).unwrap();
            assert_eq!((task, args), (name, Args::Inline(&b"ARGS"[..])));
        }
    }

    #[test]
    fn gaps_and_flags_survive_the_frame() {
        let gaps = [
            Gap {
                at: 3,
                len: 1 << 20,
            },
            Gap { at: 9, len: 7 },
        ];
        for placement in [Placement::Inline, Placement::Shared { len: 12 }] {
            let mut job = Vec::new();
            start_job("t", &mut job);
            let tag = job.len() - 1;
            if placement == Placement::Inline {
                job.extend_from_slice(b"ARGS");
            }
            place_args(&mut job, tag, placement, &gaps, true);
            frame::seal(&mut job);
            let read = read_job(&body(&job)[1..]).unwrap();
            let args = match placement {
                Placement::Inline => Args::Inline(&b"ARGS"[..]),
                Placement::Shared { len } => Args::Shared(len),
            };
            let expected = Job {
                task: "t",
                args,
                gaps: gaps.to_vec(),
                offer_results: true,
            };
            assert_eq!(read, expected);
            assert!(
                split_job(&body(&job)[1..]).is_err(),
                "gaps are not for nats"
            );
        }

        let mut reply = Vec::new();
        frame::start(&mut reply);
        let tag = start_reply(&mut reply);
        reply.extend_from_slice(b"RESULT");
        let ran = Duration::from_micros(5);
        finish_reply(&mut reply, tag, ran, Placement::Inline, &gaps);
        frame::seal(&mut reply);
        let Ok(Reply::Done {
            result: Args::Inline(result),
            ran: read_ran,
            gaps: read_gaps,
        }) = read_reply(body(&reply))
        else {
            panic!("expected a result")
        };
        assert_eq!(
            (result, read_ran, &read_gaps[..]),
            (&b"RESULT"[..], ran, &gaps[..])
        );
    }
}
