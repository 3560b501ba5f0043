//! The thumbnails section: requests/s of the thumbnails HTTP service (`examples/thumbnails`,
//! compiled into this program) per strategy, for one fixed test image, from a few clients
//! for a fixed window.
//!
//! The image is made here: a 1024x768 JPEG of a gradient with noise, about what a phone
//! sends after its own resize; each request asks for a 160 pixel wide PNG. The ceiling is what
//! the work allows on this machine: the cores divided by the time one direct call of the task
//! takes (the fastest of a few). Only the listed strategies are measured, not their fifo
//! forms: one task, one size, so there is nothing for learned scheduling to reorder.

use std::fmt::Write as _;
use std::io::Cursor;
use std::time::{Duration, Instant};

use image::{ImageFormat, Rgb, RgbImage};
use serde_bytes::ByteBuf;
use ythread::{Executor, TaskRegistry};
use ythread_suite::client::http::http_request;

use crate::Lineup;
use crate::plan::{Plan, Row};
use crate::progress::Progress;
use crate::report::{Notes, code, duration, percent, rate, seconds};

// The example's own modules, compiled in here too; this section uses only part of them.
#[allow(dead_code)]
#[path = "../thumbnails/service.rs"]
mod service;
#[allow(dead_code)]
#[path = "../thumbnails/task.rs"]
mod task;

/// The thumbnail width every request asks for.
const WIDTH: u32 = 160;

/// A request that takes longer than this has hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests one client sends at most, whatever the window: bounds the loop by count too.
const MAX_PER_CLIENT: u64 = 100_000;

/// `registry` with the thumbnail task, for `init` (the subprocess workers run it).
pub(crate) fn with_task(registry: TaskRegistry) -> TaskRegistry {
    registry.with(task::thumbnail)
}

/// What one strategy served.
#[derive(Clone, Debug)]
pub(crate) struct Served {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) elapsed: Duration,
    /// The first failure's reason, if any.
    pub(crate) first_failure: Option<String>,
}

impl Served {
    pub(crate) fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The section's results.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub(crate) clients: usize,
    pub(crate) window: Duration,
    pub(crate) image_bytes: usize,
    /// One direct call of the task, the fastest of a few: the work per request.
    pub(crate) service_time: Duration,
    pub(crate) cores: usize,
    pub(crate) rows: Vec<Row<Served>>,
}

/// Measures every listed strategy of `lineup` (the fifo forms are skipped).
pub(crate) fn measure(lineup: &Lineup, plan: &Plan, progress: &Progress) -> Section {
    let image = test_image();
    let service_time = fastest_direct_call(&image);
    let clients = plan.cores * 2;
    let window = Duration::from_millis(if plan.quick { 300 } else { 2_000 });
    let rows = lineup
        .iter()
        .filter(|(strategy, _)| strategy.fifo_of.is_none())
        .map(|(strategy, executor)| {
            progress.step(&format!("thumbnails service: {}", strategy.label));
            let result = match executor {
                Ok(executor) => load(executor, &image, clients, window),
                Err(reason) => Err(reason.clone()),
            };
            progress.done();
            Row::new(strategy, result)
        })
        .collect();
    Section {
        clients,
        window,
        image_bytes: image.len(),
        service_time,
        cores: plan.cores,
        rows,
    }
}

/// Progress steps of the section.
pub(crate) fn steps(lineup_listed: usize) -> u64 {
    lineup_listed as u64
}

/// Serves the thumbnails service with `executor` while `clients` clients post `image` for
/// `window`.
fn load(
    executor: &Executor,
    image: &[u8],
    clients: usize,
    window: Duration,
) -> Result<Served, String> {
    let config = service::ServiceConfig {
        addr: ([127, 0, 0, 1], 0).into(),
        max_body: service::DEFAULT_MAX_BODY,
        decoder_limits: true,
        max_in_flight: service::DEFAULT_MAX_IN_FLIGHT,
    };
    let server = service::bind(config, executor.clone())
        .map_err(|e| e.to_string())?
        .spawn();
    let addr = server.addr();
    let target = format!("/thumbnail?width={WIDTH}");
    // One request first: starts whatever the strategy starts lazily, outside the window.
    let warm = http_request(addr, "POST", &target, image, REQUEST_TIMEOUT);
    let outcome = match warm {
        Ok(reply) if reply.status == 200 => Ok(run_clients(addr, &target, image, clients, window)),
        Ok(reply) => Err(format!(
            "the first request got {}: {}",
            reply.status,
            reply.text()
        )),
        Err(e) => Err(format!("the first request failed: {e}")),
    };
    match server.shutdown() {
        Ok(()) => outcome,
        Err(e) => Err(format!("the service failed: {e}")),
    }
}

fn run_clients(
    addr: std::net::SocketAddr,
    target: &str,
    image: &[u8],
    clients: usize,
    window: Duration,
) -> Served {
    let started = Instant::now();
    let deadline = started + window;
    let per_client: Vec<(u64, u64, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(move || {
                    let (mut ok, mut failed, mut first_failure) = (0u64, 0u64, None);
                    while Instant::now() < deadline && ok + failed < MAX_PER_CLIENT {
                        match http_request(addr, "POST", target, image, REQUEST_TIMEOUT) {
                            Ok(reply) if reply.status == 200 => ok += 1,
                            Ok(reply) => {
                                failed += 1;
                                first_failure.get_or_insert_with(|| {
                                    format!("status {}: {}", reply.status, reply.text())
                                });
                            }
                            Err(e) => {
                                failed += 1;
                                first_failure.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                    (ok, failed, first_failure)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((0, 1, Some("a client panicked".to_owned())))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    Served {
        ok: per_client.iter().map(|c| c.0).sum(),
        failed: per_client.iter().map(|c| c.1).sum(),
        elapsed,
        first_failure: per_client.into_iter().find_map(|c| c.2),
    }
}

/// The fixed test image: a 1024x768 JPEG of a gradient with noise (so it does not compress
/// to nothing), the same in every run.
fn test_image() -> Vec<u8> {
    let mut seed: u32 = 0x2545_f491;
    let picture = RgbImage::from_fn(1024, 768, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (seed % 32) as u8;
        Rgb([
            ((x * 255 / 1024) as u8).saturating_add(noise),
            ((y * 255 / 768) as u8).saturating_add(noise),
            (((x + y) / 8 % 256) as u8).saturating_add(noise),
        ])
    });
    let mut jpeg = Vec::new();
    picture
        .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .expect("the test image encodes as JPEG");
    jpeg
}

/// The task called directly on this thread, the fastest of five: the work of one request.
fn fastest_direct_call(image: &[u8]) -> Duration {
    let job = task::ThumbnailJob {
        image: ByteBuf::from(image.to_vec()),
        width: WIDTH,
        decoder_limits: true,
    };
    (0..5)
        .map(|_| {
            let job = job.clone();
            let began = Instant::now();
            let made = task::thumbnail.call(job);
            let took = began.elapsed();
            debug_assert!(made.is_ok(), "{made:?}");
            took
        })
        .min()
        .unwrap_or_default()
}

/// The section's markdown.
pub(crate) fn table(out: &mut String, section: &Section, notes: &mut Notes) {
    let ceiling = section.cores as f64 / section.service_time.as_secs_f64().max(1e-9);
    let _ = write!(
        out,
        "## The thumbnails service: requests/s per strategy\n\n\
         `examples/thumbnails` (ythread-serve's HTTP, a yieldable thread per request, decode and \
         resize yielded as a task) with each strategy, {} clients posting one {} KiB \
         1024x768 JPEG for a {WIDTH} pixel wide PNG, a new connection per request, for {}. \
         One direct call of the task took {}, so {} cores allow at most {} requests/s (the \
         ceiling).\n\n\
         | strategy | requests/s | of the ceiling | failed |\n|---|--:|--:|--:|\n",
        section.clients,
        section.image_bytes / 1024,
        seconds(section.window),
        duration(section.service_time),
        section.cores,
        rate(ceiling),
    );
    for row in &section.rows {
        match &row.result {
            Ok(served) => {
                let failed = match &served.first_failure {
                    Some(reason) => format!("{} [{}]", served.failed, notes.number(reason)),
                    None => served.failed.to_string(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {failed} |",
                    code(&row.strategy),
                    rate(served.per_second()),
                    percent(served.per_second() / ceiling),
                );
            }
            Err(reason) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | | |",
                    code(&row.strategy),
                    notes.cell(reason)
                );
            }
        }
    }
    out.push('\n');
}
