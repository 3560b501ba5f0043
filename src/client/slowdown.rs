//! Slowdown: a request's latency divided by the service time of its size, the measure of a
//! scheduler under mixed load (Harchol-Balter's). A latency alone hides who waited: 20 ms is
//! fine for a 20 ms request and awful for a 50 µs one; slowdown puts every size on one scale,
//! where 1 means "served as fast as if it were alone".
//!
//! Trade-offs: the service time is whatever the caller says it is (the comparison uses the
//! calibrated time of a direct call), so the network round trip counts as slowdown; with
//! loopback at tens of µs, the smallest requests never get close to 1.

use std::time::Duration;

/// One answered request: its `n` and how long the client waited for the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestSample {
    /// The `n` asked for.
    pub n: u64,
    /// From sending the request to reading the reply (connect included when there is one).
    pub latency: Duration,
}

/// The slowdown of a set of requests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slowdown {
    /// Requests it covers.
    pub requests: usize,
    /// Mean of latency / service time.
    pub mean: f64,
    /// 99th percentile of latency / service time (nearest rank).
    pub p99: f64,
}

/// The slowdown of `samples`, each against `service(n)`; samples whose size has no service
/// time (or a zero one) are left out. `None` if none is left.
pub fn slowdown(
    samples: &[RequestSample],
    service: impl Fn(u64) -> Option<Duration>,
) -> Option<Slowdown> {
    let mut ratios: Vec<f64> = samples
        .iter()
        .filter_map(|sample| {
            let service = service(sample.n).filter(|s| !s.is_zero())?;
            Some(sample.latency.as_secs_f64() / service.as_secs_f64())
        })
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    Some(Slowdown {
        requests: ratios.len(),
        mean,
        p99: nearest_rank(&ratios, 99.0),
    })
}

/// The `p`th percentile (0 to 100) of sorted `values` by nearest rank.
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u64, micros: u64) -> RequestSample {
        RequestSample {
            n,
            latency: Duration::from_micros(micros),
        }
    }

    #[test]
    fn each_request_is_measured_against_its_own_size() {
        let service = |n: u64| Some(Duration::from_micros(n));
        // A 10 µs request that took 100 µs is slowed 10x; a 1000 µs one that took 2000, 2x.
        let samples = [sample(10, 100), sample(1000, 2000)];
        let s = slowdown(&samples, service).unwrap();
        assert_eq!(s.requests, 2);
        assert!((s.mean - 6.0).abs() < 1e-9, "{s:?}");
        assert!((s.p99 - 10.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn sizes_without_a_service_time_are_left_out() {
        let service = |n: u64| (n == 10).then_some(Duration::from_micros(10));
        let samples = [sample(10, 30), sample(99, 5)];
        let s = slowdown(&samples, service).unwrap();
        assert_eq!(s.requests, 1);
        assert!((s.mean - 3.0).abs() < 1e-9);
        assert_eq!(slowdown(&[sample(99, 5)], service), None);
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        let service = |_| Some(Duration::from_micros(1));
        let samples: Vec<_> = (1..=200).map(|i| sample(1, i)).collect();
        assert_eq!(slowdown(&samples, service).unwrap().p99, 198.0);
    }
}
