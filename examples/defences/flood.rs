//! A flood of connections against a cap: every attempt is served or told `error: server
//! busy` within 1 s, memory stays bounded, and a fresh request is still answered quickly
//! while attackers hold on to every connection they get.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ythread_suite::client::request_once;

use crate::child::{ChildServer, Setup};
use crate::{Bar, Scale, ms, percentile};

const ATTACKERS: usize = 8;
/// Each attacker keeps this many of its answered connections open (more than the cap in all).
const HELD_PER_ATTACKER: usize = 1_000;
const PROBE_EVERY: Duration = Duration::from_millis(20);
const REPLY_BOUND: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Tally {
    served: u64,
    busy: u64,
    late_or_failed: u64,
    slowest: Duration,
}

pub(crate) fn run(scale: Scale) -> Vec<Bar> {
    let server = ChildServer::start(&Setup {
        max_connections: Some(scale.flood_cap),
        ..Setup::default()
    });
    let rss_before = server.rss_kib();
    let rss_peak = AtomicU64::new(rss_before);
    let flooding = AtomicBool::new(true);
    let per_attacker = scale.flood_attempts / ATTACKERS;
    let started = Instant::now();
    let (tallies, mut probes, probe_refused) = std::thread::scope(|scope| {
        let attackers: Vec<_> = (0..ATTACKERS)
            .map(|_| scope.spawn(|| attack(&server, per_attacker, scale.flood_time)))
            .collect();
        let probe = scope.spawn(|| probe(&server, &flooding));
        scope.spawn(|| {
            while flooding.load(Ordering::Relaxed) {
                rss_peak.fetch_max(server.rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let tallies: Vec<Tally> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
        flooding.store(false, Ordering::Relaxed);
        let (probes, refused) = probe.join().unwrap();
        (tallies, probes, refused)
    });
    let took = started.elapsed();
    let total = tallies.iter().fold(Tally::default(), |sum, t| Tally {
        served: sum.served + t.served,
        busy: sum.busy + t.busy,
        late_or_failed: sum.late_or_failed + t.late_or_failed,
        slowest: sum.slowest.max(t.slowest),
    });
    let rss_peak = rss_peak.load(Ordering::Relaxed);
    let probe_p50 = percentile(&mut probes, 50.0);
    let probe_p99 = percentile(&mut probes, 99.0);
    let probe_max = percentile(&mut probes, 100.0);
    println!(
        "## Connection flood ({} attempts over {:?} against --max-connections {}, {ATTACKERS} \
         attackers holding up to {} connections)\n",
        scale.flood_attempts,
        scale.flood_time,
        scale.flood_cap,
        ATTACKERS * HELD_PER_ATTACKER
    );
    println!("| served | `error: server busy` | late or failed | slowest reply | took |");
    println!("|--:|--:|--:|--:|--:|");
    println!(
        "| {} | {} | {} | {} | {:.1} s |\n",
        total.served,
        total.busy,
        total.late_or_failed,
        ms(total.slowest),
        took.as_secs_f64()
    );
    println!(
        "Fresh requests during the flood: {} answered (p50 {}, p99 {}, max {}), {probe_refused} \
         refused. Server RSS {} MiB before, {} MiB at peak.\n",
        probes.len(),
        ms(probe_p50),
        ms(probe_p99),
        ms(probe_max),
        rss_before / 1024,
        rss_peak / 1024
    );
    vec![
        Bar {
            what: "every connection attempt is served or gets `error:` within 1 s",
            measured: format!(
                "{} served, {} busy, {} late or failed, slowest {}",
                total.served,
                total.busy,
                total.late_or_failed,
                ms(total.slowest)
            ),
            met: total.late_or_failed == 0,
        },
        Bar {
            what: "a fresh request during the flood is answered in < 10 ms (p99)",
            measured: format!(
                "{} answered, p50 {}, p99 {}, max {}, {probe_refused} refused",
                probes.len(),
                ms(probe_p50),
                ms(probe_p99),
                ms(probe_max)
            ),
            met: !probes.is_empty() && probe_refused == 0 && probe_p99 < Duration::from_millis(10),
        },
        Bar {
            what: "RSS stays bounded under the flood",
            measured: format!("{} → {} MiB", rss_before / 1024, rss_peak / 1024),
            met: rss_peak < rss_before + 512 * 1024,
        },
    ]
}

/// Connects `attempts` times, sends a request each time and waits for its line; keeps the
/// answered connections open, as an attacker holding slots would.
fn attack(server: &ChildServer, attempts: usize, spread_over: Duration) -> Tally {
    let mut tally = Tally::default();
    let mut held = VecDeque::new();
    let begun = Instant::now();
    let pace = spread_over / attempts.max(1) as u32;
    for attempt in 0..attempts {
        if let Some(wait) = (pace * attempt as u32).checked_sub(begun.elapsed()) {
            std::thread::sleep(wait);
        }
        let started = Instant::now();
        match one(server) {
            Some((stream, line)) if started.elapsed() <= REPLY_BOUND => {
                tally.slowest = tally.slowest.max(started.elapsed());
                if line.starts_with(b"error: server busy") {
                    tally.busy += 1;
                } else {
                    tally.served += 1;
                    held.push_back(stream);
                    if held.len() > HELD_PER_ATTACKER {
                        held.pop_front();
                    }
                }
            }
            _ => {
                tally.slowest = tally.slowest.max(started.elapsed());
                tally.late_or_failed += 1;
            }
        }
    }
    tally
}

fn one(server: &ChildServer) -> Option<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&server.addr, REPLY_BOUND).ok()?;
    stream.set_read_timeout(Some(REPLY_BOUND)).ok()?;
    stream.write_all(b"1").ok()?;
    let mut line = Vec::new();
    let mut buffer = [0u8; 256];
    while !line.contains(&b'\n') {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(len) => line.extend_from_slice(&buffer[..len]),
        }
    }
    Some((stream, line))
}

/// Fresh one-off requests while the flood lasts: their latencies, and how many were refused.
fn probe(server: &ChildServer, flooding: &AtomicBool) -> (Vec<Duration>, u64) {
    let mut answered = Vec::new();
    let mut refused = 0;
    while flooding.load(Ordering::Relaxed) {
        let started = Instant::now();
        match request_once(server.addr, b"1000", REPLY_BOUND) {
            Ok(reply) if reply == "500500" => answered.push(started.elapsed()),
            _ => refused += 1,
        }
        std::thread::sleep(PROBE_EVERY);
    }
    (answered, refused)
}
