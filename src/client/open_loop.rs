//! An open-loop load: requests arrive at random times, a Poisson process at a chosen rate,
//! whether or not the earlier ones have been answered, as a service's users do. A closed
//! loop (each client waits for its reply before sending again) offers a slow server less
//! load and so hides its queue; an open loop keeps offering the same rate, and the queue
//! shows in the latencies.
//!
//! Trade-offs: a request in flight needs a connection of its own (the sum server answers one
//! request at a time per connection), so a pool of client threads with kept connections
//! sends the arrivals; an arrival waits for a free thread when all are busy. Each latency
//! counts from the request's scheduled arrival, not from when a thread sent it, so a client
//! that falls behind cannot hide the server's queue. The dispatcher sleeps until each
//! arrival, so requests leave up to the OS's timer slack late (tens of µs), which counts in
//! their latency like the network round trip does. Sizes and gaps come from the mix's seeded
//! generator, so a run offers the same sequence every time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::connection::Connection;
use super::mix::RequestMix;
use super::slowdown::RequestSample;

/// One open-loop run.
#[derive(Clone, Debug)]
pub struct OpenLoopConfig {
    /// The sum server.
    pub addr: SocketAddr,
    /// Mean arrivals per second.
    pub rate: f64,
    /// The sizes the arrivals draw from (and the seed of their sizes and gaps).
    pub mix: RequestMix,
    /// How long requests keep arriving.
    pub duration: Duration,
    /// Client threads, each with its own kept connection: the most requests at the server at
    /// once.
    pub connections: usize,
    /// Bounds each connect, write and read.
    pub timeout: Duration,
    /// How long after the last arrival the answers may take; requests not sent by then are
    /// counted as unanswered.
    pub drain: Duration,
}

/// What an open-loop run measured.
#[derive(Clone, Debug, Default)]
pub struct OpenLoopReport {
    /// Requests that arrived.
    pub offered: usize,
    /// Each answered request with its latency from its scheduled arrival.
    pub samples: Vec<RequestSample>,
    /// Requests that failed (an I/O error or a wrong reply).
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// The sizes of the requests still waiting for a client thread when the drain ended.
    pub unanswered: Vec<u64>,
    /// From the first arrival to the last answer.
    pub elapsed: Duration,
}

/// A request due at `due`.
struct Arrival {
    due: Instant,
    n: u64,
}

/// The arrivals not yet taken by a client thread, and whether more will come.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Arrival>,
    closed: bool,
}

/// Offers `config.rate` requests per second for `config.duration` and measures each; a
/// reply is right if it equals `expected(n)` (or if that is `None`).
pub fn run_open_loop(
    config: &OpenLoopConfig,
    expected: impl Fn(u64) -> Option<u64> + Sync,
) -> OpenLoopReport {
    let schedule = schedule(config);
    let queue = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
    let start = Instant::now();
    let give_up = start + config.duration + config.drain;
    let results: Vec<OpenLoopReport> = thread::scope(|scope| {
        let clients: Vec<_> = (0..config.connections.max(1))
            .map(|_| {
                let queue = Arc::clone(&queue);
                let expected = &expected;
                scope.spawn(move || serve_arrivals(config, &queue, give_up, expected))
            })
            .collect();
        for (offset, n) in &schedule {
            let due = start + *offset;
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            let (lock, ready) = &*queue;
            lock.lock()
                .expect("the queue lock")
                .waiting
                .push_back(Arrival { due, n: *n });
            ready.notify_one();
        }
        let (lock, ready) = &*queue;
        lock.lock().expect("the queue lock").closed = true;
        ready.notify_all();
        clients
            .into_iter()
            .map(|client| client.join().expect("a client thread panicked"))
            .collect()
    });
    let mut report = OpenLoopReport {
        offered: schedule.len(),
        elapsed: start.elapsed(),
        ..OpenLoopReport::default()
    };
    for part in results {
        report.samples.extend(part.samples);
        report.errors += part.errors;
        report.unanswered.extend(part.unanswered);
        if report.first_error.is_none() {
            report.first_error = part.first_error;
        }
    }
    report
}

/// The arrivals: offsets from the start with exponential gaps of mean `1 / rate`, and sizes.
fn schedule(config: &OpenLoopConfig) -> Vec<(Duration, u64)> {
    let mut sampler = config.mix.sampler(0);
    let mut gaps = config.mix.sampler(1);
    let rate = config.rate.max(f64::MIN_POSITIVE);
    let mut at = 0.0f64;
    let mut arrivals = Vec::new();
    loop {
        at += -gaps.next_unit().ln() / rate;
        if at >= config.duration.as_secs_f64() {
            return arrivals;
        }
        arrivals.push((Duration::from_secs_f64(at), sampler.next_n()));
    }
}

/// One client thread: takes arrivals until the queue closes and empties, sends each on its
/// kept connection (reconnecting after a failure), and reports what it measured.
fn serve_arrivals(
    config: &OpenLoopConfig,
    queue: &(Mutex<Queue>, Condvar),
    give_up: Instant,
    expected: &(impl Fn(u64) -> Option<u64> + Sync),
) -> OpenLoopReport {
    let mut report = OpenLoopReport::default();
    let mut connection: Option<Connection> = None;
    while let Some(arrival) = next_arrival(queue) {
        if Instant::now() >= give_up {
            report.unanswered.push(arrival.n);
            continue;
        }
        let answer = match connection.take() {
            Some(kept) => Ok(kept),
            None => Connection::connect(config.addr, config.timeout),
        }
        .and_then(|mut kept| {
            let reply = kept.request(arrival.n.to_string().as_bytes())?;
            connection = Some(kept);
            Ok(reply)
        });
        let latency = arrival.due.elapsed();
        let failure = match answer {
            Ok(reply) => match expected(arrival.n) {
                Some(want) if reply != want.to_string() => {
                    Some(format!("n = {}: expected {want}, got {reply:?}", arrival.n))
                }
                _ => None,
            },
            Err(e) => Some(format!("n = {}: {e}", arrival.n)),
        };
        match failure {
            None => report.samples.push(RequestSample {
                n: arrival.n,
                latency,
            }),
            Some(why) => {
                report.errors += 1;
                report.first_error.get_or_insert(why);
            }
        }
    }
    report
}

/// The next arrival, waiting for one; `None` once the queue is closed and empty.
fn next_arrival(queue: &(Mutex<Queue>, Condvar)) -> Option<Arrival> {
    let (lock, ready) = queue;
    let mut state = lock.lock().expect("the queue lock");
    loop {
        if let Some(arrival) = state.waiting.pop_front() {
            return Some(arrival);
        }
        if state.closed {
            return None;
        }
        state = ready.wait(state).expect("the queue lock");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_come_at_the_rate_asked_for_and_repeat_for_a_seed() {
        let config = OpenLoopConfig {
            addr: "127.0.0.1:9".parse().unwrap(),
            rate: 2_000.0,
            mix: RequestMix::new(&[(10, 9), (20, 1)], 5).unwrap(),
            duration: Duration::from_secs(10),
            connections: 1,
            timeout: Duration::from_secs(1),
            drain: Duration::from_secs(1),
        };
        let arrivals = schedule(&config);
        // 20,000 expected; a Poisson count's standard deviation is its square root, ~141.
        assert!(
            (19_000..21_000).contains(&arrivals.len()),
            "{}",
            arrivals.len()
        );
        assert!(
            arrivals.windows(2).all(|w| w[0].0 <= w[1].0),
            "in time order"
        );
        let tens = arrivals.iter().filter(|a| a.1 == 10).count() as f64;
        assert!((tens / arrivals.len() as f64 - 0.9).abs() < 0.02);
        assert_eq!(
            arrivals,
            schedule(&config),
            "the same seed, the same arrivals"
        );
    }
}
