//! The payloads section: a round trip of 1 MiB and 16 MiB (the same bytes as argument and as
//! result, the `echo_bytes` task) through each listed strategy, against the floor: the same
//! message echoed by a second process over a Unix socket pair, in the same run.
//!
//! Each figure is the median of a few round trips, strategy and floor alternating, so both see
//! the same machine. In-process strategies move no bytes (the argument is moved, not copied),
//! so they sit far under the floor; the subprocess pool is the row to read: its byte strings
//! of 256 KiB and more are copied straight into and out of the worker (the rest of a payload
//! above 64 KiB travels through shared memory). It runs as configured, so with the default
//! express lane its regular workers, which take work of unknown cost such as this, are in the
//! idle scheduling class: on a machine busy with other processes they wait for it (see
//! `docs/subprocess.md`; `benches/subprocess.rs` measures the transfer alone).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use ythread::Executor;
use ythread_suite::echo_floor::EchoFloor;
use ythread_suite::tasks::echo_bytes;

use crate::Lineup;
use crate::plan::{Plan, Row, Strategy};
use crate::progress::Progress;
use crate::report::{Notes, code};

/// The payload sizes measured.
pub(crate) const SIZES: [(usize, &str); 2] = [(1 << 20, "1 MiB"), (16 << 20, "16 MiB")];

/// One strategy's median round trips, one per size, with the floor's of the same rounds.
#[derive(Clone, Debug)]
pub(crate) struct Trips {
    pub(crate) ours: Vec<Duration>,
    pub(crate) floor: Vec<Duration>,
}

#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub(crate) rounds: usize,
    pub(crate) rows: Vec<Row<Trips>>,
}

/// Measures every listed strategy of `lineup` but `nats` (the fifo forms are skipped: the
/// same bytes either way).
pub(crate) fn measure(lineup: &Lineup, plan: &Plan, progress: &Progress) -> Section {
    let rounds = if plan.quick { 3 } else { 9 };
    let rows = measured(lineup)
        .map(|(strategy, executor)| {
            progress.step(&format!("payloads: {}", strategy.label));
            let result = match executor {
                Ok(executor) => trips(executor, rounds),
                Err(reason) => Err(reason.clone()),
            };
            progress.done();
            Row::new(strategy, result)
        })
        .collect();
    Section { rounds, rows }
}

/// Whether the section measures `strategy`: a listed one, but not `nats`, whose broker takes
/// messages of at most 1 MiB by default and refuses bigger ones by design (see
/// `docs/nats.md`).
fn is_measured(strategy: &Strategy) -> bool {
    strategy.fifo_of.is_none() && !strategy.config.to_string().starts_with("nats://")
}

fn measured(lineup: &Lineup) -> impl Iterator<Item = &(Strategy, Result<Executor, String>)> {
    lineup.iter().filter(|(strategy, _)| is_measured(strategy))
}

/// Progress steps of the section.
pub(crate) fn steps(strategies: &[Strategy]) -> u64 {
    strategies.iter().filter(|s| is_measured(s)).count() as u64
}

fn trips(executor: &Executor, rounds: usize) -> Result<Trips, String> {
    let mut floor =
        EchoFloor::start().map_err(|e| format!("could not start the echo peer: {e}"))?;
    let mut trips = Trips {
        ours: Vec::new(),
        floor: Vec::new(),
    };
    for (size, _) in SIZES {
        let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        // One of each first: starts what is lazy, sizes what grows on demand.
        one_trip(executor, &message)?;
        floor_trip(&mut floor, &message)?;
        let (mut ours, mut floors) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            ours.push(one_trip(executor, &message)?);
            floors.push(floor_trip(&mut floor, &message)?);
        }
        trips.ours.push(median(&mut ours));
        trips.floor.push(median(&mut floors));
    }
    Ok(trips)
}

/// One round trip of `message` through the strategy, timed from the argument in hand to the
/// result in hand.
fn one_trip(executor: &Executor, message: &[u8]) -> Result<Duration, String> {
    let argument = ByteBuf::from(message.to_vec());
    let started = Instant::now();
    let echoed = executor
        .run(echo_bytes, argument)
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if echoed.len() != message.len() {
        return Err(format!(
            "the echo came back with {} bytes, not {}",
            echoed.len(),
            message.len()
        ));
    }
    Ok(took)
}

fn floor_trip(floor: &mut EchoFloor, message: &[u8]) -> Result<Duration, String> {
    let started = Instant::now();
    floor
        .round_trip(message)
        .map_err(|e| format!("floor: {e}"))?;
    Ok(started.elapsed())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

pub(crate) fn table(out: &mut String, section: &Section, notes: &mut Notes) {
    let _ = writeln!(
        out,
        "## Payloads: big arguments and results\n\nA round trip of the same bytes as argument \
         and as result (`echo_bytes`), against the floor: a second process echoing them over a \
         Unix socket pair. Medians of {} alternating rounds; a ratio under 1 is faster than \
         the floor. In-process strategies move the argument without copying it; the subprocess \
         pool copies byte strings of 256 KiB and more straight into and out of its worker, \
         one copy each way. A `nats` row would fail: the \
         broker refuses messages over its `max_payload` (1 MiB by default) by design.\n",
        section.rounds
    );
    let mut header = String::from("| strategy |");
    let mut rule = String::from("|---|");
    for (_, name) in SIZES {
        let _ = write!(header, " {name} | floor | ratio |");
        rule.push_str("--:|--:|--:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for row in &section.rows {
        match &row.result {
            Ok(trips) => {
                let mut line = format!("| {} |", code(&row.strategy));
                for (ours, floor) in trips.ours.iter().zip(&trips.floor) {
                    let _ = write!(
                        line,
                        " {} | {} | {:.2}x |",
                        millis(*ours),
                        millis(*floor),
                        ours.as_secs_f64() / floor.as_secs_f64().max(1e-12)
                    );
                }
                let _ = writeln!(out, "{line}");
            }
            Err(reason) => {
                let cell = notes.cell(reason);
                let _ = writeln!(
                    out,
                    "| {} | {cell} |{}",
                    code(&row.strategy),
                    " |".repeat(5)
                );
            }
        }
    }
    out.push('\n');
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}
