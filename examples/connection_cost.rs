//! What a new connection costs the server: the sum server against the tokio peer, side by
//! side in one run, with tiny requests (n = 1) on a new connection each, as the article's
//! client sends them.
//!
//! Each server runs in a child process (this program, started again with `serve FORM`), so
//! its CPU time can be read from `/proc/PID/stat` before and after the load without counting
//! the client's. The client is the project's load client with 8 threads. Each server first
//! gets a tenth of the requests unmeasured (its threads started, its caches warm), then the
//! measured ones; the servers alternate, three rounds each.
//!
//! With `--held N`, what a *held* connection costs instead: N connections that connected and
//! sent nothing and N that sent one request each and went quiet, held open against each
//! server in turn; then the server's RSS, threads and memory maps per held connection (from
//! `/proc/PID/status` and `/proc/PID/maps`, against the server before the connections), and
//! the latency of fresh requests (a new connection each) while they are held.
//!
//! ```text
//! cargo run --release --example connection_cost              # 20,000 requests per server
//! cargo run --release --example connection_cost -- --requests 5000
//! cargo run --release --example connection_cost -- --held 8000
//! ```

#[allow(dead_code)] // the comparison's peer; this program uses one form of it
#[path = "strategies/tokio_peer.rs"]
mod tokio_peer;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ythread::Executor;
use ythread_suite::client::{LoadConfig, run_load};
use ythread_suite::server::{Server, ServerConfig, Work};

/// The servers measured, as `serve` takes them.
const FORMS: [&str; 2] = ["ythread-inline", "tokio-inline"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", form] => serve(form),
        [] => measure(20_000),
        ["--requests", count] => match count.parse() {
            Ok(count) => measure(count),
            Err(_) => fail(&format!("`{count}` is not a request count")),
        },
        ["--held", count] => match count.parse() {
            Ok(count) => held(count),
            Err(_) => fail(&format!("`{count}` is not a connection count")),
        },
        _ => fail("usage: connection_cost [--requests N | --held N]"),
    }
}

/// Child: serves on a free port, prints it, and serves until stdin closes.
fn serve(form: &str) {
    let stop = |addr: std::net::SocketAddr| {
        println!("{addr}");
        let _ = std::io::stdout().flush();
        let _ = std::io::stdin().read_line(&mut String::new());
    };
    match form {
        "ythread-inline" => {
            let server = Server::bind(ServerConfig::for_work(Work::Sumn), Executor::inline())
                .unwrap_or_else(|e| fail(&format!("could not start the sum server: {e}")))
                .spawn();
            stop(server.addr());
            let _ = server.shutdown();
        }
        "tokio-inline" => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let server = tokio_peer::TokioServer::start(tokio_peer::TokioForm::Inline, cores)
                .unwrap_or_else(|e| fail(&format!("could not start the tokio peer: {e}")));
            stop(server.addr());
            let _ = server.shutdown();
        }
        other => fail(&format!("unknown server `{other}`; one of {FORMS:?}")),
    }
}

/// Parent: each server in turn, three times, alternating; CPU per request, requests/s and
/// the latency tail.
fn measure(requests: usize) {
    println!("{requests} requests of n = 1, a new connection each, 8 client threads");
    println!("| server | requests/s | server CPU per request | p50 / p99 latency | failed |");
    println!("|---|--:|--:|--:|--:|");
    // Per server: the time its requests took and the CPU they cost, over all rounds.
    let mut totals = [(0.0f64, Duration::ZERO); FORMS.len()];
    for round in 0..ROUNDS {
        for (form, total) in FORMS.iter().zip(&mut totals) {
            let Measured {
                rate,
                cpu,
                p50,
                p99,
                failed,
            } = one(form, requests);
            println!(
                "| {form} (round {}) | {rate:.0} | {:.1} µs | {p50:.2} / {p99:.2} ms | {failed} |",
                round + 1,
                cpu.as_secs_f64() * 1e6
            );
            total.0 += requests as f64 / rate;
            total.1 += cpu;
        }
    }
    let [(ours_secs, ours_cpu), (peer_secs, peer_cpu)] = totals;
    println!(
        "\nOver the {ROUNDS} rounds, {} against {}: requests/s {:.2}x, server CPU per request \
         {:.2}x",
        FORMS[0],
        FORMS[1],
        peer_secs / ours_secs,
        ours_cpu.as_secs_f64() / peer_cpu.as_secs_f64()
    );
}

const ROUNDS: usize = 3;

struct Measured {
    rate: f64,
    cpu: Duration,
    p50: f64,
    p99: f64,
    failed: u64,
}

fn one(form: &str, requests: usize) -> Measured {
    let (child, addr) = start(form);
    let load = |requests| LoadConfig {
        clients: 8,
        requests,
        n: 1,
        keepalive: false,
        timeout: Duration::from_secs(10),
        max_duration: Duration::from_secs(120),
        ..LoadConfig::new(addr)
    };
    run_load(&load(requests / 10), |n| Some(Work::Sumn.expected(n)));
    let before = cpu_time(&child);
    let report = run_load(&load(requests), |n| Some(Work::Sumn.expected(n)));
    let used = cpu_time(&child).saturating_sub(before);
    stop(child);
    let answered = report.ok.max(1) as u32;
    let millis = |quantile| report.latency_us.value_at_quantile(quantile) as f64 / 1e3;
    Measured {
        rate: report.requests_per_sec(),
        cpu: used / answered,
        p50: millis(0.5),
        p99: millis(0.99),
        failed: report.errors,
    }
}

/// The server `form` in a child process, and its address.
fn start(form: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().expect("this program's path"))
        .args(["serve", form])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("could not start `{form}`: {e}")));
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped");
    BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap_or_else(|e| fail(&format!("`{form}` did not report its address: {e}")));
    let addr = line
        .trim()
        .parse()
        .unwrap_or_else(|_| fail(&format!("`{form}` printed `{line}`, not an address")));
    (child, addr)
}

/// Parent, `--held N`: each server in turn holds N silent and N quiet keep-alive connections.
fn held(count: usize) {
    println!(
        "{count} connections that sent nothing and {count} that sent one request each, held \
         open; fresh requests (n = 1, a new connection each) meanwhile"
    );
    println!(
        "| server | RSS per held connection | threads | maps | fresh p50 / p99 / max | fresh \
         failed |"
    );
    println!("|---|--:|--:|--:|--:|--:|");
    for form in FORMS {
        let (child, addr) = start(form);
        // One request first, so that what every server starts once is in the baseline.
        let _ = fresh_request(addr);
        let before = Usage::of(&child);
        let mut held = Vec::with_capacity(2 * count);
        for _ in 0..count {
            held.push(connect(addr));
        }
        for _ in 0..count {
            let mut stream = connect(addr);
            if ask(&mut stream).is_err() {
                fail(&format!(
                    "`{form}` did not answer a keep-alive connection's request"
                ));
            }
            held.push(stream);
        }
        // The server's own waits for first bytes end within milliseconds; a second is plenty.
        std::thread::sleep(Duration::from_secs(1));
        let during = Usage::of(&child);
        let mut latencies = Vec::with_capacity(FRESH_REQUESTS);
        let mut failed = 0;
        for _ in 0..FRESH_REQUESTS {
            match fresh_request(addr) {
                Ok(took) => latencies.push(took),
                Err(_) => failed += 1,
            }
        }
        latencies.sort();
        let at = |quantile: f64| {
            latencies
                .get(((latencies.len() as f64 * quantile) as usize).min(latencies.len().max(1) - 1))
                .map_or(f64::NAN, |took| took.as_secs_f64() * 1e3)
        };
        let per =
            |after: u64, before: u64| after.saturating_sub(before) as f64 / (2 * count) as f64;
        println!(
            "| {form} | {:.2} KiB | {} ({:+}) | {} ({:.2} each) | {:.2} / {:.2} / {:.2} ms | {failed} |",
            per(during.rss_kib, before.rss_kib),
            during.threads,
            during.threads as i64 - before.threads as i64,
            during.maps,
            per(during.maps, before.maps),
            at(0.5),
            at(0.99),
            at(1.0),
        );
        drop(held);
        stop(child);
    }
}

/// How many fresh requests are timed while the connections are held.
const FRESH_REQUESTS: usize = 500;

/// What a server process holds.
struct Usage {
    rss_kib: u64,
    threads: u64,
    maps: u64,
}

impl Usage {
    fn of(child: &Child) -> Usage {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .unwrap_or_else(|e| fail(&format!("could not read the server's status: {e}")));
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|value| value.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", child.id()))
            .map_or(0, |maps| maps.lines().count() as u64);
        Usage {
            rss_kib: field("VmRSS:"),
            threads: field("Threads:"),
            maps,
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr)
        .unwrap_or_else(|e| fail(&format!("could not connect to {addr}: {e}")));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    stream
}

/// Sends n = 1 and reads the answer's line.
fn ask(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(b"1")?;
    let mut reply = Vec::new();
    let mut byte = [0u8];
    while !reply.ends_with(b"\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        reply.push(byte[0]);
    }
    if reply == b"1\n" {
        Ok(())
    } else {
        Err(std::io::Error::other(
            String::from_utf8_lossy(&reply).into_owned(),
        ))
    }
}

/// One request on a new connection; how long it took.
fn fresh_request(addr: SocketAddr) -> std::io::Result<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    ask(&mut stream)?;
    Ok(started.elapsed())
}

/// The user + system CPU time of `child` so far.
fn cpu_time(child: &Child) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
        .unwrap_or_else(|e| fail(&format!("could not read the server's CPU time: {e}")));
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a comm field") + 2..]
        .split(' ')
        .collect();
    // utime and stime are fields 14 and 15; the first two fields precede the `)`.
    let ticks: u64 =
        fields[14 - 3].parse::<u64>().unwrap_or(0) + fields[15 - 3].parse::<u64>().unwrap_or(0);
    // SAFETY: `sysconf` reads its integer argument only.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

fn stop(mut child: Child) {
    drop(child.stdin.take());
    let _ = child.wait();
}

fn fail(why: &str) -> ! {
    eprintln!("connection_cost: {why}");
    std::process::exit(2);
}
