//! The hostile worker's rows, shared by `subprocess_hostile.rs` (one test a row) and
//! `subprocess_hostile_resources.rs` (every row on one pool, counting the parent's resources).
//! Each row plays one thing a compromised worker can do, and checks what the parent does
//! about it: the job fails with a clear error (or ends at its deadline), the worker is
//! replaced, and the next job gets its own result.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::time::Duration;

use serde_bytes::ByteBuf;
use ythread::{Error, Executor};
use ythread_executors::{SubprocessBuilder, SubprocessPool};
use ythread_suite::hostile::{
    RawPacket, claim_no_time, fork_then, inflate_results, offer_body, reply_body, seal_args_region,
    send_raw,
};
use ythread_suite::tasks::{Misbehave, echo_bytes, pid, tiny};

use crate::subprocess_support::{BOUND, proc_stat, within};

/// A builder for a one-worker pool of the hostile worker program.
pub fn hostile_pool() -> SubprocessBuilder {
    SubprocessPool::builder()
        .program(env!("CARGO_BIN_EXE_ythread-hostile-worker"))
        .registry(ythread_suite::hostile::registry())
        .workers(1)
        .express(0)
}

/// A one-worker pool and what a hostile task needs to know about its worker: its pid, and how
/// many jobs it has been sent (the sequence number of its next job is one more).
pub struct Scene {
    pub executor: Executor,
    pub worker: u32,
    sent: u64,
}

impl Scene {
    pub fn new(builder: SubprocessBuilder) -> Scene {
        let executor = Executor::new(builder.build().unwrap());
        let mut scene = Scene {
            executor,
            worker: 0,
            sent: 0,
        };
        scene.worker = scene.probe();
        scene
    }

    /// The sequence number of the next job to the current worker.
    pub fn next_seq(&self) -> u64 {
        self.sent + 1
    }

    /// Runs an honest job; learns which worker serves now (a replaced one starts counting
    /// anew) and returns its pid.
    pub fn probe(&mut self) -> u32 {
        let executor = self.executor.clone();
        let serving = honest(move || executor.run(pid, ()));
        if serving == self.worker {
            self.sent += 1;
        } else {
            self.worker = serving;
            self.sent = 1;
        }
        serving
    }

    /// Runs `send_raw(packets, value)` on the current worker.
    pub fn send_raw(&mut self, packets: Vec<RawPacket>, value: u64) -> Result<u64, Error> {
        self.sent += 1;
        let executor = self.executor.clone();
        within("a hostile job", move || {
            executor.run(send_raw, (packets, value))
        })
    }

    /// Runs the honest `tiny(x)` on the current worker (which [`probe`](Self::probe) named).
    pub fn tiny(&mut self, x: u64) -> u64 {
        let executor = self.executor.clone();
        let value = honest(move || executor.run(tiny, x));
        self.sent += 1;
        value
    }

    /// Checks that the last job's worker was killed and replaced, and that the new one
    /// answers honestly.
    pub fn assert_replaced(&mut self, after: &str) {
        let before = self.worker;
        let now = self.probe();
        assert_ne!(now, before, "{after}: the misbehaving worker was replaced");
        assert_eq!(
            self.tiny(41),
            42,
            "{after}: the next job gets its own result"
        );
    }
}

/// Runs an honest job until it succeeds, at most three times. A worker that sent a frame of
/// its own after its reply (a forged reply, then its real one) may be caught only by the
/// next job, after that job was sent: then that job fails as garbled, never with another
/// job's result, and the worker is replaced for the next try.
pub fn honest<T: Send + 'static>(run: impl Fn() -> Result<T, Error> + Send + 'static) -> T {
    within("an honest job", move || {
        for _ in 0..2 {
            match run() {
                Ok(value) => return value,
                Err(error) => assert!(is_garbled(&error), "{error}"),
            }
        }
        run().unwrap()
    })
}

fn is_garbled(error: &Error) -> bool {
    error.kind() == ythread::ErrorKind::Codec && error.to_string().contains("misbehaved")
}

/// The error of a job whose worker broke the protocol.
pub fn assert_garbled(result: Result<u64, Error>, what: &str) {
    let error = result.expect_err(what);
    assert_eq!(error.kind(), ythread::ErrorKind::Codec, "{what}: {error}");
    assert!(error.to_string().contains("misbehaved"), "{what}: {error}");
}

/// Row 1: frame lengths far past `max_payload` (2^45 bytes; 256 MiB against a 1 MiB limit).
pub fn lying_lengths(scene: &mut Scene) {
    for declared in [1u64 << 45, 256 << 20] {
        let packet = RawPacket {
            declared: Some(declared),
            seq: scene.next_seq(),
            body: ByteBuf::from(vec![0; 1000]),
            ..RawPacket::default()
        };
        assert_garbled(scene.send_raw(vec![packet], 1), "a huge length prefix");
        scene.assert_replaced("a huge length prefix");
    }
}

/// Row 2: raw packets that no honest worker sends: descriptors attached to an honest reply,
/// a packet past the largest one, a frame longer than its prefix.
pub fn raw_packets(scene: &mut Scene) {
    let cases = [
        (
            "64 descriptors attached to an honest reply",
            RawPacket {
                body: reply_body(5),
                descriptors: 64,
                ..RawPacket::default()
            },
        ),
        (
            "a packet larger than any frame's packet",
            RawPacket {
                body: ByteBuf::from(vec![1; 100 << 10]),
                no_header: true,
                ..RawPacket::default()
            },
        ),
        (
            "a frame longer than its prefix",
            RawPacket {
                declared: Some(3),
                body: reply_body(5),
                ..RawPacket::default()
            },
        ),
    ];
    for (what, mut packet) in cases {
        packet.seq = scene.next_seq();
        assert_garbled(scene.send_raw(vec![packet], 5), what);
        scene.assert_replaced(what);
    }
}

/// Row 3: a task forks a child that inherits the worker's socket and lives on, then the
/// worker aborts (the job fails at once, with no deadline set: the worker's death is its
/// pid's) or spins (the job ends at its deadline, on a pool of its own that has one). Either
/// way the child dies with the worker's process group.
pub fn forks(scene: &mut Scene) {
    let dir = tempdir("fork");
    let deadline = Duration::from_secs(2);
    let mut with_deadline = Scene::new(hostile_pool().timeout(Some(deadline)));
    for (then, name) in [(Misbehave::Abort, "abort"), (Misbehave::Spin, "spin")] {
        let scene = match then {
            Misbehave::Abort => &mut *scene,
            _ => &mut with_deadline,
        };
        let path = dir.join(name).to_string_lossy().into_owned();
        scene.sent += 1;
        let executor = scene.executor.clone();
        let task_path = path.clone();
        let error = within("a job whose worker forked", move || {
            executor.run(fork_then, (task_path, then))
        })
        .expect_err("the worker does not answer");
        match then {
            Misbehave::Abort => assert!(error.is_worker_died(), "{error}"),
            _ => assert!(error.is_timeout(), "{error} (deadline {deadline:?})"),
        }
        let child: u32 = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        crate::subprocess_support::eventually("the forked child dies with its worker", || {
            proc_stat(child).is_none_or(|stat| stat.state == 'Z')
        });
        scene.assert_replaced("a fork");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Row 4: the worker grows its results region to 64 TiB and says the result is one byte of
/// it. The parent maps what one byte needs, not the region.
pub fn inflated_region(scene: &mut Scene) {
    let seq = scene.next_seq();
    scene.sent += 1;
    let executor = scene.executor.clone();
    // The forged reply is well formed: a compromised worker can always answer wrongly.
    let _ = within("a job whose worker inflated its region", move || {
        executor.run(inflate_results, (seq, 1u64 << 46))
    });
    let mapped = region_bytes_mapped();
    assert!(
        mapped < 1 << 30,
        "the parent maps {mapped} bytes of regions"
    );
    // The worker's own reply came after the forged one: a frame no job asked for.
    scene.assert_replaced("an inflated region");
}

/// Row 5: the worker replies twice to one client's job; the next client never gets the
/// first client's result.
pub fn replies_twice(scene: &mut Scene) {
    let secret = 0x5ec2e7;
    let forged = RawPacket {
        seq: scene.next_seq(),
        body: reply_body(secret),
        ..RawPacket::default()
    };
    assert_eq!(scene.send_raw(vec![forged], secret).unwrap(), secret);
    let before = scene.worker;
    let executor = scene.executor.clone();
    let next = honest(move || executor.run(tiny, 6));
    assert_eq!(next, 7, "the next client got its own result");
    assert_ne!(
        scene.probe(),
        before,
        "the worker that replied twice was replaced"
    );
    // The next client's job was the new worker's first.
    scene.sent += 1;
}

/// Row 6: 16,000 one-byte offers of result bytes: refused at the first, which is below the
/// direct-copy threshold.
pub fn tiny_offers(scene: &mut Scene) {
    let seq = scene.next_seq();
    let offers = (0..16_000)
        .map(|i| RawPacket {
            seq,
            body: offer_body(4096 + i, 1),
            ..RawPacket::default()
        })
        .collect();
    let error = scene
        .send_raw(offers, 1)
        .expect_err("16,000 one-byte offers");
    assert!(
        error
            .to_string()
            .contains("below the direct-copy threshold"),
        "refused for its size (needs direct copies, which this machine must allow): {error}"
    );
    scene.assert_replaced("16,000 one-byte offers");
}

/// Row 7: the worker tries to seal its args region against writes; it cannot, and the next
/// large payload still goes through the region, to the same worker.
pub fn sealed_region(scene: &mut Scene) {
    let executor = scene.executor.clone();
    let sealed = within("a sealing job", move || {
        executor.run(seal_args_region, ()).unwrap()
    });
    scene.sent += 1;
    assert!(!sealed, "the region refuses new seals");
    // Above the shared-memory threshold, below the direct-copy one: through the region.
    let payload = ByteBuf::from(vec![9u8; 100 << 10]);
    let executor = scene.executor.clone();
    let expected = payload.clone();
    let back = within("a large job", move || {
        executor.run(echo_bytes, payload).unwrap()
    });
    scene.sent += 1;
    assert!(back == expected, "the payload came back whole");
    let worker = scene.worker;
    assert_eq!(scene.probe(), worker, "the same worker serves on");
}

/// A worker says a job of 200 ms of CPU time ran for 1 ns, to make heavy work look cheap; the
/// cost model learns at least the CPU time the kernel counted.
pub fn lies_about_time(scene: &mut Scene) {
    let seq = scene.next_seq();
    scene.sent += 1;
    let executor = scene.executor.clone();
    let answered = within("a job that lies about its time", move || {
        executor.run(claim_no_time, (200, seq)).unwrap()
    });
    assert_eq!(answered, 200);
    let metrics = scene.executor.metrics();
    let name = <claim_no_time as ythread::Task>::NAME;
    let learned = &metrics.task(name).expect("the task ran").learned;
    let cost = learned.first().expect("a cost was learned").cost;
    assert!(cost >= Duration::from_millis(200), "learned {cost:?}");
    // Its own reply came after the forged one.
    scene.assert_replaced("a lie about time");
}

/// The bytes of the pools' shared-memory regions this process maps (every pool's, so that
/// other tests running beside this one count too: a few MiB each).
pub fn region_bytes_mapped() -> u64 {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| line.contains("/memfd:ythread"))
        .filter_map(|line| {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            Some(u64::from_str_radix(end, 16).ok()? - start)
        })
        .sum()
}

/// A field of `/proc/self/status` in its own unit (kB for sizes).
pub fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ythread-hostile-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The bound every row's waits share.
pub const ROW_BOUND: Duration = BOUND;
