//! The wire protocol between a pool and its workers.
//!
//! Start-up: the parent puts a [`Marker`] in the worker's environment (protocol version, parent
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
//!   job:    0x00 ++ postcard(task name: &str) ++ TAG ++ ARGS ++ [gaps]
//!   want:   0x01 ++ u64 LE length ++ u64 LE first    room for a byte string sent apart;
//!                                                    first = 1 for a job's first (older
//!                                                    room is stale: drop it)
//!   taken:  0x02                            the parent has read the offered result bytes
//! from the worker:
//!   reply:  0x00|0x10 ++ u64 LE ran nanos ++ postcard(result) ++ [gaps]    the task returned
//!           0x02|0x10 ++ u64 LE ran nanos ++ u64 LE length ++ [gaps]       ... result in the region
//!           0x01 ++ postcard(WireError)                                    the task failed
//!   room:   0x40 ++ u64 LE address          the room asked for by a `want`
//!   no room: 0x41 ++ UTF-8 reason
//!   declined: 0x43                          no direct copies (no longer dumpable)
//!   offer:  0x42 ++ u64 LE address ++ u64 LE length       result bytes to read, sent apart
//!
//! TAG  = 0x00 args in the frame (ARGS = postcard(args)), 0x01 in the args region (ARGS = u64
//!        LE length); | 0x10 with gaps; | 0x20 the worker may offer result bytes apart
//! gaps = (u64 LE offset ++ u64 LE length) per byte string sent apart ++ u32 LE count
//! ```
//!
//! Arguments and results above `payload::SHM_THRESHOLD` travel through the worker's
//! shared-memory regions (see `shm.rs`), written there directly by the encoder. Byte strings
//! of at least `direct::DIRECT_THRESHOLD` within them go by a direct copy instead (see
//! `direct.rs`), each announced by a `want` or an `offer` before the frame that lists them in
//! its gaps, in order. The `nats` strategy sends a job body without its first byte, and never
//! gaps.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
#[cfg(feature = "nats")]
use ythread::Error as WorkError;

use super::frame;
pub(super) use super::marker::{MARKER_ENV, Marker};
use super::payload::{Gap, Placement};
use super::shm::Region;
pub(crate) use super::wire_error::WireError;

/// The version of the job and reply bodies, which the `nats` strategy shares (its subjects
/// carry it). Bumped whenever a body changes shape.
#[cfg(feature = "nats")]
pub(crate) const PROTOCOL_VERSION: u32 = 5;

/// The version of the subprocess transport: the marker, the hello and the frames, and the
/// bodies they carry. Bumped whenever any of them changes shape (6: frames on the worker's own
/// socket, with sequence numbers).
pub(super) const TRANSPORT_VERSION: u32 = 6;

/// The exit status of a worker that could not set its memory limit.
pub(super) const EXIT_NO_LIMIT: i32 = 93;

const REPLY_OK: u8 = 0;
const REPLY_ERR: u8 = 1;
const REPLY_OK_SHARED: u8 = 2;
pub(super) const FROM_WORKER_ROOM: u8 = 0x40;
pub(super) const FROM_WORKER_NO_ROOM: u8 = 0x41;
pub(super) const FROM_WORKER_OFFER: u8 = 0x42;
pub(super) const FROM_WORKER_DECLINED: u8 = 0x43;

pub(super) const TO_WORKER_JOB: u8 = 0;
pub(super) const TO_WORKER_WANT: u8 = 1;
pub(super) const TO_WORKER_TAKEN: u8 = 2;

const ARGS_INLINE: u8 = 0;
const ARGS_SHARED: u8 = 1;
/// A job's or a reply's tag has this bit when gaps follow the payload.
const WITH_GAPS: u8 = 0x10;
/// A job's tag has this bit when the worker may offer result bytes apart.
const OFFER_RESULTS: u8 = 0x20;

const GAP_BYTES: usize = 16;
const COUNT_BYTES: usize = 4;

/// The worker's first and only message on the one-shot server.
#[derive(Serialize, Deserialize)]
pub(super) struct Hello {
    /// First, so that a different build fails on the version rather than on garbage.
    pub(super) protocol: u32,
    pub(super) pid: u32,
    pub(super) digest: u64,
    /// Where the worker's probe buffer is (`direct::probe_address`), for the parent to read
    /// and write back; 0 if the worker declines direct copies.
    pub(super) probe: u64,
}

/// Starts a job frame in `out` (cleared first); the caller appends the encoded arguments,
/// [`place_args`] and seals the frame.
pub(super) fn start_job(task: &str, out: &mut Vec<u8>) {
    frame::start(out);
    out.push(TO_WORKER_JOB);
    write_job_head(task, out);
}

/// A sealed frame of one of the small messages: `tag` then `fields`.
pub(super) fn small_message(out: &mut Vec<u8>, tag: u8, fields: &[u64]) {
    frame::start(out);
    out.push(tag);
    for field in fields {
        out.extend_from_slice(&field.to_le_bytes());
    }
    frame::seal(out);
}

/// The `u64` fields of a small message's body, after its tag.
pub(super) fn small_fields<const N: usize>(body: &[u8]) -> Option<[u64; N]> {
    if body.len() != N * 8 {
        return None;
    }
    let mut fields = [0; N];
    for (field, bytes) in fields.iter_mut().zip(body.chunks_exact(8)) {
        *field = u64::from_le_bytes(bytes.try_into().ok()?);
    }
    Some(fields)
}

/// Appends the head of a job body to `out`: the task name, then the tag of arguments that
/// follow in the body. The `nats` strategy sends exactly such a body as a message.
pub(crate) fn write_job_head(task: &str, out: &mut Vec<u8>) {
    // A `&str` is a varint length and the bytes; writing it by hand cannot fail.
    let mut len = task.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(task.as_bytes());
    out.push(ARGS_INLINE);
}

/// Finishes a job frame's arguments, whose tag is at `tag`: in place if inline, or the
/// region's length if shared, then the gaps; and whether the worker may offer its result
/// bytes apart.
pub(super) fn place_args(
    out: &mut Vec<u8>,
    tag: usize,
    placement: Placement,
    gaps: &[Gap],
    offer_results: bool,
) {
    if let Placement::Shared { len } = placement {
        out[tag] = ARGS_SHARED;
        out.extend_from_slice(&(len as u64).to_le_bytes());
    }
    if offer_results {
        out[tag] |= OFFER_RESULTS;
    }
    write_gaps(out, tag, gaps);
}

/// Appends `gaps` (if any) to `out` and marks the tag at `tag`.
fn write_gaps(out: &mut Vec<u8>, tag: usize, gaps: &[Gap]) {
    if gaps.is_empty() {
        return;
    }
    out[tag] |= WITH_GAPS;
    for gap in gaps {
        out.extend_from_slice(&gap.at.to_le_bytes());
        out.extend_from_slice(&gap.len.to_le_bytes());
    }
    out.extend_from_slice(&(gaps.len() as u32).to_le_bytes());
}

/// Splits the gaps off the end of `body`, if `tag` says it has them.
fn read_gaps(body: &[u8], tag: u8) -> Result<(&[u8], Vec<Gap>), &'static str> {
    if tag & WITH_GAPS == 0 {
        return Ok((body, Vec::new()));
    }
    let bad = "gaps that do not fit the frame";
    let (rest, count) = body.split_last_chunk::<COUNT_BYTES>().ok_or(bad)?;
    let count = u32::from_le_bytes(*count) as usize;
    let table = count.checked_mul(GAP_BYTES).ok_or(bad)?;
    let split = rest.len().checked_sub(table).ok_or(bad)?;
    let (payload, table) = rest.split_at(split);
    let gaps = table
        .chunks_exact(GAP_BYTES)
        .map(|gap| {
            let (at, len) = gap.split_at(8);
            Gap {
                at: u64::from_le_bytes(at.try_into().expect("8 bytes")),
                len: u64::from_le_bytes(len.try_into().expect("8 bytes")),
            }
        })
        .collect();
    Ok((payload, gaps))
}

/// Where a job's encoded arguments (or a reply's encoded result) are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Args<'a> {
    /// In the frame.
    Inline(&'a [u8]),
    /// The first `len` bytes of the args region.
    Shared(usize),
}

/// A job, as the worker reads it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Job<'a> {
    pub(crate) task: &'a str,
    pub(crate) args: Args<'a>,
    /// The byte strings of the arguments sent apart, in order.
    pub(crate) gaps: Vec<Gap>,
    /// Whether the worker may offer its result's byte strings apart.
    pub(crate) offer_results: bool,
}

/// Splits a job body (without the subprocess message tag) into its parts.
pub(crate) fn read_job(body: &[u8]) -> Result<Job<'_>, postcard::Error> {
    let bad = postcard::Error::DeserializeBadEncoding;
    let (task, rest) = postcard::take_from_bytes::<&str>(body)?;
    let (&tag, rest) = rest.split_first().ok_or(bad.clone())?;
    let (rest, gaps) = read_gaps(rest, tag).map_err(|_| bad.clone())?;
    let args = match tag & !(WITH_GAPS | OFFER_RESULTS) {
        ARGS_INLINE => Args::Inline(rest),
        ARGS_SHARED => {
            let len = <[u8; 8]>::try_from(rest).map_err(|_| bad.clone())?;
            Args::Shared(usize::try_from(u64::from_le_bytes(len)).map_err(|_| bad.clone())?)
        }
        _ => return Err(bad),
    };
    Ok(Job {
        task,
        args,
        gaps,
        offer_results: tag & OFFER_RESULTS != 0,
    })
}

/// Splits a job body into the task name and where its encoded arguments are; gaps are not
/// for this (the `nats` strategy's) use.
#[cfg(any(feature = "nats", test))]
pub(crate) fn split_job(body: &[u8]) -> Result<(&str, Args<'_>), postcard::Error> {
    let job = read_job(body)?;
    if !job.gaps.is_empty() {
        return Err(postcard::Error::DeserializeBadEncoding);
    }
    Ok((job.task, job.args))
}

/// Runs the job `body` with `run` and appends the reply body to `out`, arguments and result
/// inline: the task's result with its run time, or its error. A `nats` worker node runs the
/// task this way, through its own local strategy; the subprocess worker uses [`answer`],
/// which also reads and writes shared memory.
#[cfg(feature = "nats")]
pub(crate) fn write_reply(
    body: &[u8],
    out: &mut Vec<u8>,
    run: impl FnOnce(&str, &[u8], &mut Vec<u8>) -> Result<(), WorkError>,
) {
    let start = start_reply(out);
    let began = std::time::Instant::now();
    let outcome = match split_job(body) {
        Ok((task, Args::Inline(args))) => run(task, args, out),
        Ok((task, Args::Shared(_))) => Err(WorkError::codec(
            format!("take the arguments of task `{task}`"),
            "they point at shared memory, which only a local worker process has",
        )),
        Err(e) => Err(WorkError::codec("decode a job body", e)),
    };
    finish_reply(out, start, began.elapsed(), Placement::Inline, &[]);
    if let Err(error) = outcome {
        out.truncate(start);
        write_error(&WireError::from_error(&error), out);
    }
}

/// Appends the reply body of a failure to `out`.
pub(crate) fn write_error(wire: &WireError, out: &mut Vec<u8>) {
    let start = out.len();
    out.push(REPLY_ERR);
    // Encoding a tree of strings into a Vec cannot fail; if it ever did, an empty error
    // body still reads on the other side as a reply that does not decode.
    if let Ok(encoded) = postcard::to_extend(wire, std::mem::take(out)) {
        *out = encoded;
    } else {
        out.truncate(start + 1);
    }
}

/// The bytes of a successful reply that say how long the task ran in the worker.
const RAN_BYTES: usize = 8;

/// A worker's two shared-memory regions (see `shm.rs`).
pub(super) struct Regions {
    /// Written by the parent, read by the worker.
    pub(super) args: Region,
    /// Written by the worker, read by the parent.
    pub(super) results: Region,
}

/// A decoded reply frame.
pub(crate) enum Reply<'a> {
    /// Where the task's encoded result is, and how long the task ran (decoding and encoding
    /// included), which the pool's cost model learns from.
    Done {
        result: Args<'a>,
        ran: Duration,
        /// The result's byte strings sent apart (offered before the reply), in order.
        gaps: Vec<Gap>,
    },
    /// The task failed in the worker.
    Failed(WireError),
}

/// Parent side: decodes a reply frame.
pub(crate) fn read_reply(frame: &[u8]) -> Result<Reply<'_>, BadReply> {
    let bad = |what: &str| BadReply(what.to_owned());
    match frame.split_first() {
        Some((&tag, rest)) if matches!(tag & !WITH_GAPS, REPLY_OK | REPLY_OK_SHARED) => {
            let (ran, result) = rest
                .split_first_chunk::<RAN_BYTES>()
                .ok_or_else(|| bad("a result reply without its run time"))?;
            let ran = Duration::from_nanos(u64::from_le_bytes(*ran));
            let (result, gaps) = read_gaps(result, tag).map_err(bad)?;
            let result = if tag & !WITH_GAPS == REPLY_OK {
                Args::Inline(result)
            } else {
                let len = <[u8; 8]>::try_from(result)
                    .ok()
                    .and_then(|len| usize::try_from(u64::from_le_bytes(len)).ok())
                    .ok_or_else(|| bad("a shared result without its length"))?;
                Args::Shared(len)
            };
            Ok(Reply::Done { result, ran, gaps })
        }
        Some((&REPLY_ERR, body)) => postcard::from_bytes(body)
            .map(Reply::Failed)
            .map_err(|e| BadReply(e.to_string())),
        Some((tag, _)) => Err(BadReply(format!("unknown reply tag {tag}"))),
        None => Err(bad("empty reply frame")),
    }
}

/// Starts a successful reply in `out`, a frame started with [`frame::start`]: returns where
/// its tag is, for [`finish_reply`].
pub(super) fn start_reply(out: &mut Vec<u8>) -> usize {
    let tag = out.len();
    out.push(REPLY_OK);
    out.extend_from_slice(&[0; RAN_BYTES]);
    tag
}

/// Finishes a successful reply started at `tag`: how long the task ran, where its result is,
/// and its gaps.
pub(super) fn finish_reply(
    out: &mut Vec<u8>,
    tag: usize,
    ran: Duration,
    placement: Placement,
    gaps: &[Gap],
) {
    let ran = u64::try_from(ran.as_nanos()).unwrap_or(u64::MAX);
    out[tag + 1..tag + 1 + RAN_BYTES].copy_from_slice(&ran.to_le_bytes());
    if let Placement::Shared { len } = placement {
        out[tag] = REPLY_OK_SHARED;
        out.extend_from_slice(&(len as u64).to_le_bytes());
    }
    write_gaps(out, tag, gaps);
}

/// A reply frame that does not follow the protocol.
#[derive(Debug)]
pub(crate) struct BadReply(String);

impl fmt::Display for BadReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn malformed_replies_are_errors() {
        assert!(read_reply(&[]).is_err());
        assert!(read_reply(&[7]).is_err());
        assert!(read_reply(&[REPLY_OK, 1, 2]).is_err(), "no run time");
        let mut lying = vec![REPLY_OK | WITH_GAPS];
        lying.extend_from_slice(&[0; RAN_BYTES]);
        lying.extend_from_slice(&1000u32.to_le_bytes());
        assert!(read_reply(&lying).is_err(), "more gaps than bytes");
    }
}
