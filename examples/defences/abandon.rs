//! Work for clients that left: under `subprocess:2`, a client sends a request for hours of
//! work and closes; the worker running it is killed. Bar: its CPU is freed within 100 ms of
//! the close. Then 20 clients do the same at once, and a fresh request must not wait behind
//! their work.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ythread_suite::client::request_once;

use crate::child::{ChildServer, Setup};
use crate::{Bar, ms};

/// Hours of sumn: work nobody should finish.
const ENDLESS: &[u8] = b"100000000000000";
const ROUNDS: usize = 5;
const CROWD: usize = 20;
const BOUND: Duration = Duration::from_secs(10);

pub(crate) fn run() -> Vec<Bar> {
    let server = ChildServer::start(&Setup {
        executor: "subprocess:2",
        ..Setup::default()
    });
    // A first request settles the pool.
    let _ = request_once(server.addr, b"1", BOUND);
    let mut freed = Vec::new();
    for _ in 0..ROUNDS {
        if let Some(took) = one_abandoned(&server) {
            freed.push(took);
        }
    }
    let slowest = freed.iter().max().copied();
    // The crowd: all leave at once; a fresh request comes right after.
    let crowd: Vec<TcpStream> = (0..CROWD)
        .filter_map(|_| {
            let mut stream = TcpStream::connect(server.addr).ok()?;
            stream.write_all(ENDLESS).ok()?;
            Some(stream)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    drop(crowd);
    let started = Instant::now();
    let fresh = request_once(server.addr, b"25000", BOUND);
    let fresh_took = started.elapsed();
    println!(
        "## Abandoned work (subprocess:2, requests for hours of work, then the client closes)\n"
    );
    println!(
        "Worker CPU freed after the close, {ROUNDS} rounds: {}. After {CROWD} such clients left \
         at once, a fresh request took {} ({}).\n",
        freed.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", "),
        ms(fresh_took),
        match &fresh {
            Ok(reply) => format!("reply {reply}"),
            Err(e) => format!("failed: {e}"),
        }
    );
    vec![
        Bar {
            what: "abandoned n = 10^14 under subprocess:2: the worker's CPU is freed within 100 ms of the close",
            measured: format!(
                "slowest of {} rounds {}",
                freed.len(),
                slowest.map_or("never".to_owned(), ms)
            ),
            met: freed.len() == ROUNDS && slowest.is_some_and(|s| s < Duration::from_millis(100)),
        },
        Bar {
            what: "after 20 abandoned requests, a fresh request is answered at once",
            measured: format!(
                "{} ({})",
                ms(fresh_took),
                if fresh.is_ok() { "answered" } else { "failed" }
            ),
            met: fresh.is_ok() && fresh_took < Duration::from_millis(100),
        },
    ]
}

/// Sends endless work, waits until a worker burns CPU on it, closes, and times how long
/// until that worker is gone.
fn one_abandoned(server: &ChildServer) -> Option<Duration> {
    let before = cpu_by_worker(server);
    let mut stream = TcpStream::connect(server.addr).ok()?;
    stream.write_all(ENDLESS).ok()?;
    let deadline = Instant::now() + BOUND;
    let busy = loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = cpu_by_worker(server);
        // A worker started since `before` (a replacement) counts from zero.
        let ticks_before = |pid: u32| {
            before
                .iter()
                .find(|(p, _)| *p == pid)
                .map_or(0, |(_, t)| *t)
        };
        if let Some(&(pid, _)) = now
            .iter()
            .find(|(pid, ticks)| *ticks > ticks_before(*pid) + 1)
        {
            break pid;
        }
        if Instant::now() > deadline {
            return None;
        }
    };
    drop(stream);
    let closed = Instant::now();
    while is_running(busy) {
        if closed.elapsed() > BOUND {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Some(closed.elapsed())
}

/// Each worker's CPU ticks so far.
fn cpu_by_worker(server: &ChildServer) -> Vec<(u32, u64)> {
    server
        .workers()
        .into_iter()
        .filter_map(|pid| Some((pid, cpu_ticks(pid)?)))
        .collect()
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Whether `pid` still runs (a killed worker not yet reaped shows as a zombie: not running).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rfind(')')
                .and_then(|end| stat.get(end + 2..end + 3))
                .map(|s| s != "Z")
        })
        .unwrap_or(false)
}
