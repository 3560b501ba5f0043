//! Section 3, mixed heavy-tailed load: 8 clients on kept connections send requests whose
//! sizes are drawn from a seeded mix (mostly ~50 µs, some ~1 ms, a few ~20 ms; see
//! [`crate::plan::MixSize`]), back to back for a fixed window. Each answered request's
//! latency is divided by the calibrated service time of its size: its *slowdown*. A
//! first-come-first-served queue makes short requests wait behind long ones, which shows as
//! a large mean slowdown (most requests are short); a size-aware scheduler that runs short
//! work first keeps it near the round-trip floor.
//!
//! Trade-offs: the load is a closed loop (each client waits for its reply before the next
//! request), so at most 8 requests are ever queued and a slow server is offered less load
//! rather than an ever-growing queue; an open loop would show queueing collapse sooner but
//! needs a rate picked per strategy. Connections are kept so that connect and thread-start
//! costs do not swamp the ~50 µs class.

use std::time::Duration;

use ythread_suite::client::{
    LoadConfig, LoadReport, RequestMix, RequestSample, Slowdown, run_load, slowdown,
};
use ythread_suite::server::Work;

use crate::plan::{HEAVY_CLIENTS, Plan};
use crate::progress::Progress;
use crate::served::Started;

/// The seed of the mix: every server gets the same sequence of sizes per client.
const SEED: u64 = 0x5EED_2026;

/// Bounds one request's I/O.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// More requests than can be sent: the window ends the run.
const UNBOUNDED_REQUESTS: usize = 100_000_000;

/// One server's run under the mix.
#[derive(Clone, Debug)]
pub(crate) struct Measured {
    pub(crate) requests_per_sec: f64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    /// Over every answered request.
    pub(crate) slowdown: Option<Slowdown>,
    /// Each size class's p99 latency, in the plan's order.
    pub(crate) class_p99: Vec<Option<Duration>>,
}

pub(crate) type Row = crate::plan::Row<Measured>;

/// Runs the mix against `server` (labelled `label`) and stops it.
pub(crate) fn measure(server: Started, label: String, plan: &Plan, progress: &Progress) -> Row {
    progress.step(&format!(
        "mixed load: {label}, {HEAVY_CLIENTS} clients for {:?}",
        plan.mix_window
    ));
    let result = server.and_then(|server| {
        let report = run_mix(server.addr(), plan);
        if let Err(e) = server.stop() {
            progress.warn(&format!("{label}: the server did not stop cleanly: {e}"));
        }
        report.map(|report| summarize(&report, plan))
    });
    progress.done();
    Row {
        strategy: label,
        result,
    }
}

fn run_mix(addr: std::net::SocketAddr, plan: &Plan) -> Result<LoadReport, String> {
    let sizes: Vec<(u64, u32)> = plan.mix.iter().map(|c| (c.n, c.per_mille)).collect();
    let config = LoadConfig {
        clients: HEAVY_CLIENTS,
        requests: UNBOUNDED_REQUESTS,
        mix: Some(RequestMix::new(&sizes, SEED)?),
        record_each: true,
        keepalive: true,
        timeout: REQUEST_TIMEOUT,
        max_duration: plan.mix_window,
        ..LoadConfig::new(addr)
    };
    Ok(run_load(&config, |n| Some(Work::Sumn.expected(n))))
}

fn summarize(report: &LoadReport, plan: &Plan) -> Measured {
    let service = |n| plan.service_time(n);
    let class_p99 = plan
        .mix
        .iter()
        .map(|class| {
            let of_class: Vec<RequestSample> = report
                .samples
                .iter()
                .filter(|s| s.n == class.n)
                .copied()
                .collect();
            // Every request of a class has the same service time, so its p99 slowdown is
            // its p99 latency over that time.
            slowdown(&of_class, service).map(|s| class.service.mul_f64(s.p99))
        })
        .collect();
    Measured {
        requests_per_sec: report.requests_per_sec(),
        errors: report.errors,
        first_error: report.first_error.clone(),
        slowdown: slowdown(&report.samples, service),
        class_p99,
    }
}
