//! The bars the library's learned scheduling must meet, checked against this run's numbers:
//! responsiveness of the default pools under heavy load, heavy throughput no worse than
//! fifo form, and mixed-load slowdown well below the fifo form's.

use std::fmt::Write as _;
use std::time::Duration;

use ythread_executors::ExecutorConfig;

use crate::mixed_report;
use crate::plan::{HEAVY_CLIENTS, Strategy};
use crate::report::{Results, code, duration, percent};
use crate::responsiveness::Measured;
use crate::responsiveness_report;

/// One bar: what it asks, of which strategy, what was measured, and whether it was met
/// (`None` when it could not be measured).
struct Bar {
    asks: String,
    strategy: String,
    measured: String,
    met: Option<bool>,
}

/// The responsiveness bar of a default strategy: its share of the idle tiny rate kept and
/// its loaded p99, or `None` for strategies without one.
fn responsiveness_bar(strategy: &Strategy) -> Option<(f64, Duration)> {
    match strategy.config {
        ExecutorConfig::Rayon { .. } => Some((0.80, Duration::from_millis(1))),
        ExecutorConfig::Subprocess(_) => Some((0.50, Duration::from_millis(2))),
        _ => None,
    }
}

/// Heavy throughput under the responsiveness load, as a share of the fifo form's.
const HEAVY_KEPT: f64 = 0.90;

/// Learned mean slowdown over the fifo form's, at most.
const MEAN_SLOWDOWN_RATIO: f64 = 1.0 / 3.0;

fn bars(results: &Results) -> Vec<Bar> {
    let mut bars = Vec::new();
    let listed = results.strategies.iter().filter(|s| s.fifo_of.is_none());
    for strategy in listed {
        let label = &strategy.label;
        let measured = responsiveness_report::measured(results, label);
        if let Some((kept_at_least, p99_at_most)) = responsiveness_bar(strategy) {
            let (text, met) = match measured.and_then(|m| Some((m.kept_fraction()?, &m.loaded))) {
                Some((kept, loaded)) => (
                    format!("kept {}, p99 {}", percent(kept), duration(loaded.p99)),
                    Some(kept >= kept_at_least && loaded.ok > 0 && loaded.p99 <= p99_at_most),
                ),
                None => ("not measured".to_owned(), None),
            };
            bars.push(Bar {
                asks: format!(
                    "tiny requests among {HEAVY_CLIENTS} heavy clients keep ≥ {} of the idle \
                     rate, loaded p99 ≤ {}",
                    percent(kept_at_least),
                    duration(p99_at_most)
                ),
                strategy: label.clone(),
                measured: text,
                met,
            });
        }
        let Some(fifo) = results.fifo_form_of(label) else {
            continue;
        };
        let theirs = responsiveness_report::measured(results, &fifo.label);
        let ratio = |rate: fn(&Measured) -> f64| {
            measured
                .zip(theirs)
                .filter(|(_, theirs)| rate(theirs) > 0.0)
                .map(|(ours, theirs)| rate(ours) / rate(theirs))
        };
        for (asks, heavy) in [
            (
                "heavy throughput alone (no tiny client) ≥ {} of the fifo form's",
                ratio(|m| m.heavy_alone.requests_per_sec),
            ),
            (
                "heavy throughput in the same runs (tiny client answered) ≥ {} of the fifo form's",
                ratio(|m| m.heavy.requests_per_sec),
            ),
        ] {
            bars.push(Bar {
                asks: asks.replace("{}", &percent(HEAVY_KEPT)),
                strategy: label.clone(),
                // One decimal: a bar at 90% must not read "90%" when it was missed by a hair.
                measured: heavy.map_or("not measured".to_owned(), |h| format!("{:.1}%", h * 100.0)),
                met: heavy.map(|h| h >= HEAVY_KEPT),
            });
        }
        let slowdown = mixed_report::ratios_to_fifo(results, label);
        bars.push(Bar {
            asks: "mixed load: mean slowdown ≤ 1/3 of the fifo form's, p99 slowdown lower"
                .to_owned(),
            strategy: label.clone(),
            measured: slowdown.map_or("not measured".to_owned(), |(mean, p99)| {
                format!("mean {mean:.2}x, p99 {p99:.2}x the fifo form's")
            }),
            met: slowdown.map(|(mean, p99)| mean <= MEAN_SLOWDOWN_RATIO && p99 < 1.0),
        });
    }
    bars
}

pub(crate) fn section(out: &mut String, results: &Results) {
    let bars = bars(results);
    if bars.is_empty() {
        return;
    }
    out.push_str(
        "## The bars learned scheduling must meet\n\n\
         Checked against the numbers above (sections 2 and 3), so they hold only as well as \
         this run's measurements: on a shared machine, rerun before drawing conclusions.\n\n\
         | bar | strategy | measured | met |\n|---|---|---|---|\n",
    );
    for bar in &bars {
        let met = match bar.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {met} |",
            bar.asks,
            code(&bar.strategy),
            bar.measured
        );
    }
    out.push('\n');
}
