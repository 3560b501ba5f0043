//! The worker's side of the protocol: it answers each message from the pool, runs jobs, and
//! takes part in direct copies (see `direct.rs`).
//!
//! For a direct copy of arguments the worker only allocates: a `want` gets a `Vec` of exactly
//! that capacity, kept in `room`, and its address goes back. The parent writes the bytes and
//! then sends the job, whose gaps list the byte strings in the order of their `want`s; the
//! worker gives those `Vec`s, now full, to the decoder. Room left over from a job that the
//! parent never sent (its encoding failed after a `want`) is dropped at the next job's first
//! `want`, or when the next job comes.
//!
//! A worker that is no longer dumpable (a task made it so) declines both kinds of direct
//! copy: the bytes then take the shared region.
//!
//! For a direct copy of a result the worker offers each large byte string as the encoder
//! reaches it, and waits for the parent's `taken` before it goes on: the bytes stay where the
//! value keeps them, borrowed by the encoder, for as long as the parent reads them.

use std::time::{Duration, Instant};

use ythread::{Apart, Encoded, Error as WorkError, TaskRegistry};

use crate::subprocess::transport::direct;
use crate::subprocess::transport::frame::{self, Wire};
use crate::subprocess::transport::payload::{PayloadWriter, Refusal, SendApart};
use crate::subprocess::transport::protocol::{self, Regions};
use crate::subprocess::transport::shm::Region;
use crate::wire::{self, Args, Gap, Job, WireError};

/// A worker's state between messages.
pub(super) struct Answerer {
    regions: Regions,
    max_payload: usize,
    /// The worker's memory limit in bytes, if any, for the reason it gives when it has no room.
    memory: Option<u64>,
    /// Allocated for byte strings of the next job's arguments, with the length each was
    /// asked for, oldest first.
    room: Vec<(Vec<u8>, usize)>,
    /// How long the parent should take before its next message (it is copying into `room`).
    next_message: Duration,
}

impl Answerer {
    pub(super) fn new(regions: Regions, max_payload: usize, memory: Option<u64>) -> Self {
        Answerer {
            regions,
            max_payload,
            memory,
            room: Vec::new(),
            next_message: Duration::ZERO,
        }
    }

    /// How long the pool should take to send its next message, if it is busy copying: see
    /// `direct::wait_while_copying`.
    pub(super) fn next_message(&self) -> Duration {
        self.next_message
    }

    /// Answers one message `body` from the pool with the sealed reply frame in `out`, or says
    /// why the message breaks the protocol.
    pub(super) fn answer(
        &mut self,
        registry: &TaskRegistry,
        body: &[u8],
        out: &mut Vec<u8>,
        wire: &mut Wire,
    ) -> Result<(), String> {
        self.next_message = Duration::ZERO;
        match body.split_first() {
            Some((&protocol::TO_WORKER_JOB, job)) => {
                self.run_job(registry, job, out, wire);
                Ok(())
            }
            Some((&protocol::TO_WORKER_WANT, fields)) => {
                let [len, first] = protocol::small_fields(fields).ok_or("a malformed `want`")?;
                if first == 1 {
                    // What is left is from an encoding the pool gave up: never to be listed.
                    self.room.clear();
                }
                if direct::dumpable() {
                    self.make_room(len, out);
                } else {
                    protocol::small_message(out, protocol::FROM_WORKER_DECLINED, &[]);
                }
                Ok(())
            }
            Some((tag, _)) => Err(format!("a message with the unexpected tag {tag}")),
            None => Err("an empty message".to_owned()),
        }
    }

    fn make_room(&mut self, len: u64, out: &mut Vec<u8>) {
        let held: usize = self.room.iter().map(|(_, len)| len).sum();
        let room = usize::try_from(len)
            .ok()
            .filter(|&len| held.saturating_add(len) <= self.max_payload)
            .ok_or_else(|| format!("{len} bytes are more than the pool's max_payload"))
            .and_then(|len| {
                let mut bytes = Vec::new();
                bytes
                    .try_reserve_exact(len)
                    .map_err(|_| no_room(len, self.memory))?;
                Ok((bytes, len))
            });
        match room {
            Ok((bytes, len)) => {
                self.next_message = direct::wait_while_copying(len);
                let address = bytes.as_ptr() as u64;
                self.room.push((bytes, len));
                protocol::small_message(out, protocol::FROM_WORKER_ROOM, &[address]);
            }
            Err(why) => {
                frame::start(out);
                out.push(protocol::FROM_WORKER_NO_ROOM);
                out.extend_from_slice(why.as_bytes());
                frame::seal(out);
            }
        }
    }

    fn run_job(
        &mut self,
        registry: &TaskRegistry,
        body: &[u8],
        out: &mut Vec<u8>,
        wire: &mut Wire,
    ) {
        frame::start(out);
        let tag = wire::start_reply(out);
        let began = Instant::now();
        let job = wire::read_job(body);
        let room = std::mem::take(&mut self.room);
        let mut offer = Offer {
            wire,
            message: Vec::new(),
            waited: Duration::ZERO,
        };
        let mut result = PayloadWriter::new(out, &mut self.regions.results, self.max_payload);
        if job.as_ref().is_ok_and(|job| job.offer_results) {
            result = result.sending_apart(&mut offer);
        }
        let (task, outcome) = match job {
            Ok(job) => (
                job.task,
                arguments(&job, &mut self.regions.args, self.max_payload, room)
                    .and_then(|args| registry.run_encoded_to(job.task, args, &mut result)),
            ),
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
            (Ok(()), Ok((placement, gaps))) => {
                let ran = began.elapsed().saturating_sub(offer.waited);
                wire::finish_reply(out, tag, ran, placement, &gaps);
                Ok(())
            }
            (Err(error), Ok(_)) => Err(error),
        };
        if let Err(error) = outcome {
            out.truncate(tag);
            wire::write_error(&WireError::from_error(&error), out);
        }
        frame::seal(out);
    }
}

/// Why a worker under the memory limit `memory` could not allocate `len` bytes.
fn no_room(len: usize, memory: Option<u64>) -> String {
    match memory {
        Some(limit) if limit % (1 << 20) == 0 => format!(
            "it could not allocate {len} bytes within its memory limit of {} MiB",
            limit >> 20
        ),
        Some(limit) => {
            format!("it could not allocate {len} bytes within its memory limit of {limit} bytes")
        }
        None => format!("it could not allocate {len} bytes"),
    }
}

/// The job's encoded arguments: the rest from the frame or the args region, and the byte
/// strings the parent wrote into `room`.
fn arguments<'a>(
    job: &Job<'a>,
    args_region: &'a mut Region,
    max_payload: usize,
    mut room: Vec<(Vec<u8>, usize)>,
) -> Result<Encoded<'a>, WorkError> {
    let failed =
        |why: String| WorkError::codec(format!("take the arguments of task `{}`", job.task), why);
    let rest = match job.args {
        Args::Inline(args) => args,
        Args::Shared(len) if len > max_payload => {
            return Err(failed(format!(
                "{len} bytes are more than the pool's max_payload"
            )));
        }
        Args::Shared(len) => args_region.read(len).map_err(|e| failed(e.to_string()))?,
    };
    if job.gaps.len() > room.len() {
        return Err(failed(format!(
            "the job lists {} byte strings sent apart, but room was made for {}",
            job.gaps.len(),
            room.len()
        )));
    }
    let stale = room.len() - job.gaps.len();
    let mut apart = Vec::with_capacity(job.gaps.len());
    for (&Gap { at, len }, (mut bytes, asked)) in job.gaps.iter().zip(room.drain(stale..)) {
        if usize::try_from(len) != Ok(asked) {
            return Err(failed(format!(
                "a byte string sent apart is listed as {len} bytes, but room was made for {asked}"
            )));
        }
        #[allow(unsafe_code)] // the crate's one unsafe outside its system-call modules
        // SAFETY: `make_room` reserved a capacity of at least `asked` bytes for `bytes`, and
        // the parent wrote the first `asked` of them (process_vm_writev) before it
        // sent this job: it sends a job only after every copy of its byte strings reported its
        // full length, and the job lists them in the order of their `want`s, which is the order
        // of `room`. The parent is the side of the protocol the worker trusts.
        unsafe {
            bytes.set_len(asked)
        };
        let at = usize::try_from(at).map_err(|_| failed("a gap past the end".to_owned()))?;
        apart.push(Apart { at, bytes });
    }
    Encoded::with_apart(rest, apart).map_err(|e| failed(e.to_string()))
}

/// Offers a result's large byte strings to the parent, one at a time.
struct Offer<'a> {
    wire: &'a mut Wire,
    message: Vec<u8>,
    /// How long the offers waited for the parent to copy: the transfer's time, not the task's.
    waited: Duration,
}

impl SendApart for Offer<'_> {
    fn send_apart(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        if !direct::dumpable() {
            // The task made this process undumpable: the pool may not be able to read it.
            return Err(Refusal::Declined);
        }
        let offer = [bytes.as_ptr() as u64, bytes.len() as u64];
        protocol::small_message(&mut self.message, protocol::FROM_WORKER_OFFER, &offer);
        self.wire
            .send(&mut self.message)
            .map_err(|_| Refusal::Lost("the pool is gone".to_owned()))?;
        let asked = Instant::now();
        let body = self
            .wire
            .recv_small(direct::wait_while_copying(bytes.len()))
            .map_err(|e| Refusal::Lost(format!("the pool did not take the offer: {e}")))?;
        self.waited += asked.elapsed();
        if body != [protocol::TO_WORKER_TAKEN] {
            return Err(Refusal::Lost(
                "the pool answered an offer with something else".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ythread::ErrorKind;

    use super::*;
    use crate::subprocess::transport::frame::{FrameReceiver, Side};
    use crate::subprocess::transport::receive::Receiver;
    use crate::subprocess::transport::socket::Socket;
    use crate::wire::Reply;

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
    ythread::task!(
        fn zeros(len: u64) -> serde_bytes::ByteBuf {
            serde_bytes::ByteBuf::from(vec![0; len as usize])
        }
    );

    /// A worker's answerer with both ends of its channels, in this process.
    struct Worker {
        answerer: Answerer,
        link: FrameReceiver,
        _pool: Socket,
        out: Vec<u8>,
    }

    impl Worker {
        fn new(max_payload: usize) -> Self {
            let regions = Regions {
                args: Region::create("test").unwrap(),
                results: Region::create("test").unwrap(),
            };
            let (pool, worker) = Socket::pair().unwrap();
            let receiver = Receiver::new(worker, None, Duration::ZERO);
            Worker {
                answerer: Answerer::new(regions, max_payload, None),
                link: FrameReceiver::new(receiver, Side::Worker, usize::MAX),
                _pool: pool,
                out: Vec::new(),
            }
        }

        /// Answers the job `task(args)`, its arguments inline; returns the reply's body.
        fn job(&mut self, registry: &TaskRegistry, task: &str, args: &[u8]) -> &[u8] {
            let mut job = Vec::new();
            protocol::start_job(task, &mut job);
            job.extend_from_slice(args);
            self.message(registry, &job[frame::HEADER..]).unwrap()
        }

        fn message(&mut self, registry: &TaskRegistry, body: &[u8]) -> Result<&[u8], String> {
            self.answerer
                .answer(registry, body, &mut self.out, self.link.wire())?;
            Ok(&self.out[frame::HEADER..])
        }
    }

    #[test]
    fn answers_round_trip_results_and_panics() {
        let registry = TaskRegistry::new().with(add).with(boom);
        let mut worker = Worker::new(usize::MAX);
        let args = postcard::to_stdvec(&(2u32, 3u32)).unwrap();
        let Ok(Reply::Done {
            result: Args::Inline(result),
            ran,
            ..
        }) = wire::read_reply(worker.job(&registry, <add as ythread::Task>::NAME, &args))
        else {
            panic!("expected a result")
        };
        assert_eq!(postcard::from_bytes::<u32>(result).unwrap(), 5);
        assert!(ran > Duration::ZERO, "the worker timed the run");

        let args = postcard::to_stdvec(&7u8).unwrap();
        let reply = worker.job(&registry, <boom as ythread::Task>::NAME, &args);
        let Ok(Reply::Failed(wire)) = wire::read_reply(reply) else {
            panic!("expected a failure")
        };
        let error = wire.into_error("boom", 9);
        assert_eq!(error.message(), Some("boom 7"));
        assert!(error.location().unwrap().contains("answer.rs"), "{error}");
        assert!(error.to_string().contains("worker process 9"), "{error}");
    }

    #[test]
    fn a_large_result_goes_through_the_results_region_unless_offered_apart() {
        let registry = TaskRegistry::new().with(zeros);
        let mut worker = Worker::new(usize::MAX);
        let args = postcard::to_stdvec(&(1u64 << 20)).unwrap();
        let reply = worker.job(&registry, <zeros as ythread::Task>::NAME, &args);
        assert!(reply.len() < 64, "the reply frame only names the region");
        let Ok(Reply::Done {
            result: Args::Shared(len),
            gaps,
            ..
        }) = wire::read_reply(reply)
        else {
            panic!("expected a shared result")
        };
        assert!(gaps.is_empty(), "the job did not let the worker offer");
        let encoded = worker.answerer.regions.results.read(len).unwrap();
        let back: serde_bytes::ByteBuf = postcard::from_bytes(encoded).unwrap();
        assert_eq!(back.len(), 1 << 20);

        // Over the payload limit: a codec error naming it, from the worker.
        let mut worker = Worker::new(1000);
        let reply = worker.job(&registry, <zeros as ythread::Task>::NAME, &args);
        let Ok(Reply::Failed(wire)) = wire::read_reply(reply) else {
            panic!("expected a failure")
        };
        let error = wire.into_error("zeros", 3);
        assert!(error.to_string().contains("max_payload"), "{error}");
    }

    /// The body of a small message.
    fn message(tag: u8, fields: &[u64]) -> Vec<u8> {
        let mut frame = Vec::new();
        protocol::small_message(&mut frame, tag, fields);
        frame.split_off(frame::HEADER)
    }

    #[test]
    fn room_is_made_within_max_payload_and_unknown_messages_are_refused() {
        let registry = TaskRegistry::new();
        let mut worker = Worker::new(1 << 20);
        let half = 1 << 19;
        let first = message(protocol::TO_WORKER_WANT, &[half, 1]);
        let next = message(protocol::TO_WORKER_WANT, &[half, 0]);
        let room = worker.message(&registry, &first).unwrap();
        assert_eq!(room[0], protocol::FROM_WORKER_ROOM);
        // A second half fits; a third is past max_payload with the room already held.
        worker.message(&registry, &next).unwrap();
        let no_room = worker.message(&registry, &next).unwrap();
        assert_eq!(no_room[0], protocol::FROM_WORKER_NO_ROOM);
        assert!(String::from_utf8_lossy(&no_room[1..]).contains("max_payload"));
        // A new encoding's first `want` drops the room of the one given up.
        let room = worker.message(&registry, &first).unwrap();
        assert_eq!(
            room[0],
            protocol::FROM_WORKER_ROOM,
            "stale room was dropped"
        );

        let error = worker.message(&registry, &[0x77]).unwrap_err();
        assert!(error.contains("unexpected tag"), "{error}");
        assert!(worker.message(&registry, &[]).is_err());
    }

    #[test]
    fn unknown_tasks_and_garbage_are_errors_not_panics() {
        let registry = TaskRegistry::new();
        let mut worker = Worker::new(usize::MAX);
        let reply = worker.job(&registry, "nope", &[]);
        let Ok(Reply::Failed(wire)) = wire::read_reply(reply) else {
            panic!("expected a failure")
        };
        let error = wire.into_error("nope", 1);
        assert_eq!(error.kind(), ErrorKind::UnknownTask);
        assert!(error.to_string().contains("`nope`"), "{error}");

        let garbage = worker
            .message(&registry, &[protocol::TO_WORKER_JOB, 0xff])
            .unwrap();
        assert!(matches!(
            wire::read_reply(garbage),
            Ok(Reply::Failed(WireError::Codec(_)))
        ));
    }
}
