//! A hostile publisher on a node's subjects (issue 18, rows 8 and 9): well-formed jobs of
//! unbounded cost, bodies that name another task than their subject, and a seeded stream of
//! mutated and random bodies. Each gets a clear error or runs within its bound, the node
//! keeps serving, and no honest job gets another job's result.

mod nats_support;
mod subprocess_support;

use std::time::{Duration, Instant};

use nats_support::raw::{Answer, Failure, Raw, job_body};
use nats_support::seeded::Seeded;
use nats_support::{Broker, Node, caller, eventually, nats_caller, within};
use ythread::Task;
use ythread_suite::tasks;

#[test]
fn row_8_unbounded_work_predicted_cheap_leaves_an_inline_node_serving_and_sigterm_ends_it() {
    let Some(broker) = Broker::start() else {
        return;
    };
    // Its drain bound: the job deadline of its form.
    let mut node = Node::start_with_options(&broker, "inline", ",timeout=1s");
    let executor = caller(&broker, "30s");
    // The node learns that sumn at size 1 is cheap...
    for _ in 0..3 {
        assert_eq!(executor.run(tasks::sumn, 1).unwrap(), 1);
    }
    // ... and a publisher sends sumn(2^62), declaring it size 1: predicted cheap.
    let publisher = Raw::connect(&broker);
    let sumn = <tasks::sumn as Task>::NAME;
    publisher.send(
        &node.job_subject(sumn),
        job_body(sumn, &(1u64 << 62)),
        Some("1"),
        true,
    );
    let asking = nats_caller(&broker, "30s");
    let mut running = None;
    eventually("the node to report the job running", || {
        running = asking.nodes(Duration::from_millis(200)).unwrap().pop();
        running.as_ref().is_some_and(|status| status.in_flight == 1)
    });
    let capacity = running.unwrap().capacity;

    // It answers status questions (above), and while it has a free slot it runs jobs.
    if capacity > 1 {
        let pid = node.pid;
        let answers = within("jobs beside the runaway", move || {
            (0..10u64)
                .map(|x| (executor.run(tasks::tiny, x), executor.run(tasks::pid, ())))
                .collect::<Vec<_>>()
        });
        for (x, (tiny, ran_on)) in answers.into_iter().enumerate() {
            assert_eq!(tiny.unwrap(), x as u64 + 1);
            assert_eq!(ran_on.unwrap(), pid);
        }
    }

    node.signal(libc::SIGTERM);
    node.wait_abandoning(1);
}

#[test]
fn row_9_a_body_naming_another_task_than_its_subject_is_refused_and_the_node_serves_on() {
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut node = Node::start(&broker, "inline");
    let publisher = Raw::connect(&broker);
    let tiny = <tasks::tiny as Task>::NAME;
    let exit_with = <tasks::exit_with as Task>::NAME;
    let stop = job_body(exit_with, &3i32);
    let elsewhere = format!("{}.more", node.job_subject(tiny));
    for subject in [node.job_subject(tiny), node.own_subject(tiny), elsewhere] {
        let answers = publisher.ask(&subject, stop.clone(), None);
        let Some(Answer::Failed {
            kind: Failure::Codec,
            text: why,
        }) = answers.last()
        else {
            panic!("{subject}: {answers:?}");
        };
        assert!(
            why.contains("refused") && why.contains("does not name the task its body names"),
            "{why}"
        );
        assert!(
            matches!(answers.first(), Some(Answer::Taken(name)) if name.ends_with(node.pid.to_string().as_bytes())),
            "the refusal names the node: {answers:?}"
        );
        assert!(node.is_running(), "the body's task did not run");
    }
    // The subject's own task still runs, for the publisher and for a caller.
    let answers = publisher.ask(&node.job_subject(tiny), job_body(tiny, &41u64), None);
    let Some(Answer::Done { result, .. }) = answers.last() else {
        panic!("{answers:?}")
    };
    assert_eq!(postcard::from_bytes::<u64>(result).unwrap(), 42);
    let executor = caller(&broker, "30s");
    assert_eq!(executor.run(tasks::pid, ()).unwrap(), node.pid);
}

#[test]
fn mutated_and_random_bodies_each_get_an_answer_and_honest_jobs_get_their_own_results() {
    const SEED: u64 = 0x5eed_0018;
    const MESSAGES: usize = 240;
    // A cap on the loop, not a measure: the loop stops early rather than run long.
    const TIME_CAP: Duration = Duration::from_secs(40);
    let Some(broker) = Broker::start() else {
        return;
    };
    let mut node = Node::start(&broker, "inline");
    let publisher = Raw::connect(&broker);
    let executor = caller(&broker, "30s");
    // Tasks whose cost their input bounds, and one the node must never run from a body.
    let targets = [
        job_body(<tasks::tiny as Task>::NAME, &7u64),
        job_body(<tasks::echo_text as Task>::NAME, &"hello".to_owned()),
        job_body(
            <tasks::sum_bytes as Task>::NAME,
            &serde_bytes::ByteBuf::from(vec![1u8, 2, 3]),
        ),
        job_body(
            <tasks::reverse_blob as Task>::NAME,
            &tasks::Blob {
                name: "b".to_owned(),
                data: serde_bytes::ByteBuf::from(vec![9u8; 16]),
                plain: vec![1, 2, 3],
            },
        ),
        job_body(<tasks::pid as Task>::NAME, &()),
    ];
    let names = [
        <tasks::tiny as Task>::NAME,
        <tasks::echo_text as Task>::NAME,
        <tasks::sum_bytes as Task>::NAME,
        <tasks::reverse_blob as Task>::NAME,
        <tasks::pid as Task>::NAME,
    ];
    let stop = job_body(<tasks::exit_with as Task>::NAME, &7i32);
    let sizes = [
        None,
        Some("0"),
        Some("1"),
        Some("-1"),
        Some("abc"),
        Some("99999999999999999999999"),
    ];
    let mut random = Seeded(SEED);
    let began = Instant::now();
    let mut answered = 0;
    for i in 0..MESSAGES {
        if began.elapsed() > TIME_CAP {
            break;
        }
        let target = random.below(targets.len());
        let mut body = targets[target].clone();
        match random.below(6) {
            0 => {
                let bit = random.below(body.len() * 8);
                body[bit / 8] ^= 1 << (bit % 8);
            }
            1 => body.truncate(random.below(body.len())),
            2 => {
                let extra = random.below(64);
                body.extend(random.bytes(extra));
            }
            3 => body = stop.clone(),
            4 => {
                let len = random.below(200);
                body = random.bytes(len);
            }
            _ => {
                let at = random.below(body.len());
                body[at] = random.next() as u8;
            }
        }
        let subject = node.job_subject(names[target]);
        let size = sizes[random.below(sizes.len())];
        if random.below(8) == 0 {
            publisher.send(&subject, body, size, false);
        } else {
            let answers = publisher.ask(&subject, body, size);
            match answers.last() {
                Some(Answer::Done { .. }) | Some(Answer::Failed { .. }) => answered += 1,
                other => panic!("message {i} (seed {SEED:#x}): {other:?} in {answers:?}"),
            }
        }
        if i % 8 == 0 {
            let x = i as u64;
            let text = format!("honest job {i}");
            assert_eq!(executor.run(tasks::tiny, x).unwrap(), x + 1, "message {i}");
            assert_eq!(executor.run(tasks::echo_text, text.clone()).unwrap(), text);
        }
        assert!(
            node.is_running(),
            "message {i} (seed {SEED:#x}) stopped the node"
        );
    }
    assert!(answered > 0, "some messages were asked");
    let asking = nats_caller(&broker, "30s");
    eventually("the node to answer status questions still", || {
        asking.nodes(Duration::from_millis(200)).unwrap().len() == 1
    });
}
