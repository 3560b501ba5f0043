//! The wire protocol between a pool and its workers.
//!
//! Start-up: the parent puts a [`Marker`] in the worker's environment (protocol version, parent
//! pid, spin budget, memory and payload limits, the descriptors of its shared-memory regions
//! and the name of a one-shot ipc-channel server; see `marker.rs`). The worker creates its two
//! byte channels and sends the parent their far ends in a [`Hello`], with its pid, protocol
//! version and registry digest. From then on the parent owns the only job sender and the worker
//! the only reply sender, so each side sees end-of-file when the other dies.
//!
//! Jobs and replies are frames (see `frame.rs`) over ipc-channel's *bytes* channels, never
//! element by element through serde. Their bodies:
//!
//! ```text
//! job:    postcard(task name: &str) ++ 0x00 ++ postcard(args)     args in the frame
//!         postcard(task name: &str) ++ 0x01 ++ u64 LE length      args in the args region
//! reply:  0x00 ++ u64 LE ran nanos ++ postcard(result)            the task returned
//!         0x02 ++ u64 LE ran nanos ++ u64 LE length               ... result in the results region
//!         0x01 ++ postcard(WireError)                             the task failed in the worker
//! ```
//!
//! Arguments and results above `payload::SHM_THRESHOLD` travel through the worker's
//! shared-memory regions (see `shm.rs`), written there directly by the encoder.

use std::fmt;
use std::time::{Duration, Instant};

use ipc_channel::ipc::{IpcBytesReceiver, IpcBytesSender};
use serde::{Deserialize, Serialize};
use ythread::{Error as WorkError, ErrorKind, TaskRegistry};

use super::frame;
pub(super) use super::marker::{MARKER_ENV, Marker};
use super::payload::{PayloadWriter, Placement};
use super::shm::Region;

/// Bumped whenever a frame, the marker or the hello changes shape.
pub(crate) const PROTOCOL_VERSION: u32 = 4;

/// The exit status of a worker that could not set its memory limit.
pub(super) const EXIT_NO_LIMIT: i32 = 93;

const REPLY_OK: u8 = 0;
const REPLY_ERR: u8 = 1;
const REPLY_OK_SHARED: u8 = 2;

const ARGS_INLINE: u8 = 0;
const ARGS_SHARED: u8 = 1;

/// The worker's first and only message on the one-shot server.
#[derive(Serialize, Deserialize)]
pub(super) struct Hello {
    /// First, so that a different build fails on the version rather than on garbage.
    pub(super) protocol: u32,
    pub(super) pid: u32,
    pub(super) digest: u64,
    /// The parent's end of the job channel.
    pub(super) jobs: IpcBytesSender,
    /// The parent's end of the reply channel.
    pub(super) replies: IpcBytesReceiver,
}

/// Starts a job frame in `out` (cleared first); the caller appends the encoded arguments and
/// seals the frame.
pub(super) fn start_job(task: &str, out: &mut Vec<u8>) {
    frame::start(out);
    write_job_head(task, out);
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

/// Finishes a job frame's arguments: in place if inline, or the region's length if shared.
pub(super) fn place_args(out: &mut Vec<u8>, placement: Placement) {
    if let Placement::Shared { len } = placement {
        let tag = out.len() - 1;
        out[tag] = ARGS_SHARED;
        out.extend_from_slice(&(len as u64).to_le_bytes());
    }
}

/// Where a job's encoded arguments (or a reply's encoded result) are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Args<'a> {
    /// In the frame.
    Inline(&'a [u8]),
    /// The first `len` bytes of the args region.
    Shared(usize),
}

/// Splits a job body into the task name and where its encoded arguments are.
pub(crate) fn split_job(body: &[u8]) -> Result<(&str, Args<'_>), postcard::Error> {
    let (task, rest) = postcard::take_from_bytes::<&str>(body)?;
    match rest.split_first() {
        Some((&ARGS_INLINE, args)) => Ok((task, Args::Inline(args))),
        Some((&ARGS_SHARED, len)) => {
            let len =
                <[u8; 8]>::try_from(len).map_err(|_| postcard::Error::DeserializeBadEncoding)?;
            let len = usize::try_from(u64::from_le_bytes(len))
                .map_err(|_| postcard::Error::DeserializeBadEncoding)?;
            Ok((task, Args::Shared(len)))
        }
        _ => Err(postcard::Error::DeserializeBadEncoding),
    }
}

/// A failure inside the worker, in a form that crosses the process boundary.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    /// The task panicked; the worker caught it.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The worker does not know the task.
    UnknownTask,
    /// Arguments or result did not decode or encode; the text says which.
    Codec(String),
    /// Anything else, as its message.
    Other(String),
}

impl WireError {
    pub(crate) fn from_error(error: &WorkError) -> Self {
        match error.kind() {
            ErrorKind::Panicked => WireError::Panicked {
                message: error.message().unwrap_or_default().to_owned(),
                location: error.location().map(str::to_owned),
            },
            ErrorKind::UnknownTask => WireError::UnknownTask,
            ErrorKind::Codec => WireError::Codec(error.to_string()),
            _ => WireError::Other(error.to_string()),
        }
    }

    /// The error the caller sees for `task`, run by worker `pid`.
    pub(super) fn into_error(self, task: &str, pid: u32) -> WorkError {
        self.into_error_at(task, &format!("worker process {pid}"))
    }

    /// The error the caller sees for `task`, run at `place` (`worker process 42`, `node
    /// host:42`).
    pub(crate) fn into_error_at(self, task: &str, place: &str) -> WorkError {
        match self {
            WireError::Panicked { message, location } => {
                WorkError::panicked(format!("task `{task}` in {place}"), message, location)
            }
            WireError::UnknownTask => WorkError::unknown_task(
                task,
                format!("in {place}, which runs a different build of the program"),
            ),
            WireError::Codec(text) => WorkError::codec(format!("run task `{task}`"), text),
            WireError::Other(text) => {
                WorkError::unavailable(format!("{place} could not run task `{task}`: {text}"))
            }
        }
    }
}

/// Worker side: runs the job `body` and writes the sealed reply frame into `out`.
pub(super) fn answer(
    registry: &TaskRegistry,
    body: &[u8],
    out: &mut Vec<u8>,
    regions: &mut Regions,
    max_payload: usize,
) {
    frame::start(out);
    let start = out.len();
    out.push(REPLY_OK);
    out.extend_from_slice(&[0; RAN_BYTES]);
    let began = Instant::now();
    let mut result = PayloadWriter::new(out, &mut regions.results, max_payload);
    let (task, outcome) = match split_job(body) {
        Ok((task, Args::Inline(args))) => (task, registry.run_encoded_to(task, args, &mut result)),
        Ok((task, Args::Shared(len))) if len > max_payload => (
            task,
            Err(WorkError::codec(
                format!("take the arguments of task `{task}`"),
                format!("{len} bytes are more than the pool's max_payload"),
            )),
        ),
        Ok((task, Args::Shared(len))) => match regions.args.read(len) {
            Ok(args) => (task, registry.run_encoded_to(task, args, &mut result)),
            Err(e) => (
                task,
                Err(WorkError::codec(
                    format!("take the arguments of task `{task}`"),
                    e,
                )),
            ),
        },
        Err(e) => (
            "",
            Err(WorkError::codec("decode a job frame from the pool", e)),
        ),
    };
    let outcome = match (outcome, result.finish()) {
        (_, Err(refusal)) => Err(WorkError::codec(
            format!("send the result of task `{task}` to the pool"),
            refusal,
        )),
        (Ok(()), Ok(Placement::Shared { len })) => {
            out[start] = REPLY_OK_SHARED;
            out.extend_from_slice(&(len as u64).to_le_bytes());
            Ok(())
        }
        (outcome, Ok(_)) => outcome,
    };
    let ran = u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX);
    out[start + 1..start + 1 + RAN_BYTES].copy_from_slice(&ran.to_le_bytes());
    if let Err(error) = outcome {
        out.truncate(start);
        write_error(&WireError::from_error(&error), out);
    }
    frame::seal(out);
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
    let start = out.len();
    out.push(REPLY_OK);
    out.extend_from_slice(&[0; RAN_BYTES]);
    let began = Instant::now();
    let outcome = match split_job(body) {
        Ok((task, Args::Inline(args))) => run(task, args, out),
        Ok((task, Args::Shared(_))) => Err(WorkError::codec(
            format!("take the arguments of task `{task}`"),
            "they point at shared memory, which only a local worker process has",
        )),
        Err(e) => Err(WorkError::codec("decode a job body", e)),
    };
    let ran = u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX);
    out[start + 1..start + 1 + RAN_BYTES].copy_from_slice(&ran.to_le_bytes());
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
    Done { result: Args<'a>, ran: Duration },
    /// The task failed in the worker.
    Failed(WireError),
}

/// Parent side: decodes a reply frame.
pub(crate) fn read_reply(frame: &[u8]) -> Result<Reply<'_>, BadReply> {
    match frame.split_first() {
        Some((&tag @ (REPLY_OK | REPLY_OK_SHARED), rest)) if rest.len() >= RAN_BYTES => {
            let (ran, result) = rest.split_at(RAN_BYTES);
            let ran = Duration::from_nanos(u64::from_le_bytes(
                ran.try_into().expect("split at RAN_BYTES"),
            ));
            if tag == REPLY_OK {
                return Ok(Reply::Done {
                    result: Args::Inline(result),
                    ran,
                });
            }
            let len = <[u8; 8]>::try_from(result)
                .ok()
                .and_then(|len| usize::try_from(u64::from_le_bytes(len)).ok())
                .ok_or_else(|| BadReply("a shared result without its length".to_owned()))?;
            Ok(Reply::Done {
                result: Args::Shared(len),
                ran,
            })
        }
        Some((&(REPLY_OK | REPLY_OK_SHARED), _)) => {
            Err(BadReply("a result reply without its run time".to_owned()))
        }
        Some((&REPLY_ERR, body)) => postcard::from_bytes(body)
            .map(Reply::Failed)
            .map_err(|e| BadReply(e.to_string())),
        Some((tag, _)) => Err(BadReply(format!("unknown reply tag {tag}"))),
        None => Err(BadReply("empty reply frame".to_owned())),
    }
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

    ythread::task!(
        fn add(a: u32, b: u32) -> u32 {
            a + b
        }
    );
    ythread::task!(
        fn boom(x: u8) -> u8 {
            panic!("boom {x}")
        }
    );

    /// The body of a sealed frame.
    fn body(frame: &[u8]) -> &[u8] {
        let mut joined = Vec::new();
        let len = frame::receive(frame, &mut joined, || unreachable!())
            .unwrap()
            .len();
        &frame[frame.len() - len..]
    }

    #[test]
    fn job_bodies_carry_the_name_then_the_untouched_args() {
        for name in ["t", &"x".repeat(200), &"y".repeat(20_000)] {
            let mut job = Vec::new();
            start_job(name, &mut job);
            job.extend_from_slice(b"ARGS");
            frame::seal(&mut job);
            let (task, args) = split_job(body(&job)).unwrap();
            assert_eq!((task, args), (name, Args::Inline(&b"ARGS"[..])));
        }
    }

    fn regions() -> Regions {
        Regions {
            args: Region::create("test").unwrap(),
            results: Region::create("test").unwrap(),
        }
    }

    #[test]
    fn answers_round_trip_results_and_panics() {
        let regions = &mut regions();
        let registry = TaskRegistry::new().with(add).with(boom);
        let mut job = Vec::new();
        start_job(<add as ythread::Task>::NAME, &mut job);
        job.extend(postcard::to_stdvec(&(2u32, 3u32)).unwrap());
        frame::seal(&mut job);
        let mut out = Vec::new();
        answer(&registry, body(&job), &mut out, regions, usize::MAX);
        let Ok(Reply::Done {
            result: Args::Inline(result),
            ran,
        }) = read_reply(body(&out))
        else {
            panic!("expected a result")
        };
        assert_eq!(postcard::from_bytes::<u32>(result).unwrap(), 5);
        assert!(ran > Duration::ZERO, "the worker timed the run");

        start_job(<boom as ythread::Task>::NAME, &mut job);
        job.extend(postcard::to_stdvec(&7u8).unwrap());
        frame::seal(&mut job);
        answer(&registry, body(&job), &mut out, regions, usize::MAX);
        let Ok(Reply::Failed(wire)) = read_reply(body(&out)) else {
            panic!("expected a failure")
        };
        let error = wire.into_error("boom", 9);
        assert_eq!(error.message(), Some("boom 7"));
        assert!(error.location().unwrap().contains("protocol.rs"), "{error}");
        assert!(error.to_string().contains("worker process 9"), "{error}");
    }

    ythread::task!(
        fn zeros(len: u64) -> serde_bytes::ByteBuf {
            serde_bytes::ByteBuf::from(vec![0; len as usize])
        }
    );

    #[test]
    fn a_large_result_goes_through_the_results_region() {
        let registry = TaskRegistry::new().with(zeros);
        let regions = &mut regions();
        let mut job = Vec::new();
        start_job(<zeros as ythread::Task>::NAME, &mut job);
        job.extend(postcard::to_stdvec(&(1u64 << 20)).unwrap());
        frame::seal(&mut job);
        let mut out = Vec::new();
        answer(&registry, body(&job), &mut out, regions, usize::MAX);
        assert!(out.len() < 64, "the reply frame only names the region");
        let Ok(Reply::Done {
            result: Args::Shared(len),
            ..
        }) = read_reply(body(&out))
        else {
            panic!("expected a shared result")
        };
        let encoded = regions.results.read(len).unwrap();
        let back: serde_bytes::ByteBuf = postcard::from_bytes(encoded).unwrap();
        assert_eq!(back.len(), 1 << 20);

        // Over the payload limit: a codec error naming it, from the worker.
        answer(&registry, body(&job), &mut out, regions, 1000);
        let Ok(Reply::Failed(wire)) = read_reply(body(&out)) else {
            panic!("expected a failure")
        };
        let error = wire.into_error("zeros", 3);
        assert!(error.to_string().contains("max_payload"), "{error}");
    }

    #[test]
    fn unknown_tasks_and_garbage_are_errors_not_panics() {
        let regions = &mut regions();
        let registry = TaskRegistry::new();
        let mut job = Vec::new();
        start_job("nope", &mut job);
        frame::seal(&mut job);
        let mut out = Vec::new();
        answer(&registry, body(&job), &mut out, regions, usize::MAX);
        let Ok(Reply::Failed(wire)) = read_reply(body(&out)) else {
            panic!("expected a failure")
        };
        let error = wire.into_error("nope", 1);
        assert_eq!(error.kind(), ErrorKind::UnknownTask);
        assert!(error.to_string().contains("`nope`"), "{error}");

        answer(&registry, &[0xff], &mut out, regions, usize::MAX);
        assert!(matches!(
            read_reply(body(&out)),
            Ok(Reply::Failed(WireError::Codec(_)))
        ));
        assert!(read_reply(&[]).is_err());
        assert!(read_reply(&[7]).is_err());
        assert!(read_reply(&[REPLY_OK, 1, 2]).is_err(), "no run time");
    }
}
