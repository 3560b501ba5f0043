//! A raw NATS client that speaks the job and reply bodies by hand: a hostile publisher on a
//! node's subjects, or a fake node that answers a caller's jobs with whatever a test wants.
//!
//! The bodies, as `executors/src/nats/message.rs` describes them:
//!
//! ```text
//! job:    postcard(task name) ++ 0x00 ++ postcard(args)
//! reply:  0x00 ++ ran (u64 LE ns) ++ postcard(result) | 0x01 ++ postcard(the protocol's WireError)
//! node:   0x10 ++ HOST:PID (taken) | 0x11 ++ HOST:PID (busy)
//! ```

use std::time::Duration;

use async_nats::{Client, HeaderMap, StatusCode};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::runtime::Runtime;

use super::{BOUND, Broker};

/// The kind of a node's failure: the index of the subprocess protocol's `WireError` variant,
/// the first byte postcard writes for it; its fields follow (`Panicked`: a message and an
/// optional location; `Codec` and `Other`: a text; `UnknownTask`: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Panicked = 0,
    UnknownTask = 1,
    Codec = 2,
    Other = 3,
}

/// One message on a job's reply subject.
#[derive(Debug)]
pub enum Answer {
    Taken(Vec<u8>),
    Busy(Vec<u8>),
    Done {
        ran: Duration,
        result: Vec<u8>,
    },
    /// A failure of `kind`; `text` is the rest of the body as text (its strings, with
    /// their postcard length prefixes).
    Failed {
        kind: Failure,
        text: String,
    },
    /// The broker: nobody listens on the subject.
    NoResponders,
    /// Anything else: a node that does not follow the protocol.
    Garbled(Vec<u8>),
}

impl Answer {
    /// Whether this ends the job.
    pub fn is_final(&self) -> bool {
        !matches!(self, Answer::Taken(_) | Answer::Busy(_))
    }

    fn read(message: &async_nats::Message) -> Answer {
        if message.status == Some(StatusCode::NO_RESPONDERS) {
            return Answer::NoResponders;
        }
        let body = &message.payload[..];
        match body.split_first() {
            Some((0x10, name)) => Answer::Taken(name.to_vec()),
            Some((0x11, name)) => Answer::Busy(name.to_vec()),
            Some((0x00, rest)) if rest.len() >= 8 => Answer::Done {
                ran: Duration::from_nanos(u64::from_le_bytes(rest[..8].try_into().unwrap())),
                result: rest[8..].to_vec(),
            },
            Some((0x01, [kind, text @ ..])) => {
                let kind = match kind {
                    0 => Failure::Panicked,
                    1 => Failure::UnknownTask,
                    2 => Failure::Codec,
                    3 => Failure::Other,
                    _ => return Answer::Garbled(body.to_vec()),
                };
                let text = String::from_utf8_lossy(text).into_owned();
                Answer::Failed { kind, text }
            }
            _ => Answer::Garbled(body.to_vec()),
        }
    }
}

/// The body of a job of `task` on `args`.
pub fn job_body<A: Serialize>(task: &str, args: &A) -> Vec<u8> {
    let mut body = postcard::to_stdvec(task).unwrap();
    body.push(0);
    body.extend(postcard::to_stdvec(args).unwrap());
    body
}

/// The body of a successful reply: `result` after `ran`.
pub fn done_body<R: Serialize>(ran: Duration, result: &R) -> Vec<u8> {
    let mut body = vec![0x00];
    body.extend_from_slice(&u64::try_from(ran.as_nanos()).unwrap().to_le_bytes());
    body.extend(postcard::to_stdvec(result).unwrap());
    body
}

/// The body of a failed reply of `kind` with `fields` (a tuple of them for `Panicked`).
pub fn failed_body<F: Serialize>(kind: Failure, fields: &F) -> Vec<u8> {
    let mut body = vec![0x01, kind as u8];
    body.extend(postcard::to_stdvec(fields).unwrap());
    body
}

/// A raw client on its own small runtime.
pub struct Raw {
    runtime: Runtime,
    client: Client,
}

impl Raw {
    /// Connects to `broker`.
    pub fn connect(broker: &Broker) -> Raw {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let url = broker.url();
        let client = runtime
            .block_on(async { tokio::time::timeout(BOUND, async_nats::connect(url)).await })
            .expect("connected within the bound")
            .unwrap();
        Raw { runtime, client }
    }

    /// Publishes `body` on `subject` (with `size` as the declared-size header, any text),
    /// and returns what comes back on its reply subject up to the first final answer.
    /// Panics if none comes within [`BOUND`].
    pub fn ask(&self, subject: &str, body: Vec<u8>, size: Option<&str>) -> Vec<Answer> {
        self.runtime.block_on(async {
            let inbox = self.client.new_inbox();
            let mut replies = self.client.subscribe(inbox.clone()).await.unwrap();
            self.client
                .publish_with_reply_and_headers(
                    subject.to_owned(),
                    inbox,
                    headers(size),
                    body.into(),
                )
                .await
                .unwrap();
            self.client.flush().await.unwrap();
            let mut answers = Vec::new();
            let until = tokio::time::Instant::now() + BOUND;
            loop {
                let message = tokio::time::timeout_at(until, replies.next())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("no final answer on {subject} within {BOUND:?}: {answers:?}")
                    })
                    .expect("the subscription lives");
                let answer = Answer::read(&message);
                let last = answer.is_final();
                answers.push(answer);
                if last {
                    return answers;
                }
            }
        })
    }

    /// Publishes `body` on `subject` and reads nothing back: with `reply`, to an inbox nobody
    /// reads; without, with no reply subject at all.
    pub fn send(&self, subject: &str, body: Vec<u8>, size: Option<&str>, reply: bool) {
        self.runtime.block_on(async {
            let sent = if reply {
                self.client
                    .publish_with_reply_and_headers(
                        subject.to_owned(),
                        self.client.new_inbox(),
                        headers(size),
                        body.into(),
                    )
                    .await
            } else {
                self.client
                    .publish_with_headers(subject.to_owned(), headers(size), body.into())
                    .await
            };
            sent.unwrap();
            self.client.flush().await.unwrap();
        });
    }

    /// Serves as a node of the queue group `queue` on `subjects` until dropped: answers every
    /// job with the bodies `answer` gives for its body, in order, on its reply subject.
    pub fn fake_node(
        &self,
        subjects: &str,
        queue: &str,
        answer: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
    ) {
        let client = self.client.clone();
        let mut jobs = self.runtime.block_on(async {
            let jobs = client
                .queue_subscribe(subjects.to_owned(), queue.to_owned())
                .await
                .unwrap();
            // A flush only writes the subscription out: a message of our own coming back
            // after it proves the broker has it.
            let echo = client.new_inbox();
            let mut back = client.subscribe(echo.clone()).await.unwrap();
            client.publish(echo, Default::default()).await.unwrap();
            client.flush().await.unwrap();
            tokio::time::timeout(BOUND, back.next())
                .await
                .expect("the broker echoes within the bound");
            jobs
        });
        self.runtime.spawn(async move {
            while let Some(job) = jobs.next().await {
                let Some(reply) = job.reply else { continue };
                for body in answer(&job.payload) {
                    let _ = client.publish(reply.clone(), body.into()).await;
                }
                let _ = client.flush().await;
            }
        });
    }

    /// Publishes `body` on `subject`, no reply wanted.
    pub fn publish(&self, subject: &str, body: Vec<u8>) {
        self.send(subject, body, None, false);
    }
}

fn headers(size: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(size) = size {
        headers.insert("Ythread-Size", size);
    }
    headers
}

/// The subjects of the job subject `job` (`PREFIX.DIGEST.task.TASK`): its base
/// (`PREFIX.DIGEST`).
pub fn base_of(job: &str) -> &str {
    &job[..job.find(".task.").expect("a job subject")]
}
