//! Large byte strings go by direct copies between the parent and its workers: the shared
//! regions are not even mapped for them. A worker that made itself undumpable declines direct
//! copies, at start-up or after a task did it, and uses the regions instead. One test in its
//! own binary, so that no other pool's regions are counted.

mod subprocess_support;

use serde_bytes::ByteBuf;
use subprocess_support::{UndumpableWorker, pool, regions_held, within};
use ythread::Executor;
use ythread_executors::CopyMode;
use ythread_suite::tasks::{Blob, become_undumpable, echo_bytes, pid, reverse_blob};

const MIB: usize = 1 << 20;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed))
        .collect()
}

/// Round-trips large payloads through `executor`; returns the regions this process then holds.
fn round_trips(executor: Executor) -> (usize, usize) {
    within("large round trips", move || {
        let data = ByteBuf::from(pattern(4 * MIB, 3));
        assert_eq!(executor.run(echo_bytes, data.clone()).unwrap(), data);
        let blob = Blob {
            name: "n".repeat(MIB),
            data: ByteBuf::from(pattern(2 * MIB, 4)),
            plain: pattern(1000, 5),
        };
        let mut expected = blob.clone();
        expected.data.reverse();
        expected.plain.reverse();
        assert_eq!(executor.run(reverse_blob, blob).unwrap(), expected);
        regions_held(std::process::id())
    })
}

#[test]
fn direct_copies_map_no_region_and_an_unreachable_worker_falls_back_to_the_regions() {
    let direct = round_trips(Executor::new(pool(1).build().unwrap()));
    assert_eq!(
        direct,
        (2, 0),
        "by direct copies the regions are never mapped"
    );

    let shared = round_trips(Executor::new(
        pool(1).copy(CopyMode::Shared).build().unwrap(),
    ));
    assert_eq!(shared, (2, 2), "copy=shared maps both regions");

    let undumpable = UndumpableWorker::new("direct");
    let declining = pool(1).program(undumpable.program()).build().unwrap();
    let fallback = round_trips(Executor::new(declining));
    assert_eq!(
        fallback,
        (2, 2),
        "a worker the parent cannot copy into gets its payloads through the regions"
    );

    // A task makes its worker undumpable: the same worker goes on, through the regions.
    let executor = Executor::new(pool(1).build().unwrap());
    let pid_of = |executor: Executor| within("a small job", move || executor.run(pid, ()).unwrap());
    let before = pid_of(executor.clone());
    let by_direct = round_trips(executor.clone());
    let runner = executor.clone();
    let undumpable = within("a task making its worker undumpable", move || {
        runner.run(become_undumpable, ()).unwrap()
    });
    let by_regions = round_trips(executor.clone());
    let last = pid_of(executor);
    assert_eq!(by_direct, (2, 0), "direct copies until the task ran");
    assert_eq!(
        by_regions,
        (2, 2),
        "then its payloads go through the regions"
    );
    assert_eq!(
        (undumpable, last),
        (before, before),
        "the same worker served throughout"
    );
}
