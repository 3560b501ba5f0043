//! A caller trusts nothing a node sends: a fake node (anyone who can subscribe on the job
//! subjects can be one) answers with hostile text, an absurd run time, garbage and
//! duplicate replies. The caller's errors stay bounded and free of control characters, its
//! cost model is not poisoned, and no job gets another job's result.

mod nats_support;
mod subprocess_support;

use std::time::{Duration, Instant};

use nats_support::raw::{Raw, WireError, base_of, done_body, failed_body};
use nats_support::{Broker, nats_caller, within};
use ythread::{Executor, Task};
use ythread_suite::tasks;

/// A caller, and a fake node that answers each job body with what `answer` returns.
fn caller_and_fake_node(
    answer: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
) -> (Broker, Raw, Executor) {
    let broker = Broker::start();
    let caller = nats_caller(&broker, "20s");
    let base = base_of(&caller.job_subject(<tasks::tiny as Task>::NAME)).to_owned();
    let fake = Raw::connect(&broker);
    fake.fake_node(&format!("{base}.task.>"), &format!("{base}.nodes"), answer);
    (broker, fake, Executor::new(caller))
}

/// Whether `text` is free of control characters and no longer than a few kilobytes.
fn is_clean(text: &str) -> bool {
    !text.chars().any(char::is_control) && text.len() < 8 << 10
}

#[test]
fn a_nodes_text_reaches_the_caller_bounded_and_without_control_characters() {
    let name = format!("evil\n\u{1b}[2J{}", "n".repeat(5000)).into_bytes();
    let forged = format!(
        "line one\r\nFORGED REPLY\n\u{1b}]0;owned\u{7}{}",
        "y".repeat(100_000)
    );
    // Each reply, whether the error names the node, and whether it quotes the node's text.
    let replies = [
        (failed_body(&WireError::Other(forged.clone())), true, true),
        (failed_body(&WireError::Codec(forged.clone())), false, true),
        (
            failed_body(&WireError::Panicked {
                message: forged.clone(),
                location: Some(format!("src/x.rs:1\n{forged}")),
            }),
            true,
            true,
        ),
        (vec![0x07, b'\n', 0x1b], true, false),
    ];
    for (reply, names_the_node, quotes) in replies {
        let taken = [vec![0x10], name.clone()].concat();
        let (_broker, _fake, executor) =
            caller_and_fake_node(move |_| vec![taken.clone(), reply.clone()]);
        let error = within("a job on the fake node", move || {
            executor.run(tasks::tiny, 1).unwrap_err()
        });
        let text = error.to_string();
        assert!(is_clean(&text), "{} bytes: {text:?}", text.len());
        assert_eq!(text.contains("evil\\n\\u{1b}[2J"), names_the_node, "{text}");
        assert_eq!(
            text.contains("line one\\r\\nFORGED REPLY"),
            quotes,
            "{text}"
        );
        for part in [error.message(), error.location()].into_iter().flatten() {
            assert!(is_clean(part), "{part:?}");
        }
    }
}

#[test]
fn a_nodes_run_time_cannot_make_work_look_dearer_than_its_round_trip() {
    let (_broker, _fake, executor) =
        caller_and_fake_node(|_| vec![done_body(Duration::from_secs(1_000_000), &"y")]);
    let began = Instant::now();
    let result = within("a job on the fake node", move || {
        executor.run(tasks::echo_text, "x".to_owned())
    });
    let round_trip = began.elapsed();
    assert_eq!(result.unwrap(), "y");
    let learned = <tasks::echo_text as Task>::cost_model().learned();
    assert_eq!(learned.len(), 1, "{learned:?}");
    assert_eq!(learned[0].runs, 1);
    assert!(
        learned[0].cost <= round_trip,
        "learned {:?} from a node claiming 1,000,000 s, in a round trip of {round_trip:?}",
        learned[0].cost
    );
}

#[test]
fn duplicate_and_stray_replies_never_reach_a_later_job() {
    // Each job of `tiny(x)` is answered x + 1, then again with a wrong value, then with
    // garbage: the later job on the same thread must see only its own first answer.
    let (_broker, _fake, executor) = caller_and_fake_node(|job| {
        let x: u64 = postcard::from_bytes(&job[job.len() - 1..]).unwrap_or(0);
        vec![
            done_body(Duration::from_micros(1), &(x + 1)),
            done_body(Duration::from_micros(1), &(x + 1000)),
            vec![0xff; 3],
        ]
    });
    let results = within("jobs on the fake node", move || {
        (0..50u64)
            .map(|x| executor.run(tasks::tiny, x))
            .collect::<Vec<_>>()
    });
    for (x, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap(), x as u64 + 1, "job {x}");
    }
}
