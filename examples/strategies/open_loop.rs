//! Open-loop section: the mixed heavy-tailed load of section 3, its requests arriving at
//! random (Poisson) times at 30%, 50%, 70% and 90% of the machine's capacity, offered to each
//! strategy, its fifo form and the tokio peer. What a scheduler is for shows as the short
//! requests' p99 slowdown against the load offered: with first come, first served it grows
//! with the queue of long requests ahead of them; a scheduler that serves short work first
//! keeps it flat for longer.
//!
//! Trade-offs: capacity is the cores over the mix's mean service time, from calibrated direct
//! calls: it leaves out what each request costs the network, the server and this load
//! generator (tens of µs a request on this machine, as much as a short request's work), so
//! the real utilisation at a nominal 90% is higher, and a server can fall behind before the
//! nominal 100%. A load that a server cannot keep up with shows as requests unanswered when
//! the drain ends and a p99 that is "saturated" rather than a number. Each load runs for a
//! fixed window, so a quick run's tails rest on few requests.

use std::time::Duration;

use ythread_suite::client::{
    OpenLoopConfig, OpenLoopReport, RequestMix, RequestSample, run_open_loop,
};
use ythread_suite::server::Work;

use crate::plan::Plan;
use crate::progress::Progress;
use crate::served::Started;

/// The loads offered, in percent of capacity.
pub(crate) const LOADS: [u32; 4] = [30, 50, 70, 90];

/// The seed of the arrivals: every server gets the same sizes at the same times.
const SEED: u64 = 0x0BE2_2026;

/// Client threads: the most requests at a server at once.
const CONNECTIONS: usize = 64;

/// Bounds one request's I/O.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One load offered to one server.
#[derive(Clone, Debug)]
pub(crate) struct Point {
    /// Percent of capacity.
    pub(crate) load: u32,
    pub(crate) offered: usize,
    pub(crate) answered: usize,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) unanswered: usize,
    /// The short class's p99 slowdown; `None` when more than 1% of its requests went
    /// unanswered or failed (saturated).
    pub(crate) short_p99: Option<f64>,
}

pub(crate) type Row = crate::plan::Row<Vec<Point>>;

/// Requests per second the machine could serve if they cost only their work: the cores over
/// the mix's mean service time.
pub(crate) fn capacity(plan: &Plan) -> f64 {
    let total: u32 = plan.mix.iter().map(|class| class.per_mille).sum();
    let mean: f64 = plan
        .mix
        .iter()
        .map(|class| class.service.as_secs_f64() * f64::from(class.per_mille))
        .sum::<f64>()
        / f64::from(total.max(1));
    plan.cores as f64 / mean.max(1e-9)
}

/// Progress steps per server.
pub(crate) const STEPS: u64 = LOADS.len() as u64;

/// Offers every load to `server` (labelled `label`) and stops it.
pub(crate) fn measure(server: Started, label: String, plan: &Plan, progress: &Progress) -> Row {
    let result = server.and_then(|server| {
        let mut points = Vec::new();
        for load in LOADS {
            progress.step(&format!(
                "open loop: {label}, {load}% of capacity for {:?}",
                plan.open_window
            ));
            let point = offer(server.addr(), load, plan);
            progress.done();
            points.push(point?);
        }
        if let Err(e) = server.stop() {
            progress.warn(&format!("{label}: the server did not stop cleanly: {e}"));
        }
        Ok(points)
    });
    if result.is_err() {
        progress.skip(STEPS);
    }
    Row {
        strategy: label,
        result,
    }
}

fn offer(addr: std::net::SocketAddr, load: u32, plan: &Plan) -> Result<Point, String> {
    let sizes: Vec<(u64, u32)> = plan.mix.iter().map(|c| (c.n, c.per_mille)).collect();
    let rate = capacity(plan) * f64::from(load) / 100.0;
    let config = OpenLoopConfig {
        addr,
        rate,
        mix: RequestMix::new(&sizes, SEED)?,
        duration: plan.open_window,
        connections: CONNECTIONS,
        timeout: REQUEST_TIMEOUT,
        drain: plan.open_window.max(Duration::from_secs(2)),
    };
    let report = run_open_loop(&config, |n| Some(Work::Sumn.expected(n)));
    Ok(summarize(load, &report, plan))
}

fn summarize(load: u32, report: &OpenLoopReport, plan: &Plan) -> Point {
    let short = plan.mix.first().map_or(0, |class| class.n);
    let service = |n| plan.service_time(n);
    let answered: Vec<RequestSample> = report
        .samples
        .iter()
        .filter(|s| s.n == short)
        .copied()
        .collect();
    let missing = report.unanswered.iter().filter(|&&n| n == short).count()
        + usize::try_from(report.errors).unwrap_or(usize::MAX);
    Point {
        load,
        offered: report.offered,
        answered: report.samples.len(),
        errors: report.errors,
        first_error: report.first_error.clone(),
        unanswered: report.unanswered.len(),
        short_p99: short_p99(&answered, missing, service),
    }
}

/// The p99 slowdown of the short requests, counting each missing one (unanswered, failed)
/// as slower than every answered one; `None` when the p99 falls among the missing.
fn short_p99(
    answered: &[RequestSample],
    missing: usize,
    service: impl Fn(u64) -> Option<Duration>,
) -> Option<f64> {
    let mut ratios: Vec<f64> = answered
        .iter()
        .filter_map(|s| Some(s.latency.as_secs_f64() / service(s.n)?.as_secs_f64()))
        .collect();
    let total = ratios.len() + missing;
    // Nothing answered, or more than 1% missing: the p99 is one of the missing.
    if ratios.is_empty() || missing * 100 > total {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    // The nearest rank among all requests, which the answered ones fill from the bottom.
    let rank = ((0.99 * total as f64).ceil() as usize).clamp(1, total);
    ratios.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(micros: u64) -> RequestSample {
        RequestSample {
            n: 1,
            latency: Duration::from_micros(micros),
        }
    }

    #[test]
    fn missing_requests_count_as_the_slowest() {
        let service = |_| Some(Duration::from_micros(1));
        let answered: Vec<RequestSample> = (1..=199).map(sample).collect();
        // 200 requests, one missing: the p99 (rank 198) is still an answered one.
        assert_eq!(short_p99(&answered, 1, service), Some(198.0));
        // Three missing of 202: more than 1%, saturated.
        assert_eq!(short_p99(&answered, 3, service), None);
        assert_eq!(short_p99(&[], 0, service), None);
    }
}
