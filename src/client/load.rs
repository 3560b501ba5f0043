//! The load generator: client threads sharing a fixed number of requests, every answer checked.
//! Every request asks for the same `n`, or draws it from a [`RequestMix`].

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::connection::{Connection, request_once};
use super::mix::{MixSampler, RequestMix};
use super::slowdown::RequestSample;

/// What load to put on a sum server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadConfig {
    /// The server.
    pub addr: SocketAddr,
    /// Client threads, each making one request at a time.
    pub clients: usize,
    /// Requests in total, shared among the clients (whichever is free takes the next).
    pub requests: usize,
    /// The `n` every request asks for, unless `mix` is set.
    pub n: u64,
    /// Draw each request's `n` from this mix instead of always asking for `n`.
    pub mix: Option<RequestMix>,
    /// Keep every answered request's `n` and latency in [`LoadReport::samples`] (for
    /// per-size measures such as [`slowdown`](super::slowdown())); costs 16 bytes a request.
    pub record_each: bool,
    /// Keep one connection per client for all its requests, instead of a new connection per
    /// request as in the article.
    pub keepalive: bool,
    /// Bounds the connect and every read and write of a request.
    pub timeout: Duration,
    /// Bounds the whole run: no request starts after it; the run ends within it plus `timeout`.
    pub max_duration: Duration,
}

impl LoadConfig {
    /// The article's load against `addr`: one client, 1000 requests of n = 25000, a new
    /// connection per request; 10 s per request I/O, 2 minutes at most in all.
    pub fn new(addr: SocketAddr) -> Self {
        LoadConfig {
            addr,
            clients: 1,
            requests: 1000,
            n: 25_000,
            mix: None,
            record_each: false,
            keepalive: false,
            timeout: Duration::from_secs(10),
            max_duration: Duration::from_secs(120),
        }
    }
}

/// What a load run measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Wall time from the first request to the last reply.
    pub elapsed: Duration,
    /// Requests answered with the expected value.
    pub ok: u64,
    /// Requests that failed: I/O errors, timeouts, `error:` replies, wrong answers.
    pub errors: u64,
    /// Latency of the `ok` requests, connect included when there is one, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Requests never sent because `max_duration` ran out.
    pub not_sent: u64,
    /// The first failure, to say what went wrong.
    pub first_error: Option<String>,
    /// Every answered request, when [`LoadConfig::record_each`] is set (in no useful order).
    pub samples: Vec<RequestSample>,
}

impl LoadReport {
    /// Answered requests per second of wall time.
    pub fn requests_per_sec(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        }
    }

    /// The latency at percentile `p` (0 to 100, as in 99.0) of the answered requests; zero if
    /// none was answered.
    pub fn percentile(&self, p: f64) -> Duration {
        Duration::from_micros(self.latency_us.value_at_percentile(p))
    }
}

impl fmt::Display for LoadReport {
    /// Three lines: counts, throughput, latency percentiles; a fourth with the first error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(f, "{} ok, {} errors", self.ok, self.errors)?;
        if self.not_sent > 0 {
            write!(f, ", {} not sent (time bound reached)", self.not_sent)?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "elapsed {:.3} s, {:.1} requests/s",
            self.elapsed.as_secs_f64(),
            self.requests_per_sec()
        )?;
        write!(
            f,
            "latency p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(Duration::from_micros(self.latency_us.max()))
        )?;
        if let Some(error) = &self.first_error {
            write!(f, "\nfirst error: {error}")?;
        }
        Ok(())
    }
}

/// Runs `config.requests` requests from `config.clients` threads and checks every answer:
/// `expect(n)` is the right answer (`None` accepts any number). Never panics on what the
/// server does; everything wrong is counted in [`LoadReport::errors`].
pub fn run_load(config: &LoadConfig, expect: impl Fn(u64) -> Option<u64> + Sync) -> LoadReport {
    let run = Run {
        config,
        expect: &expect,
        next: AtomicUsize::new(0),
        deadline: Instant::now() + config.max_duration,
    };
    let start = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let run = &run;
        let clients: Vec<_> = (0..config.clients.max(1))
            .map(|i| {
                std::thread::Builder::new()
                    .name(format!("sumclient-{i}"))
                    .spawn_scoped(scope, move || run.client(i as u64))
            })
            .collect();
        clients
            .into_iter()
            .map(|client| match client {
                Ok(thread) => thread.join().unwrap_or_else(|_| {
                    Tally::failed("a client thread panicked; this is a bug in the load client")
                }),
                Err(e) => Tally::failed(&format!("could not start a client thread: {e}")),
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut report = LoadReport {
        elapsed,
        ok: 0,
        errors: 0,
        latency_us: new_histogram(),
        not_sent: 0,
        first_error: None,
        samples: Vec::new(),
    };
    for mut tally in tallies {
        report.ok += tally.ok;
        report.errors += tally.errors;
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = report.latency_us.add(&tally.latency_us);
        report.first_error = report.first_error.or(tally.first_error);
        report.samples.append(&mut tally.samples);
    }
    report.not_sent = (config.requests as u64).saturating_sub(report.ok + report.errors);
    report
}

/// What every client thread of one run shares.
struct Run<'a> {
    config: &'a LoadConfig,
    expect: &'a (dyn Fn(u64) -> Option<u64> + Sync),
    next: AtomicUsize,
    deadline: Instant,
}

/// One client thread's counts.
struct Tally {
    ok: u64,
    errors: u64,
    latency_us: Histogram<u64>,
    first_error: Option<String>,
    samples: Vec<RequestSample>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            ok: 0,
            errors: 0,
            latency_us: new_histogram(),
            first_error: None,
            samples: Vec::new(),
        }
    }

    fn failed(why: &str) -> Self {
        let mut tally = Tally::new();
        tally.first_error = Some(why.to_owned());
        tally
    }
}

impl Run<'_> {
    /// Client number `index`: take the next request until none is left or time runs out.
    fn client(&self, index: u64) -> Tally {
        let mut tally = Tally::new();
        let mut kept: Option<Connection> = None;
        let mut sizes = Sizes::new(self.config, index);
        while Instant::now() < self.deadline
            && self.next.fetch_add(1, Ordering::Relaxed) < self.config.requests
        {
            let n = sizes.next_n();
            let request = n.to_string().into_bytes();
            let began = Instant::now();
            match self
                .request(&mut kept, &request)
                .and_then(|reply| self.check(n, &reply))
            {
                Ok(()) => {
                    tally.ok += 1;
                    let latency = began.elapsed();
                    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                    tally.latency_us.saturating_record(micros.max(1));
                    if self.config.record_each {
                        tally.samples.push(RequestSample { n, latency });
                    }
                }
                Err(why) => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert(why);
                    // After a failure the connection's state is unknown: start afresh.
                    kept = None;
                }
            }
        }
        tally
    }

    fn request(&self, kept: &mut Option<Connection>, request: &[u8]) -> Result<String, String> {
        let config = self.config;
        let describe = |e: std::io::Error| format!("request to {}: {e}", config.addr);
        if !config.keepalive {
            return request_once(config.addr, request, config.timeout).map_err(describe);
        }
        let connection = match kept {
            Some(connection) => connection,
            None => {
                kept.insert(Connection::connect(config.addr, config.timeout).map_err(describe)?)
            }
        };
        connection.request(request).map_err(describe)
    }

    fn check(&self, n: u64, reply: &str) -> Result<(), String> {
        if reply.starts_with("error:") {
            return Err(format!("the server answered n = {n} with `{reply}`"));
        }
        let value: u64 = reply
            .trim()
            .parse()
            .map_err(|_| format!("unexpected reply `{reply}` for n = {n}"))?;
        match (self.expect)(n) {
            Some(expected) if expected != value => Err(format!(
                "wrong answer for n = {n}: got {value}, expected {expected}"
            )),
            _ => Ok(()),
        }
    }
}

/// Where one client's request sizes come from: the fixed `n`, or its own stream of the mix.
enum Sizes {
    Fixed(u64),
    Mixed(MixSampler),
}

impl Sizes {
    fn new(config: &LoadConfig, client: u64) -> Sizes {
        match &config.mix {
            Some(mix) => Sizes::Mixed(mix.sampler(client)),
            None => Sizes::Fixed(config.n),
        }
    }

    fn next_n(&mut self) -> u64 {
        match self {
            Sizes::Fixed(n) => *n,
            Sizes::Mixed(sampler) => sampler.next_n(),
        }
    }
}

/// Latencies from 1 µs to an hour, three significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}
