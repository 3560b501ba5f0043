//! Section 1, the article's table: a fixed number of ~1 ms requests from 1, 2, 4, 8 and an
//! oversubscribed 32 clients, a new connection per request as the article's client does.
//!
//! The machine is shared and its background load drifts, so the measurements are interleaved:
//! every strategy's server runs at once (idle but one), each round measures every client count
//! for every strategy in turn, and each point reports the round with the median rate. The
//! tokio peer's forms take their turns in the same rounds.

use std::net::SocketAddr;
use std::time::Duration;

use ythread_suite::client::{LoadConfig, run_load};
use ythread_suite::server::Work;

use crate::plan::{CLIENT_COUNTS, Plan};
use crate::progress::Progress;
use crate::served::Started;

/// One client count of one strategy: the round with the median rate.
#[derive(Clone, Debug)]
pub(crate) struct Point {
    pub(crate) clients: usize,
    pub(crate) requests_per_sec: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) ok: u64,
    /// Failed or never sent (the time bound ran out), over every round.
    pub(crate) failed: u64,
    pub(crate) first_error: Option<String>,
}

/// One strategy's row of the throughput table: its points.
pub(crate) type Row = crate::plan::Row<Vec<Point>>;

impl Row {
    /// Requests/s at `clients` over requests/s with one client.
    pub(crate) fn speedup(&self, clients: usize) -> Option<f64> {
        let one = self.point(1)?;
        let at = self.point(clients)?;
        (one.requests_per_sec > 0.0).then(|| at.requests_per_sec / one.requests_per_sec)
    }

    pub(crate) fn point(&self, clients: usize) -> Option<&Point> {
        self.result
            .as_ref()
            .ok()?
            .iter()
            .find(|p| p.clients == clients)
    }
}

/// Per-request I/O bound: generous, since 32 clients queue behind 2 cores.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A strategy being measured: its server, or why there is none.
struct Subject {
    label: String,
    server: Started,
    /// Every round's point per client count, in the order of [`CLIENT_COUNTS`].
    rounds: Vec<Vec<Point>>,
}

/// Progress steps of this section.
pub(crate) fn steps(subjects: usize, plan: &Plan) -> u64 {
    (subjects * CLIENT_COUNTS.len() * plan.rounds) as u64
}

/// Measures every server in `servers`, each labelled, and stops them.
pub(crate) fn measure(
    servers: Vec<(String, Started)>,
    plan: &Plan,
    progress: &Progress,
) -> Vec<Row> {
    let mut subjects: Vec<Subject> = servers
        .into_iter()
        .map(|(label, server)| Subject {
            label,
            server,
            rounds: CLIENT_COUNTS.iter().map(|_| Vec::new()).collect(),
        })
        .collect();
    for subject in &subjects {
        if let Ok(server) = &subject.server {
            progress.message(&format!("throughput: {}, warming up", subject.label));
            warm_up(server.addr(), plan);
        }
    }
    for round in 0..plan.rounds {
        for (index, clients) in CLIENT_COUNTS.into_iter().enumerate() {
            for subject in &mut subjects {
                let Ok(server) = &subject.server else {
                    progress.skip(1);
                    continue;
                };
                progress.step(&format!(
                    "throughput: {}, {clients} clients, round {} of {}",
                    subject.label,
                    round + 1,
                    plan.rounds
                ));
                let point = load(server.addr(), clients, plan);
                subject.rounds[index].push(point);
                progress.done();
            }
        }
    }
    subjects
        .into_iter()
        .map(|subject| {
            let Subject {
                label,
                server,
                rounds,
            } = subject;
            let points = server.map(|server| {
                if let Err(e) = server.stop() {
                    progress.warn(&format!(
                        "{label}: the sum server did not stop cleanly: {e}"
                    ));
                }
                rounds.into_iter().filter_map(median_round).collect()
            });
            Row {
                strategy: label,
                result: points,
            }
        })
        .collect()
}

/// Untimed load first: the pool's threads or workers, the server's stacks and the CPU clock
/// settle before the first (1-client) point, which every speed-up divides by.
fn warm_up(addr: SocketAddr, plan: &Plan) {
    let config = LoadConfig {
        clients: 2,
        requests: (plan.requests / 10).max(20),
        n: plan.n_1ms,
        timeout: REQUEST_TIMEOUT,
        max_duration: max_duration(plan),
        ..LoadConfig::new(addr)
    };
    run_load(&config, |_| None);
}

fn load(addr: SocketAddr, clients: usize, plan: &Plan) -> Point {
    let config = LoadConfig {
        clients,
        requests: plan.requests,
        n: plan.n_1ms,
        keepalive: false,
        timeout: REQUEST_TIMEOUT,
        max_duration: max_duration(plan),
        ..LoadConfig::new(addr)
    };
    let report = run_load(&config, |n| Some(Work::Sumn.expected(n)));
    Point {
        clients,
        requests_per_sec: report.requests_per_sec(),
        p50: report.percentile(50.0),
        p99: report.percentile(99.0),
        ok: report.ok,
        failed: report.errors + report.not_sent,
        first_error: report.first_error.clone(),
    }
}

/// A measurement should take requests × 1 ms / parallelism; allow far more, so only a hang
/// hits the bound.
fn max_duration(plan: &Plan) -> Duration {
    Duration::from_secs(60) + plan.measured_1ms * plan.requests as u32 * 4
}

/// The round with the median rate, carrying the failures of every round.
fn median_round(mut rounds: Vec<Point>) -> Option<Point> {
    let failed: u64 = rounds.iter().map(|p| p.failed).sum();
    let first_error = rounds.iter().find_map(|p| p.first_error.clone());
    rounds.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
    let middle = rounds.len() / 2;
    let mut median = rounds.into_iter().nth(middle)?;
    median.failed = failed;
    median.first_error = first_error;
    Some(median)
}
