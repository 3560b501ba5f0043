//! Section 2, responsiveness (the fib article's `perf2`): one client sends tiny requests
//! (`n = 1`) back to back on a kept connection, first alone, then while 8 clients keep the
//! cores busy with heavy requests. A strategy that lets heavy work crowd out short requests
//! shows it as a collapsed tiny-request rate and a long p99.
//!
//! The unloaded phase runs with the other cores kept awake ([`KeepAwake`]): on a VM an idle
//! core is slow to wake, which made tiny requests faster under load than alone and "kept"
//! read far above 100%. Both the rate kept and the loaded p99 over the unloaded p99 are
//! reported, since a strategy can keep the rate while its tail grows.

use std::net::SocketAddr;
use std::time::Duration;

use ythread_suite::client::{LoadConfig, LoadReport, run_load};
use ythread_suite::server::Work;

use crate::awake::KeepAwake;
use crate::plan::{HEAVY_CLIENTS, Plan, Strategy};
use crate::progress::Progress;
use crate::served::Started;

/// What one client saw during one phase.
#[derive(Clone, Debug)]
pub(crate) struct Phase {
    pub(crate) requests_per_sec: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
}

impl Phase {
    fn from_report(report: &LoadReport) -> Phase {
        Phase {
            requests_per_sec: report.requests_per_sec(),
            p50: report.percentile(50.0),
            p99: report.percentile(99.0),
            ok: report.ok,
            errors: report.errors,
            first_error: report.first_error.clone(),
        }
    }
}

/// One strategy's measurements.
#[derive(Clone, Debug)]
pub(crate) struct Measured {
    /// Tiny requests with nothing else running.
    pub(crate) alone: Phase,
    /// Tiny requests while the heavy clients run.
    pub(crate) loaded: Phase,
    /// The heavy clients, all together, while the tiny client runs.
    pub(crate) heavy: Phase,
    /// The heavy clients with no tiny client: what the strategy does for heavy work alone.
    pub(crate) heavy_alone: Phase,
}

impl Measured {
    /// The loaded tiny-request rate as a fraction of the unloaded one.
    pub(crate) fn kept_fraction(&self) -> Option<f64> {
        (self.alone.requests_per_sec > 0.0)
            .then(|| self.loaded.requests_per_sec / self.alone.requests_per_sec)
    }

    /// The loaded tiny-request p99 over the unloaded one.
    pub(crate) fn p99_growth(&self) -> Option<f64> {
        (!self.alone.p99.is_zero() && self.loaded.ok > 0)
            .then(|| self.loaded.p99.as_secs_f64() / self.alone.p99.as_secs_f64())
    }
}

/// One row of the responsiveness table.
pub(crate) type Row = crate::plan::Row<Measured>;

/// Time for the heavy clients to get their first requests in flight before tiny ones start.
const HEAVY_HEAD_START: Duration = Duration::from_millis(200);

/// Bounds one request's I/O; under load a tiny request may wait behind heavy ones.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests of a time-bounded phase: more than can be sent, so the duration ends it.
const UNBOUNDED_REQUESTS: usize = 100_000_000;

/// With the seed article's fix, requests below this `n` are computed on the handler's thread
/// and only heavier ones are yielded: tiny requests then never queue behind heavy work.
pub(crate) const DIRECT_BELOW: u64 = 1000;

/// Measures `server` (labelled `label`) and stops it.
pub(crate) fn measure(server: Started, label: String, plan: &Plan, progress: &Progress) -> Row {
    let measured = match server {
        Ok(server) => {
            let measured = both_phases(server.addr(), &label, plan, progress);
            if let Err(e) = server.stop() {
                progress.warn(&format!("{label}: the server did not stop cleanly: {e}"));
            }
            Ok(measured)
        }
        Err(e) => {
            progress.skip(crate::plan::RESPONSIVENESS_STEPS);
            Err(e)
        }
    };
    Row {
        strategy: label,
        result: measured,
    }
}

/// The row label: the strategy, and the direct threshold when there is one.
pub(crate) fn label(strategy: &Strategy, direct_below: u64) -> String {
    if direct_below == 0 {
        strategy.label.clone()
    } else {
        format!("{}, n < {direct_below} direct", strategy.label)
    }
}

fn both_phases(addr: SocketAddr, label: &str, plan: &Plan, progress: &Progress) -> Measured {
    progress.step(&format!(
        "responsiveness: {label}, tiny requests alone, other cores kept awake"
    ));
    let alone = {
        let _awake = KeepAwake::other_cores(plan.cores);
        Phase::from_report(&tiny_requests(addr, plan.window))
    };
    progress.done();

    progress.step(&format!(
        "responsiveness: {label}, tiny requests among {HEAVY_CLIENTS} heavy clients"
    ));
    let heavy_config = LoadConfig {
        clients: HEAVY_CLIENTS,
        requests: UNBOUNDED_REQUESTS,
        n: plan.heavy_n(),
        keepalive: true,
        timeout: REQUEST_TIMEOUT,
        max_duration: HEAVY_HEAD_START + plan.window,
        ..LoadConfig::new(addr)
    };
    let (loaded, heavy) = std::thread::scope(|scope| {
        let heavy = scope.spawn(|| run_load(&heavy_config, |n| Some(Work::Sumn.expected(n))));
        std::thread::sleep(HEAVY_HEAD_START);
        let loaded = tiny_requests(addr, plan.window);
        let heavy = heavy.join().expect("the load client does not panic");
        (Phase::from_report(&loaded), Phase::from_report(&heavy))
    });
    progress.done();

    progress.step(&format!(
        "responsiveness: {label}, {HEAVY_CLIENTS} heavy clients alone"
    ));
    let heavy_alone =
        Phase::from_report(&run_load(&heavy_config, |n| Some(Work::Sumn.expected(n))));
    progress.done();
    Measured {
        alone,
        loaded,
        heavy,
        heavy_alone,
    }
}

/// One client, one kept connection, `n = 1` back to back for `window`.
fn tiny_requests(addr: SocketAddr, window: Duration) -> LoadReport {
    let config = LoadConfig {
        clients: 1,
        requests: UNBOUNDED_REQUESTS,
        n: 1,
        keepalive: true,
        timeout: REQUEST_TIMEOUT,
        max_duration: window,
        ..LoadConfig::new(addr)
    };
    run_load(&config, |n| Some(Work::Sumn.expected(n)))
}
