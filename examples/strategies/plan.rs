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
pub(crate) const RESPONSIVENESS_STEPS: u64 = 3;

/// Timed runs of the calibration.
pub(crate) const CALIBRATION_RUNS: usize = 15;

/// The strategies compared unless `--strategies` says otherwise: every one, with the pools
/// sized to this project's 2-core machine (rayon's default already runs its regular threads
/// at nice 10, beside an express thread).
pub(crate) const DEFAULT_STRATEGIES: &str = "inline,exclusive,rayon:2,subprocess:2";

/// One strategy to compare, as configured.
#[derive(Clone, Debug)]
pub(crate) struct Strategy {
    /// The configuration string, as `ExecutorConfig` writes it.
    pub(crate) label: String,
    pub(crate) config: ExecutorConfig,
    /// For a strategy added as another's fifo form (first come, first served,
    /// nothing run inline), that other strategy's label.
    pub(crate) fifo_of: Option<String>,
}

/// The options that turn a strategy's learned, size-aware scheduling off, giving the
/// library's behaviour before it learned: first come, first served, nothing run inline, no
/// express worker. `None` for inline (it schedules nothing) or when the library does not
/// know these options (the form would not parse), or the strategy already is that form.
pub(crate) fn fifo_form(strategy: &Strategy) -> Option<Strategy> {
    let options = match strategy.config {
        ExecutorConfig::Exclusive { .. } => "order=fifo",
        ExecutorConfig::Rayon { .. } => "order=fifo,inline_below=off,express=0",
        ExecutorConfig::Subprocess(_) => "order=fifo,express=0",
        _ => return None,
    };
    let config: ExecutorConfig = format!("{},{options}", strategy.label).parse().ok()?;
    let label = config.to_string();
    (label != strategy.label).then(|| Strategy {
        label,
        config,
        fifo_of: Some(strategy.label.clone()),
    })
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
    /// Cores this process may use.
    pub(crate) cores: usize,
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
    /// The sizes of the mixed section with their calibrated service times.
    pub(crate) mix: Vec<MixSize>,
    /// How long each server gets the mixed load.
    pub(crate) mix_window: Duration,
    /// How long requests arrive at each load of the open-loop section.
    pub(crate) open_window: Duration,
}

/// One size class of the mixed section.
#[derive(Clone, Debug)]
pub(crate) struct MixSize {
    /// What the class is meant to cost, e.g. 50 µs.
    pub(crate) target: Duration,
    /// Requests per thousand.
    pub(crate) per_mille: u32,
    pub(crate) n: u64,
    /// What `sumn(n)` took here unloaded, the fastest of several runs: the service time
    /// slowdown divides by.
    pub(crate) service: Duration,
}

/// The mixed section's classes: mostly short requests, a few long ones, a heavy tail, the
/// shape real request costs tend to have. `(target µs, requests per thousand)`.
const MIX_CLASSES: [(u64, u32); 3] = [(50, 900), (1_000, 90), (20_000, 10)];

impl Plan {
    /// Calibrates the work size, then sizes everything for a full or a quick run.
    pub(crate) fn new(quick: bool, requests: Option<usize>) -> Plan {
        let (n_1ms, measured_1ms) = calibrate_1ms();
        let mix = MIX_CLASSES
            .iter()
            .map(|&(micros, per_mille)| {
                let target = Duration::from_micros(micros);
                let n = round_significant((n_1ms * micros / 1_000).max(1), 3);
                // Fewer runs of the long class: its fastest of 5 is already 100 ms of work.
                let runs = if micros >= 10_000 {
                    5
                } else {
                    CALIBRATION_RUNS
                };
                MixSize {
                    target,
                    per_mille,
                    n,
                    service: fastest_sumn(n, runs),
                }
            })
            .collect();
        // The full run must stay within about 5 minutes on 2 cores, --quick under 1.
        Plan {
            quick,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            requests: requests.unwrap_or(if quick { 120 } else { 700 }),
            rounds: if quick { 1 } else { 3 },
            n_1ms,
            measured_1ms,
            window: Duration::from_millis(if quick { 400 } else { 2500 }),
            overhead_budget: Duration::from_millis(if quick { 50 } else { 500 }),
            crash_followups: 3,
            mix,
            mix_window: Duration::from_millis(if quick { 500 } else { 3000 }),
            open_window: Duration::from_millis(if quick { 400 } else { 2500 }),
        }
    }

    /// The calibrated service time of a mixed-section size.
    pub(crate) fn service_time(&self, n: u64) -> Option<Duration> {
        self.mix
            .iter()
            .find(|size| size.n == n)
            .map(|size| size.service)
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
    // Wake the core up to its working frequency before timing.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(100) {
        time_sumn(100_000);
    }
    let probe = 1_000_000;
    let took = fastest_sumn(probe, CALIBRATION_RUNS).max(Duration::from_nanos(1));
    let scaled = (probe as f64 * TARGET.as_secs_f64() / took.as_secs_f64()) as u64;
    // Round to three significant digits so the report reads cleanly.
    let n = round_significant(scaled.max(1_000), 3);
    (n, fastest_sumn(n, CALIBRATION_RUNS))
}

fn time_sumn(n: u64) -> Duration {
    let start = Instant::now();
    std::hint::black_box(sumn.call(std::hint::black_box(n)));
    start.elapsed()
}

/// The fastest of `runs` direct calls of `sumn(n)`: the others were slowed by whatever else
/// shares the machine.
fn fastest_sumn(n: u64, runs: usize) -> Duration {
    (0..runs).map(|_| time_sumn(n)).min().unwrap_or_default()
}

fn round_significant(n: u64, digits: u32) -> u64 {
    let magnitude = n.ilog10() + 1;
    if magnitude <= digits {
        return n;
    }
    let unit = 10u64.pow(magnitude - digits);
    (n + unit / 2) / unit * unit
}

/// Parses a `--strategies` list such as [`DEFAULT_STRATEGIES`].
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
        strategies.push(Strategy {
            label,
            config,
            fifo_of: None,
        });
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
