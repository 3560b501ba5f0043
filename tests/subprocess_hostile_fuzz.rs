//! The parent's reply path against random and mutated worker messages: a seeded loop sends
//! honest frames (replies inline and in the region, errors, offers, room) with bytes flipped,
//! cut, extended, with lying lengths, wrong sequence numbers and extra packets, from inside a
//! worker. Whatever comes, the job ends within its bound with a value or an error (never a
//! panic or an abort in the parent), and the next honest job gets its own result.
//!
//! Bounded: at most `ROUNDS` rounds and `TIME` of them; the seed is printed, and
//! `YTHREAD_FUZZ_SEED` replays one.

mod hostile_support;
mod subprocess_support;

use std::time::{Duration, Instant};

use hostile_support::{Scene, hostile_pool};
use serde_bytes::ByteBuf;
use ythread_suite::hostile::{RawPacket, offer_body, reply_body, shared_reply_body};

const ROUNDS: usize = 300;
const TIME: Duration = Duration::from_secs(20);

/// A small deterministic generator (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 17
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// An honest body of some kind, to mutate.
fn template(rng: &mut Lcg) -> Vec<u8> {
    match rng.below(6) {
        0 => reply_body(rng.next()).into_vec(),
        1 => shared_reply_body(rng.below(2 << 20)).into_vec(),
        2 => offer_body(rng.next(), rng.below(1 << 21)).into_vec(),
        3 => {
            // A failure: REPLY_ERR ++ postcard(WireError::Other(text)).
            let mut body = vec![1u8, 3];
            let text = "x".repeat(rng.below(300) as usize);
            body.extend_from_slice(&postcard::to_stdvec(&text).unwrap());
            body
        }
        4 => {
            let mut body = vec![0x40u8];
            body.extend_from_slice(&rng.next().to_le_bytes());
            body
        }
        _ => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
    }
}

fn mutate(body: &mut Vec<u8>, rng: &mut Lcg) {
    for _ in 0..rng.below(4) {
        match rng.below(4) {
            0 if !body.is_empty() => {
                let at = rng.below(body.len() as u64) as usize;
                body[at] ^= 1 << rng.below(8);
            }
            1 => body.truncate(rng.below(body.len() as u64 + 1) as usize),
            2 => body.extend((0..rng.below(32)).map(|_| rng.next() as u8)),
            _ => {}
        }
    }
}

fn packet(scene: &Scene, rng: &mut Lcg) -> RawPacket {
    let mut body = template(rng);
    mutate(&mut body, rng);
    let seq = match rng.below(8) {
        0 => scene.next_seq() + 1,
        1 => scene.next_seq().wrapping_sub(1),
        2 => rng.next(),
        _ => scene.next_seq(),
    };
    let declared = match rng.below(8) {
        0 => Some(rng.next()),
        1 => Some(body.len() as u64 + rng.below(3)),
        2 => Some((body.len() as u64).saturating_sub(1)),
        _ => None,
    };
    RawPacket {
        declared,
        seq,
        body: ByteBuf::from(body),
        no_header: rng.below(32) == 0,
        descriptors: if rng.below(32) == 0 { 3 } else { 0 },
    }
}

#[test]
fn random_and_mutated_replies_never_hurt_the_parent_or_the_next_job() {
    let seed = std::env::var("YTHREAD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("YTHREAD_FUZZ_SEED={seed}");
    let mut rng = Lcg(seed);
    let mut scene = Scene::new(
        hostile_pool()
            .max_payload(2 << 20)
            .timeout(Some(Duration::from_secs(10))),
    );
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < ROUNDS && started.elapsed() < TIME {
        rounds += 1;
        let packets = (0..1 + rng.below(3))
            .map(|_| packet(&scene, &mut rng))
            .collect();
        // Any value or any error: a worker that sends garbage may also send a well-formed
        // answer or failure. What matters is that the job ends (bounded in `send_raw`).
        let _ = scene.send_raw(packets, 7);
        // Whatever the worker did, an honest job afterwards gets its own answer (on the same
        // worker, or on the one that replaced it).
        scene.probe();
        assert_eq!(scene.tiny(99), 100, "round {rounds} (seed {seed})");
    }
    println!("{rounds} rounds");
}
