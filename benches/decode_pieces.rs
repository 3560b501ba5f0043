//! How decoding grows with the number of pieces that travelled apart: a hostile worker can
//! answer with as many pieces as its offers allow, and the caller's thread decodes them after
//! the reply, where no deadline reaches. The bar: 128k pieces decode in less than twice the
//! time of 64k (linear, not quadratic).
//!
//! Each round builds a `ByteBuf` encoding cut into one-byte pieces and times only
//! `Encoded::decode`, in the thread's CPU time: on a shared machine a longer run is also
//! preempted more often, which wall time would count against it. Every timed run starts with
//! cold caches (a 64 MiB sweep first): otherwise the smaller case would start with its pieces
//! in the caches, still warm from being built, and the larger one would not. Beside it, the floor: the same pieces only gathered into one `Vec` and
//! freed, which shows what the memory system alone makes of twice the pieces. The sizes and
//! the two measures alternate; the medians of 21 rounds each are compared in the same run.
//!
//! Run: `cargo bench --bench decode_pieces`.

use std::time::Duration;

use serde_bytes::ByteBuf;
use ythread::{Apart, Encoded};

/// The encoding of a `ByteBuf` of `pieces` bytes: its length prefix, and every byte apart.
fn cut(pieces: usize) -> (Vec<u8>, Vec<Apart>) {
    let whole = postcard::to_stdvec(&ByteBuf::from(vec![7u8; pieces])).expect("encodes");
    let header = whole.len() - pieces;
    let apart = (0..pieces)
        .map(|_| Apart {
            at: header,
            bytes: vec![7u8],
        })
        .collect();
    (whole[..header].to_vec(), apart)
}

/// This thread's CPU time so far.
fn cpu_now() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` into `now`, a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Evicts the pieces from every cache level by writing and reading a buffer larger than them.
fn cold_caches() {
    let mut sweep = vec![1u8; 64 << 20];
    for i in (0..sweep.len()).step_by(64) {
        sweep[i] = sweep[i].wrapping_add(1);
    }
    std::hint::black_box(&sweep);
}

fn decode_time(pieces: usize) -> Duration {
    let (rest, apart) = cut(pieces);
    let encoded = Encoded::with_apart(&rest, apart).expect("gaps in order");
    cold_caches();
    let started = cpu_now();
    let decoded: ByteBuf = encoded.decode().expect("decodes");
    let elapsed = cpu_now() - started;
    assert_eq!(decoded.len(), pieces);
    elapsed
}

fn floor_time(pieces: usize) -> Duration {
    let (_, apart) = cut(pieces);
    cold_caches();
    let started = cpu_now();
    let mut gathered = Vec::with_capacity(pieces);
    for piece in apart {
        gathered.extend_from_slice(&piece.bytes);
    }
    let elapsed = cpu_now() - started;
    assert_eq!(gathered.len(), pieces);
    elapsed
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("decode_pieces: bench");
        return;
    }
    const SMALL: usize = 64 << 10;
    const LARGE: usize = 128 << 10;
    let mut times = [(); 4].map(|()| Vec::new());
    for _ in 0..21 {
        times[0].push(decode_time(SMALL));
        times[1].push(decode_time(LARGE));
        times[2].push(floor_time(SMALL));
        times[3].push(floor_time(LARGE));
    }
    let [decode_small, decode_large, floor_small, floor_large] = times.map(median);
    let ratio = |large: Duration, small: Duration| large.as_secs_f64() / small.as_secs_f64();
    let decode_ratio = ratio(decode_large, decode_small);
    println!("one-byte pieces     64k          128k         ratio   (medians of 21)");
    println!("decode              {decode_small:<12.2?} {decode_large:<12.2?} {decode_ratio:.2}");
    println!(
        "floor (gather)      {floor_small:<12.2?} {floor_large:<12.2?} {:.2}",
        ratio(floor_large, floor_small)
    );
    println!(
        "bar: decode ratio < 2.0: {}",
        if decode_ratio < 2.0 { "met" } else { "NOT met" }
    );
}
