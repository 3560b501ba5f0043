//! Large arguments and results travel by direct copies or through the workers' shared-memory
//! regions, transparently to tasks; and `max_payload` bounds them in both directions. Leaks are checked in
//! `subprocess_payload_leaks.rs`, alone in its process so that no other pool's regions count.

mod subprocess_support;

use serde_bytes::ByteBuf;
use subprocess_support::{pool, within};
use ythread::Executor;
use ythread_executors::CopyMode;
use ythread_suite::tasks::{
    Blob, echo_bytes, echo_text, make_bytes, pid, reverse_blob, sum_bytes, tiny,
};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

#[test]
fn payloads_of_every_size_and_shape_round_trip_by_direct_copies() {
    every_size_and_shape(CopyMode::Direct);
}

#[test]
fn payloads_of_every_size_and_shape_round_trip_through_the_regions() {
    every_size_and_shape(CopyMode::Shared);
}

fn every_size_and_shape(copy: CopyMode) {
    let executor = Executor::new(pool(1).copy(copy).build().unwrap());
    within("payload round trips", move || {
        for len in [
            0,
            10,
            64 * KIB - 16,
            64 * KIB + 16,
            MIB,
            16 * MIB + 3,
            70 * MIB,
        ] {
            let bytes = pattern(len, len as u8);
            let back = executor
                .run(echo_bytes, ByteBuf::from(bytes.clone()))
                .unwrap();
            assert!(back.as_slice() == bytes.as_slice(), "echo of {len} bytes");
            let (count, sum) = executor
                .run(sum_bytes, ByteBuf::from(bytes.clone()))
                .unwrap();
            assert_eq!(count, len as u64);
            assert_eq!(sum, bytes.iter().map(|&b| u64::from(b)).sum::<u64>());
            let made = executor.run(make_bytes, len as u64).unwrap();
            assert_eq!(made.len(), len);
            assert!(made.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        }
        let text = "ä".repeat(3 * MIB);
        assert_eq!(executor.run(echo_text, text.clone()).unwrap(), text);
        let blob = Blob {
            name: "x".repeat(100 * KIB),
            data: ByteBuf::from(pattern(2 * MIB, 1)),
            plain: pattern(300 * KIB, 2),
        };
        let mut expected = blob.clone();
        expected.data.reverse();
        expected.plain.reverse();
        assert_eq!(executor.run(reverse_blob, blob).unwrap(), expected);
        // Small jobs still work between large ones.
        assert_eq!(executor.run(tiny, 41).unwrap(), 42);
    });
}

#[test]
fn max_payload_is_enforced_for_arguments_and_results_and_the_worker_survives() {
    let pool = pool(1).max_payload(MIB as u64).build().unwrap();
    let worker = pool.pids()[0];
    let executor = Executor::new(pool);
    let (args, result, fine, next) = within("payloads over the limit", move || {
        let args = executor
            .run(echo_bytes, ByteBuf::from(vec![1u8; 2 * MIB]))
            .unwrap_err();
        let result = executor.run(make_bytes, 2 * MIB as u64).unwrap_err();
        let fine = executor.run(make_bytes, (MIB / 2) as u64).unwrap().len();
        (args, result, fine, executor.run(pid, ()).unwrap())
    });
    for (error, side) in [(&args, "arguments"), (&result, "result")] {
        assert_eq!(error.kind(), ythread::ErrorKind::Codec, "{error}");
        let text = error.to_string();
        assert!(
            text.contains(&format!("send the {side} of task"))
                && text.contains("larger than the pool's max_payload of 1MiB")
                && text.contains("raise `max_payload`"),
            "{text}"
        );
    }
    assert_eq!(fine, MIB / 2);
    assert_eq!(next, worker, "a refused payload does not cost the worker");
}

#[test]
fn a_256_mib_payload_round_trips() {
    let executor = Executor::new(pool(1).build().unwrap());
    let len = 256 * MIB;
    let (count, sum) = within("a 256 MiB job", move || {
        executor
            .run(sum_bytes, ByteBuf::from(vec![3u8; len]))
            .unwrap()
    });
    assert_eq!((count, sum), (len as u64, 3 * len as u64));
}

#[test]
fn a_job_refused_half_way_through_its_direct_copies_leaves_the_worker_whole() {
    let pool = pool(1).max_payload(MIB as u64).build().unwrap();
    let worker = pool.pids()[0];
    let executor = Executor::new(pool);
    let (refused, echoes, next) = within("jobs after a refused one", move || {
        // The name goes apart first; the data would pass max_payload: the job is refused
        // after the worker made room for the name.
        let blob = Blob {
            name: "n".repeat(600 * KIB),
            data: ByteBuf::from(pattern(600 * KIB, 7)),
            plain: Vec::new(),
        };
        let refused = executor.run(reverse_blob, blob).unwrap_err();
        let data = ByteBuf::from(pattern(600 * KIB, 8));
        let echoes: Vec<bool> = (0..3)
            .map(|_| executor.run(echo_bytes, data.clone()).ok() == Some(data.clone()))
            .collect();
        (refused, echoes, executor.run(pid, ()).unwrap())
    });
    assert!(refused.to_string().contains("max_payload"), "{refused}");
    assert_eq!(
        echoes, [true; 3],
        "the room made for the refused job is not held against later ones"
    );
    assert_eq!(next, worker, "the worker serves on");
}
