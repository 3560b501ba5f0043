//! The `nats` strategy against a real broker: sharing a load, registries that differ, no node,
//! panics and oversized payloads. Each test starts its own `nats-server` and nodes.

mod nats_support;
mod subprocess_support;

use std::collections::HashSet;
use std::thread;
use std::time::{Duration, Instant};

use nats_support::{BOUND, Broker, Node, caller, eventually, nats_caller, within};
use serde_bytes::ByteBuf;
use ythread::{ErrorKind, YieldableThread};
use ythread_suite::tasks;

#[test]
fn two_nodes_share_a_load_and_both_pids_are_seen() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let (a, b) = (
        Node::start(&broker, "rayon:1"),
        Node::start(&broker, "rayon:1"),
    );
    let executor = caller(&broker, "30s");
    let pids = within("the load", move || {
        let handlers: Vec<_> = (0..4)
            .map(|_| {
                YieldableThread::spawn(&executor, |y| {
                    (0..10)
                        .map(|_| y.apply(tasks::pid_after_ms, 5))
                        .collect::<Result<Vec<u32>, _>>()
                })
            })
            .collect();
        let mut pids = Vec::new();
        for handler in handlers {
            pids.extend(handler.join().unwrap().unwrap());
        }
        pids
    });
    assert_eq!(pids.len(), 40, "every job completed");
    let seen: HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(seen, HashSet::from([a.pid, b.pid]), "both nodes ran jobs");

    // Each node reports who it is and what it ran.
    let asking = nats_caller(&broker, "30s");
    let mut nodes = Vec::new();
    eventually("both nodes to answer", || {
        nodes = asking.nodes(Duration::from_millis(200)).unwrap();
        nodes.len() == 2
    });
    let mut reported: Vec<(u32, u64)> = nodes
        .iter()
        .map(|n| {
            let pid = n.node.rsplit(':').next().unwrap().parse().unwrap();
            assert_eq!((n.strategy.as_str(), n.capacity), ("rayon:1", 1), "{n:?}");
            assert!(n.metrics.contains("pid_after_ms"), "{n:?}");
            (pid, n.served)
        })
        .collect();
    reported.sort();
    let mut expected = vec![
        (a.pid, pids.iter().filter(|&&p| p == a.pid).count() as u64),
        (b.pid, pids.iter().filter(|&&p| p == b.pid).count() as u64),
    ];
    expected.sort();
    assert_eq!(reported, expected, "{nodes:?}");
}

#[test]
fn a_node_of_another_build_gets_no_jobs() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let ours = Node::start(&broker, "inline");
    let _other = Node::start_other_build(&broker);
    let executor = caller(&broker, "30s");
    let pids = within("the jobs", move || {
        (0..20)
            .map(|_| executor.run(tasks::pid, ()).unwrap())
            .collect::<HashSet<u32>>()
    });
    assert_eq!(pids, HashSet::from([ours.pid]));
}

#[test]
fn no_node_is_an_immediate_error_that_says_how_to_start_one() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let _other = Node::start_other_build(&broker);
    let executor = caller(&broker, "60s");
    let started = Instant::now();
    let err = within("the job", move || executor.run(tasks::tiny, 1).unwrap_err());
    assert!(
        started.elapsed() < BOUND / 2,
        "no-responders must not wait for the 60 s deadline"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let text = err.to_string();
    assert!(text.contains("no node serves task"), "{text}");
    assert!(text.contains("YTHREAD_WORKER=nats://127.0.0.1:"), "{text}");
}

#[test]
fn a_panic_on_a_node_comes_back_with_its_message_location_and_node() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let node = Node::start(&broker, "inline");
    let executor = caller(&broker, "30s");
    let err = within("the job", move || {
        executor
            .run(tasks::panic_with, "kaboom".to_owned())
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Panicked, "{err}");
    assert_eq!(err.message(), Some("kaboom"));
    assert!(err.location().unwrap().contains("tasks.rs"), "{err}");
    assert!(err.to_string().contains(&format!(":{}", node.pid)), "{err}");
}

#[test]
fn a_node_running_subprocess_workers_survives_a_crashing_task() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let node = Node::start(&broker, "subprocess:1,express=0");
    let executor = caller(&broker, "30s");
    let (crash, after) = within("the jobs", move || {
        let crash = executor.run(tasks::abort_process, ()).unwrap_err();
        (crash, executor.run(tasks::sumn, 100).unwrap())
    });
    assert_eq!(crash.kind(), ErrorKind::Unavailable, "{crash}");
    assert!(crash.to_string().contains("SIGABRT"), "{crash}");
    assert_eq!(after, 5050, "the node goes on with a new worker");
    drop(node);
}

#[test]
fn a_payload_over_max_payload_fails_at_once_naming_the_limit() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let _node = Node::start(&broker, "inline");
    let executor = caller(&broker, "30s");
    let (big, small) = within("the jobs", move || {
        let big = executor
            .run(tasks::echo_bytes, ByteBuf::from(vec![7u8; 2 << 20]))
            .unwrap_err();
        let small = executor
            .run(tasks::echo_bytes, ByteBuf::from(vec![7u8; 1000]))
            .unwrap();
        (big, small)
    });
    assert_eq!(big.kind(), ErrorKind::Codec, "{big}");
    assert!(
        big.to_string().contains("max_payload of 1048576 bytes"),
        "{big}"
    );
    assert_eq!(small.len(), 1000);
}

#[test]
fn closures_are_not_portable_and_metrics_count_runs() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let _node = Node::start(&broker, "inline");
    let executor = caller(&broker, "30s");
    let err = executor.run_closure(|| 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotPortable);
    let ran = within("the jobs", {
        let executor = executor.clone();
        move || {
            thread::scope(|s| {
                s.spawn(|| {
                    (0..5)
                        .map(|i| executor.run(tasks::tiny, i).unwrap())
                        .sum::<u64>()
                })
                .join()
                .unwrap()
            })
        }
    });
    assert_eq!(ran, 15);
    let metrics = executor.metrics();
    assert!(
        metrics.strategy.starts_with("nats://127.0.0.1:"),
        "{metrics}"
    );
    assert_eq!(metrics.task("::tiny").unwrap().offloaded, 5, "{metrics}");
}

#[test]
fn no_broker_is_a_start_error_naming_the_url() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = ythread_executors::NatsConfig::new("127.0.0.1", port);
    let err = within("the connection attempt", move || {
        ythread_executors::NatsExecutor::connect(config, tasks::registry()).unwrap_err()
    });
    assert!(err.is_start(), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("nats://127.0.0.1:{port}")), "{text}");
    assert!(text.contains("nats-server -a 127.0.0.1 -p"), "{text}");
}
