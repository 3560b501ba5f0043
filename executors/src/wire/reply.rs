//! The reply body: the task's result and how long it ran, or its error.

use std::fmt;
use std::time::Duration;

#[cfg(feature = "nats")]
use ythread::Error as WorkError;

use super::gaps::{Gap, Placement, WITH_GAPS, read_gaps, write_gaps};
use super::job::Args;
#[cfg(feature = "nats")]
use super::job::split_job;
use super::wire_error::WireError;

const REPLY_OK: u8 = 0;
const REPLY_ERR: u8 = 1;
const REPLY_OK_SHARED: u8 = 2;

/// The bytes of a successful reply that say how long the task ran in the worker.
const RAN_BYTES: usize = 8;

/// Runs the job `body` with `run` and appends the reply body to `out`, arguments and result
/// inline: the task's result with its run time, or its error. A `nats` worker node runs the
/// task this way, through its own local strategy; the subprocess worker uses its own answering code,
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

/// Starts a successful reply in `out`, a frame the subprocess transport started: returns where
/// its tag is, for [`finish_reply`].
pub(crate) fn start_reply(out: &mut Vec<u8>) -> usize {
    let tag = out.len();
    out.push(REPLY_OK);
    out.extend_from_slice(&[0; RAN_BYTES]);
    tag
}

/// Finishes a successful reply started at `tag`: how long the task ran, where its result is,
/// and its gaps.
pub(crate) fn finish_reply(
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
