//! A caller trusts nothing a node sends: a fake node (anyone who can subscribe on the job
//! subjects can be one) answers with hostile text, an absurd run time, garbage and
//! duplicate replies. The caller's errors stay bounded and free of control characters, its
//! cost model is not poisoned, and no job gets another job's result.

mod nats_support;
mod subprocess_support;

use std::time::{Duration, Instant};

use nats_support::raw::{Failure, Raw, base_of, done_body, failed_body};
use nats_support::seeded::Seeded;
use nats_support::{Broker, nats_caller, within};
use ythread::{Executor, Task};
use ythread_suite::tasks;

/// A caller, and a fake node that answers each job body with what `answer` returns.
/// `None` (the test skips) where no nats-server is installed and none is required.
fn caller_and_fake_node(
    answer: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
) -> Option<(Broker, Raw, Executor)> {
    let broker = Broker::start()?;
    let caller = nats_caller(&broker, "20s");
    let base = base_of(&caller.job_subject(<tasks::tiny as Task>::NAME)).to_owned();
    let fake = Raw::connect(&broker);
    fake.fake_node(&format!("{base}.task.>"), &format!("{base}.nodes"), answer);
    Some((broker, fake, Executor::new(caller)))
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
        (failed_body(Failure::Other, &forged), true, true),
        (failed_body(Failure::Codec, &forged), false, true),
        (
            failed_body(
                Failure::Panicked,
                &(&forged, Some(format!("src/x.rs:1\n{forged}"))),
            ),
            true,
            true,
        ),
        (vec![0x07, b'\n', 0x1b], true, false),
    ];
    for (reply, names_the_node, quotes) in replies {
        let taken = [vec![0x10], name.clone()].concat();
        let Some((_broker, _fake, executor)) =
            caller_and_fake_node(move |_| vec![taken.clone(), reply.clone()])
        else {
            return;
        };
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
    let Some((_broker, _fake, executor)) =
        caller_and_fake_node(|_| vec![done_body(Duration::from_secs(1_000_000), &"y")])
    else {
        return;
    };
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
    let Some((_broker, _fake, executor)) = caller_and_fake_node(|job| {
        let x: u64 = postcard::from_bytes(&job[job.len() - 1..]).unwrap_or(0);
        vec![
            done_body(Duration::from_micros(1), &(x + 1)),
            done_body(Duration::from_micros(1), &(x + 1000)),
            vec![0xff; 3],
        ]
    }) else {
        return;
    };
    let results = within("jobs on the fake node", move || {
        (0..50u64)
            .map(|x| executor.run(tasks::tiny, x))
            .collect::<Vec<_>>()
    });
    for (x, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap(), x as u64 + 1, "job {x}");
    }
}

/// What the fake node last sent for a job: whether its final reply was the right result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Right,
    Other,
}

#[test]
fn random_and_mutated_replies_end_each_job_with_its_own_result_or_a_clean_error() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    const SEED: u64 = 0x5eed_0006;
    const JOBS: u64 = 120;
    // A cap on the loop, not a measure: the loop stops early rather than run long.
    const TIME_CAP: Duration = Duration::from_secs(30);
    let sent: Arc<Mutex<HashMap<u64, Sent>>> = Arc::default();
    let log = Arc::clone(&sent);
    let random = Mutex::new(Seeded(SEED));
    let Some((_broker, _fake, executor)) = caller_and_fake_node(move |job| {
        let x: u64 = postcard::from_bytes(&job[job.len() - 1..]).unwrap_or(u64::MAX);
        let mut random = random.lock().unwrap();
        let mut answers = Vec::new();
        if random.below(10) == 0 {
            // Turned away: the caller sends the job again, and this runs again.
            return vec![[vec![0x11], random.bytes(12)].concat()];
        }
        for _ in 0..random.below(3) {
            let len = random.below(40);
            answers.push([vec![0x10], random.bytes(len)].concat());
        }
        let right = done_body(Duration::from_nanos(random.next()), &(x + 1));
        let (last, kind) = match random.below(8) {
            0 | 1 => (right, Sent::Right),
            2 => {
                // Any bit but the tag's: a tag flipped to "taken" would leave the job waiting
                // for its deadline, which the kill tests cover.
                let mut flipped = right;
                let bit = 8 + random.below((flipped.len() - 1) * 8);
                flipped[bit / 8] ^= 1 << (bit % 8);
                (flipped, Sent::Other)
            }
            3 => {
                let len = random.below(right.len());
                (right[..len].to_vec(), Sent::Other)
            }
            4 => {
                let len = random.below(300);
                let text = random.text(len);
                (failed_body(Failure::Other, &text), Sent::Other)
            }
            5 => {
                let (message, location) = (random.text(50), random.text(20));
                (
                    failed_body(Failure::Panicked, &(message, Some(location))),
                    Sent::Other,
                )
            }
            6 => {
                // A result in shared memory (with or without bytes sent apart): no node can.
                let mut shared = right;
                shared[0] = [0x02, 0x12][random.below(2)];
                (shared, Sent::Other)
            }
            _ => {
                let len = random.below(64);
                let mut garbage = random.bytes(len);
                if let Some(tag @ (0x10 | 0x11)) = garbage.first_mut() {
                    *tag = 0x7f;
                }
                (garbage, Sent::Other)
            }
        };
        log.lock().unwrap().insert(x, kind);
        answers.push(last);
        answers
    }) else {
        return;
    };
    let outcomes = within("jobs on the fake node", move || {
        let began = Instant::now();
        let mut outcomes = Vec::new();
        for x in 0..JOBS {
            if began.elapsed() > TIME_CAP {
                break;
            }
            let asked = Instant::now();
            let outcome = executor.run(tasks::tiny, x);
            outcomes.push((x, outcome, asked.elapsed()));
        }
        outcomes
    });
    let sent = sent.lock().unwrap();
    let mut right = 0;
    for (x, outcome, _) in &outcomes {
        match (sent.get(x), outcome) {
            (Some(Sent::Right), Ok(value)) => {
                assert_eq!(*value, x + 1, "job {x} (seed {SEED:#x})");
                right += 1;
            }
            (Some(Sent::Right), Err(e)) => panic!("job {x} (seed {SEED:#x}): {e}"),
            (_, Err(e)) => assert!(is_clean(&e.to_string()), "job {x}: {e:?}"),
            // A mutated reply may still decode, to a value the node chose for this job.
            (_, Ok(_)) => {}
        }
    }
    assert!(right > 0, "some jobs got the right reply");
    let longest = outcomes.iter().map(|(_, _, took)| *took).max().unwrap();
    for learned in <tasks::tiny as Task>::cost_model().learned() {
        assert!(
            learned.cost <= longest,
            "{learned:?} after round trips of at most {longest:?}"
        );
    }
}
