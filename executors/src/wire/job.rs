//! The job body: the task's name, then where its arguments are.

use super::gaps::{Gap, Placement, WITH_GAPS, read_gaps, write_gaps};

const ARGS_INLINE: u8 = 0;
const ARGS_SHARED: u8 = 1;
/// A job's tag has this bit when the worker may offer result bytes apart.
const OFFER_RESULTS: u8 = 0x20;

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
pub(crate) fn place_args(
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
