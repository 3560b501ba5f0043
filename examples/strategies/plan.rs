//! What to measure and how much: the strategies, the counts, and the calibrated work size.

use std::time::{Duration, Instant};

use ythread_executors::ExecutorConfig;
use ythread_suite::tasks::sumn;

/// The client counts of the throughput table: the article's 1, 2, 4, 8, then oversubscribed.
pub(crate) const CLIENT_COUNTS: [usize; 5] = [1, 2, 4, 8, 32];

/// The clients that send heavy requests in the responsiveness section.
pub(crate) const HEAVY_CLIENTS: usize = 8;

/// How many milliseconds of work one heavy request costs.
pub(crate) const HEAVY_MS: u64 = 20;

/// Progress steps of the responsiveness section per strategy: alone, then loaded.
pub(crate) const RESPONSIVENESS_STEPS: u64 = 2;

/// Timed runs of the calibration.
pub(crate) const CALIBRATION_RUNS: usize = 15;

/// One strategy to compare, as configured.
#[derive(Clone, Debug)]
pub(crate) struct Strategy {
    /// The configuration string, as `ExecutorConfig` writes it.
    pub(crate) label: String,
    pub(crate) config: ExecutorConfig,
}

/// Whether yielded work can wait in a queue behind other work (a lock, a pool, a worker), so
/// that computing tiny requests directly can change the picture. Only inline cannot.
pub(crate) fn queues_work(strategy: &Strategy) -> bool {
    !matches!(strategy.config, ExecutorConfig::Inline)
}

/// One strategy's row in a section of the report: what was measured, or why it could not be.
#[derive(Clone, Debug)]
pub(crate) struct Row<T> {
    pub(crate) strategy: String,
    pub(crate) result: Result<T, String>,
}

impl<T> Row<T> {
    pub(crate) fn new(strategy: &Strategy, result: Result<T, String>) -> Self {
        Row {
            strategy: strategy.label.clone(),
            result,
        }
    }

    /// A strategy that could not be measured, and why.
    pub(crate) fn failed(strategy: &Strategy, reason: &str) -> Self {
        Self::new(strategy, Err(reason.to_owned()))
    }
}

/// The sizes of one run.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) quick: bool,
    /// Requests per throughput measurement.
    pub(crate) requests: usize,
    /// Throughput measurements per point; the median is reported.
    pub(crate) rounds: usize,
    /// The `n` for which `sumn(n)` takes about 1 ms on this machine, in this build.
    pub(crate) n_1ms: u64,
    /// What one `sumn(n_1ms)` took, the fastest of [`CALIBRATION_RUNS`].
    pub(crate) measured_1ms: Duration,
    /// How long tiny requests are sent, with and without the heavy load.
    pub(crate) window: Duration,
    /// How long the overhead loop runs per strategy.
    pub(crate) overhead_budget: Duration,
    /// Requests sent to the crash-isolation server after the crash.
    pub(crate) crash_followups: usize,
}

impl Plan {
    /// Calibrates the work size, then sizes everything for a full or a quick run.
    pub(crate) fn new(quick: bool, requests: Option<usize>) -> Plan {
        let (n_1ms, measured_1ms) = calibrate_1ms();
        Plan {
            quick,
            requests: requests.unwrap_or(if quick { 120 } else { 1000 }),
            rounds: if quick { 1 } else { 3 },
            n_1ms,
            measured_1ms,
            window: Duration::from_millis(if quick { 500 } else { 3000 }),
            overhead_budget: Duration::from_millis(if quick { 50 } else { 500 }),
            crash_followups: 3,
        }
    }

    /// Every progress step of a run of `strategies`.
    pub(crate) fn step_count(&self, strategies: &[Strategy]) -> u64 {
        let per_strategy = RESPONSIVENESS_STEPS + 1 + 1; // responsiveness, overhead, crash
        let second_responsiveness = strategies.iter().filter(|s| queues_work(s)).count() as u64;
        crate::article::steps(strategies.len(), self)
            + strategies.len() as u64 * per_strategy
            + second_responsiveness * RESPONSIVENESS_STEPS
    }

    /// The `n` of one heavy request.
    pub(crate) fn heavy_n(&self) -> u64 {
        self.n_1ms * HEAVY_MS
    }
}

/// Finds `n` such that `sumn(n)` takes about 1 ms here: time a probe several times, take the
/// fastest run (the others were slowed by whatever else shares the machine), and scale
/// linearly (sumn is linear in `n`).
fn calibrate_1ms() -> (u64, Duration) {
    const TARGET: Duration = Duration::from_millis(1);
    let time = |n: u64| {
        let start = Instant::now();
        std::hint::black_box(sumn.call(std::hint::black_box(n)));
        start.elapsed()
    };
    // Wake the core up to its working frequency before timing.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(100) {
        time(100_000);
    }
    let fastest_of = |n: u64| {
        (0..CALIBRATION_RUNS)
            .map(|_| time(n))
            .min()
            .unwrap_or_default()
    };
    let probe = 1_000_000;
    let took = fastest_of(probe).max(Duration::from_nanos(1));
    let scaled = (probe as f64 * TARGET.as_secs_f64() / took.as_secs_f64()) as u64;
    // Round to three significant digits so the report reads cleanly.
    let n = round_significant(scaled.max(1_000), 3);
    (n, fastest_of(n))
}

fn round_significant(n: u64, digits: u32) -> u64 {
    let magnitude = n.ilog10() + 1;
    if magnitude <= digits {
        return n;
    }
    let unit = 10u64.pow(magnitude - digits);
    (n + unit / 2) / unit * unit
}

/// The default list: every strategy, rayon also at lower priority.
pub(crate) fn parse_strategies(list: &str) -> Result<Vec<Strategy>, String> {
    let mut items: Vec<String> = Vec::new();
    for token in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match items.last_mut() {
            // An option belongs to the strategy before it: `rayon,nice=10`.
            Some(last) if token.contains('=') => {
                last.push(',');
                last.push_str(token);
            }
            None if token.contains('=') => {
                return Err(format!(
                    "--strategies starts with the option `{token}`; put a strategy before it"
                ));
            }
            _ => items.push(token.to_owned()),
        }
    }
    if items.is_empty() {
        return Err("--strategies is empty; name at least one, e.g. inline,rayon".to_owned());
    }
    let mut strategies: Vec<Strategy> = Vec::new();
    for item in items {
        let config: ExecutorConfig = item.parse().map_err(|e| format!("--strategies: {e}"))?;
        let label = config.to_string();
        if strategies.iter().any(|s| s.label == label) {
            return Err(format!("--strategies names `{label}` twice; name it once"));
        }
        strategies.push(Strategy { label, config });
    }
    Ok(strategies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_attach_to_the_strategy_before_them() {
        let parsed = parse_strategies("inline,rayon,nice=10,subprocess:2").unwrap();
        let labels: Vec<&str> = parsed.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["inline", "rayon,nice=10", "subprocess:2"]);
        assert!(parse_strategies("nice=10,rayon").is_err());
        assert!(parse_strategies("inline,inline").is_err());
        assert!(parse_strategies("warp").is_err());
    }

    #[test]
    fn rounding_keeps_three_digits() {
        assert_eq!(round_significant(1_234_567, 3), 1_230_000);
        assert_eq!(round_significant(987, 3), 987);
        assert_eq!(round_significant(99_960, 3), 100_000);
    }
}
