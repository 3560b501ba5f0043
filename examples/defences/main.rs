//! The sum server under attack: replays the defects an outside tester found and measures what
//! the server does now, with the bar each figure answers to.
//!
//! Each scenario starts the server in a child process (this program with `--serve`) and
//! attacks it over loopback, bounded in count and time. Figures are measured, never asserted:
//! the tests check behaviour, this program checks speed.
//!
//! ```text
//! cargo run --release --example defences            # the full replay (about a minute)
//! cargo run --release --example defences -- --quick # smaller counts (a few seconds)
//! cargo run --release --example defences -- --only accept   # one scenario: trickle, flood,
//!                                                           # abandon, lag, accept, backlog
//! ```

mod abandon;
mod accept_cost;
mod backlog;
mod child;
mod flood;
mod lag;
mod trickle;

use std::process::ExitCode;
use std::time::Duration;

/// Counts for one run: the full replay or a quick look.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scale {
    pub(crate) flood_attempts: usize,
    pub(crate) flood_cap: usize,
    pub(crate) flood_time: Duration,
    pub(crate) live_low: usize,
    pub(crate) live_high: usize,
    pub(crate) cost_connections: usize,
    pub(crate) lag_samples: usize,
}

const FULL: Scale = Scale {
    flood_attempts: 20_000,
    flood_cap: 2_000,
    flood_time: Duration::from_secs(8),
    live_low: 1_000,
    live_high: 8_000,
    cost_connections: 5_000,
    lag_samples: 400,
};

const QUICK: Scale = Scale {
    flood_attempts: 4_000,
    flood_cap: 400,
    flood_time: Duration::from_secs(3),
    live_low: 250,
    live_high: 2_000,
    cost_connections: 1_000,
    lag_samples: 100,
};

fn main() -> ExitCode {
    ythread_executors::init(ythread_suite::tasks::registry());
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return child::serve(&args[1..]);
    }
    let mut scale = FULL;
    let mut only = None;
    let mut rest = args.iter().map(String::as_str);
    while let Some(arg) = rest.next() {
        match arg {
            "--quick" => scale = QUICK,
            "--only" => only = rest.next(),
            other => fail(&format!(
                "unknown argument `{other}`; use --quick and --only SCENARIO"
            )),
        }
    }
    type Scenario = fn(Scale) -> Vec<Bar>;
    let scenarios: [(&str, Scenario); 6] = [
        ("trickle", |_| trickle::run()),
        ("flood", flood::run),
        ("abandon", |_| abandon::run()),
        ("lag", lag::run),
        ("accept", accept_cost::run),
        ("backlog", backlog::run),
    ];
    if let Some(name) = only
        && !scenarios.iter().any(|(known, _)| *known == name)
    {
        fail(&format!(
            "no scenario `{name}`; one of trickle, flood, abandon, lag, accept, backlog"
        ));
    }
    println!("# The sum server under attack\n");
    let bars: Vec<Vec<Bar>> = scenarios
        .iter()
        .filter(|(name, _)| only.is_none_or(|only| only == *name))
        .map(|(_, run)| run(scale))
        .collect();
    println!("## Bars\n");
    println!("| bar | measured | met |");
    println!("|---|---|---|");
    for bar in bars.iter().flatten() {
        println!(
            "| {} | {} | {} |",
            bar.what,
            bar.measured,
            if bar.met { "yes" } else { "**no**" }
        );
    }
    ExitCode::SUCCESS
}

/// One bar of the issue and what this run measured against it.
pub(crate) struct Bar {
    pub(crate) what: &'static str,
    pub(crate) measured: String,
    pub(crate) met: bool,
}

/// A duration as milliseconds with one decimal.
pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

/// The `p`-th percentile (0..=100) of `samples`, which it sorts.
pub(crate) fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

pub(crate) fn fail(why: &str) -> ! {
    eprintln!("defences: {why}");
    std::process::exit(2);
}
