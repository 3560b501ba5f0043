//! The job and reply bodies: the part of the wire that the subprocess transport and the `nats`
//! strategy share. A subprocess frame carries one of these bodies after its message tag; a
//! nats message is one.
//!
//! ```text
//! job:    postcard(task name: &str) ++ TAG ++ ARGS ++ [gaps]
//! reply:  0x00|0x10 ++ u64 LE ran nanos ++ postcard(result) ++ [gaps]    the task returned
//!         0x02|0x10 ++ u64 LE ran nanos ++ u64 LE length ++ [gaps]       ... result in the region
//!         0x01 ++ postcard(WireError)                                    the task failed
//!
//! TAG  = 0x00 args in the body (ARGS = postcard(args)), 0x01 in the args region (ARGS = u64
//!        LE length); | 0x10 with gaps; | 0x20 the worker may offer result bytes apart
//! gaps = (u64 LE offset ++ u64 LE length) per byte string sent apart ++ u32 LE count
//! ```
//!
//! The region and the gaps are the subprocess transport's (shared memory and direct copies,
//! which only a local worker process has); the `nats` strategy sends every body inline and
//! without gaps, and refuses a job that has either. Both transports carry
//! [`PROTOCOL_VERSION`], so a body that changes shape is refused by an older peer of either.
//!
//! Trade-off: one grammar for two transports means a change made for one is a version bump
//! for both; in return a node answers a job with the same code a worker process uses, and a
//! hostile body meets the same checks on either path. This module imports nothing of the
//! strategies that use it: they import it.

mod gaps;
mod job;
mod reply;
mod version;
mod wire_error;

pub(crate) use self::gaps::{Gap, Placement};
#[cfg(any(feature = "nats", test))]
pub(crate) use self::job::split_job;
pub(crate) use self::job::{Args, Job, place_args, read_job, write_job_head};
#[cfg(feature = "nats")]
pub(crate) use self::reply::BadReply;
#[cfg(feature = "nats")]
pub(crate) use self::reply::write_reply;
pub(crate) use self::reply::{Reply, finish_reply, read_reply, start_reply, write_error};
#[cfg(feature = "nats")]
pub(crate) use self::version::PROTOCOL_VERSION;
pub(crate) use self::wire_error::WireError;
