//! The wire protocol between a pool and its workers.
//!
//! Start-up: the parent puts a [`Marker`] in the worker's environment (protocol version, parent
//! pid, spin budget and the name of a one-shot ipc-channel server). The worker creates its two
//! byte channels and sends the parent their far ends in a [`Hello`], with its pid, protocol
//! version and registry digest. From then on the parent owns the only job sender and the worker
//! the only reply sender, so each side sees end-of-file when the other dies.
//!
//! Jobs and replies are frames (see `frame.rs`) over ipc-channel's *bytes* channels, never
//! element by element through serde. Their bodies:
//!
//! ```text
//! job:    postcard(task name: &str) ++ postcard(args)   (args appended, not re-encoded)
//! reply:  0x00 ++ postcard(result)                      the task returned
//!         0x01 ++ postcard(WireError)                   the task failed in the worker
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use ipc_channel::ipc::{IpcBytesReceiver, IpcBytesSender};
use serde::{Deserialize, Serialize};
use ythread::{Error as WorkError, ErrorKind, TaskRegistry};

use super::frame;

/// Bumped whenever a frame, the marker or the hello changes shape.
pub(super) const PROTOCOL_VERSION: u32 = 2;

/// The environment variable that makes a process a worker.
pub(super) const MARKER_ENV: &str = "YTHREAD_SUBPROCESS_WORKER";

const REPLY_OK: u8 = 0;
const REPLY_ERR: u8 = 1;

/// What a worker learns from its environment: `VERSION;PARENT_PID;SPIN_NANOS;SERVER_NAME`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Marker {
    pub(super) parent: u32,
    pub(super) spin: Duration,
    pub(super) server: String,
}

impl Marker {
    /// The marker's value in the environment.
    pub(super) fn encode(&self) -> String {
        format!(
            "{PROTOCOL_VERSION};{};{};{}",
            self.parent,
            self.spin.as_nanos(),
            self.server
        )
    }

    /// Parses the environment value; the error says what is wrong with it.
    pub(super) fn decode(value: &str) -> Result<Self, String> {
        let mut fields = value.splitn(4, ';');
        let mut next = |what: &str| {
            fields
                .next()
                .filter(|f| !f.is_empty())
                .ok_or_else(|| format!("{MARKER_ENV} has no {what}"))
        };
        let version = next("protocol version")?;
        if version != PROTOCOL_VERSION.to_string() {
            return Err(format!(
                "the pool speaks subprocess protocol {version} and this worker speaks \
                 {PROTOCOL_VERSION}; build the parent and the worker program from the same \
                 version of ythread-executors"
            ));
        }
        let parent = next("parent pid")?;
        let spin = next("spin budget")?;
        let server = next("server name")?;
        Ok(Marker {
            parent: parent
                .parse()
                .map_err(|_| format!("{MARKER_ENV} has a bad parent pid `{parent}`"))?,
            spin: Duration::from_nanos(
                spin.parse()
                    .map_err(|_| format!("{MARKER_ENV} has a bad spin budget `{spin}`"))?,
            ),
            server: server.to_owned(),
        })
    }
}

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

/// Appends the head of a job body, the task name, to `out`; the encoded arguments follow it.
/// The `nats` strategy sends exactly this body as a message.
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
}

/// Splits a job body into the task name and its encoded arguments.
pub(crate) fn split_job(body: &[u8]) -> Result<(&str, &[u8]), postcard::Error> {
    postcard::take_from_bytes::<&str>(body)
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
pub(super) fn answer(registry: &TaskRegistry, body: &[u8], out: &mut Vec<u8>) {
    frame::start(out);
    write_reply(body, out, |task, args, out| {
        registry.run_encoded(task, args, out)
    });
    frame::seal(out);
}

/// Runs the job `body` with `run` and appends the reply body to `out`: the task's result with
/// its run time, or its error. The subprocess worker runs the task itself; a `nats` worker
/// node runs it through its own local strategy.
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
        Ok((task, args)) => run(task, args, out),
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

/// A decoded reply frame.
pub(crate) enum Reply<'a> {
    /// The task's encoded result, and how long the task ran (decoding and encoding included),
    /// which the pool's cost model learns from.
    Done { result: &'a [u8], ran: Duration },
    /// The task failed in the worker.
    Failed(WireError),
}

/// Parent side: decodes a reply frame.
pub(crate) fn read_reply(frame: &[u8]) -> Result<Reply<'_>, BadReply> {
    match frame.split_first() {
        Some((&REPLY_OK, rest)) if rest.len() >= RAN_BYTES => {
            let (ran, result) = rest.split_at(RAN_BYTES);
            let ran = u64::from_le_bytes(ran.try_into().expect("split at RAN_BYTES"));
            Ok(Reply::Done {
                result,
                ran: Duration::from_nanos(ran),
            })
        }
        Some((&REPLY_OK, _)) => Err(BadReply("a result reply without its run time".to_owned())),
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

    #[test]
    fn marker_round_trips_and_rejects_other_versions() {
        let marker = Marker {
            parent: 42,
            spin: Duration::from_micros(20),
            server: "/tmp/x;y/socket".to_owned(),
        };
        assert_eq!(Marker::decode(&marker.encode()).unwrap(), marker);
        let err = Marker::decode("999;1;0;/tmp/s").unwrap_err();
        assert!(err.contains("protocol 999"), "{err}");
        let truncated = format!("{PROTOCOL_VERSION};1");
        assert!(
            Marker::decode(&truncated)
                .unwrap_err()
                .contains("spin budget")
        );
    }

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
            assert_eq!((task, args), (name, &b"ARGS"[..]));
        }
    }

    #[test]
    fn answers_round_trip_results_and_panics() {
        let registry = TaskRegistry::new().with(add).with(boom);
        let mut job = Vec::new();
        start_job(<add as ythread::Task>::NAME, &mut job);
        job.extend(postcard::to_stdvec(&(2u32, 3u32)).unwrap());
        frame::seal(&mut job);
        let mut out = Vec::new();
        answer(&registry, body(&job), &mut out);
        let Ok(Reply::Done { result, ran }) = read_reply(body(&out)) else {
            panic!("expected a result")
        };
        assert_eq!(postcard::from_bytes::<u32>(result).unwrap(), 5);
        assert!(ran > Duration::ZERO, "the worker timed the run");

        start_job(<boom as ythread::Task>::NAME, &mut job);
        job.extend(postcard::to_stdvec(&7u8).unwrap());
        frame::seal(&mut job);
        answer(&registry, body(&job), &mut out);
        let Ok(Reply::Failed(wire)) = read_reply(body(&out)) else {
            panic!("expected a failure")
        };
        let error = wire.into_error("boom", 9);
        assert_eq!(error.message(), Some("boom 7"));
        assert!(error.location().unwrap().contains("protocol.rs"), "{error}");
        assert!(error.to_string().contains("worker process 9"), "{error}");
    }

    #[test]
    fn unknown_tasks_and_garbage_are_errors_not_panics() {
        let registry = TaskRegistry::new();
        let mut job = Vec::new();
        start_job("nope", &mut job);
        frame::seal(&mut job);
        let mut out = Vec::new();
        answer(&registry, body(&job), &mut out);
        let Ok(Reply::Failed(wire)) = read_reply(body(&out)) else {
            panic!("expected a failure")
        };
        let error = wire.into_error("nope", 1);
        assert_eq!(error.kind(), ErrorKind::UnknownTask);
        assert!(error.to_string().contains("`nope`"), "{error}");

        answer(&registry, &[0xff], &mut out);
        assert!(matches!(
            read_reply(body(&out)),
            Ok(Reply::Failed(WireError::Codec(_)))
        ));
        assert!(read_reply(&[]).is_err());
        assert!(read_reply(&[7]).is_err());
        assert!(read_reply(&[REPLY_OK, 1, 2]).is_err(), "no run time");
    }
}
