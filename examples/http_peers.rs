//! HTTP requests/s and tail latency of `ythread-serve`'s HTTP/1.1 beside axum, with `wrk`
//! (Debian package `wrk`: `apt-get install -y wrk`).
//!
//! Three servers answer `GET /sum?n=N` with `sumn(N)`, one after another in this process,
//! each loaded by `wrk -t2 -c256` for the same time:
//! - `ythread-serve`: the serving layer's `http` module, the work yielded to the inline
//!   strategy (a turn per request on a reused yieldable thread);
//! - `axum, spawn_blocking`: axum on tokio's multi-threaded runtime, the work in
//!   `tokio::task::spawn_blocking`;
//! - `axum, rayon`: the same, the work on rayon's global pool, awaited through a oneshot.
//!
//! With `--probe`, the tail behind long work instead: while 8 keep-alive connections send
//! requests of about 20 ms of work back to back, a probe sends `GET /sum?n=1` 200 times a
//! second on a connection of its own, and its latencies are reported; the serving layer's
//! work goes to `rayon:1` there (one thread for the work; the learned scheduler runs the
//! probe's tiny work inline), against axum's `spawn_blocking` and rayon forms.
//!
//! ```text
//! cargo run --release --example http_peers                 # 10 s per server, n = 1
//! cargo run --release --example http_peers -- --seconds 5 --n 1000
//! cargo run --release --example http_peers -- --probe
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use ythread::{Executor, Yielder};
use ythread_serve::http::{Body, Http, Request, Response};
use ythread_serve::{ServeConfig, Server};
use ythread_suite::tasks::sumn;

/// The servers compared, in the order they run.
const FORMS: [&str; 3] = ["ythread-serve", "axum, spawn_blocking", "axum, rayon"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seconds = 10u64;
    let mut n = 1u64;
    if args == ["--probe"] {
        return probe_all();
    }
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().and_then(|value| value.parse().ok());
        match (flag.as_str(), value) {
            ("--seconds", Some(value)) => seconds = value,
            ("--n", Some(value)) => n = value,
            _ => fail("usage: http_peers [--seconds S] [--n N]"),
        }
    }
    println!("wrk -t2 -c256 -d{seconds}s on GET /sum?n={n}, each server in turn, in this process");
    println!("| server | requests/s | p50 | p99 | errors |");
    println!("|---|--:|--:|--:|--:|");
    for form in FORMS {
        let line = with_server(form, Executor::inline(), |addr| load(addr, seconds, n));
        println!("| {form} | {line} |");
    }
}

/// Runs `measure` against the server `form` (the serving layer's work going to `executor`).
fn with_server<T>(form: &str, executor: Executor, measure: impl FnOnce(SocketAddr) -> T) -> T {
    if form == "ythread-serve" {
        let server = serve_ythread(executor);
        let outcome = measure(server.addr());
        let _ = server.shutdown();
        return outcome;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("could not start tokio: {e}")));
    let rayon_form = form == "axum, rayon";
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| fail(&format!("could not listen: {e}")));
    let addr = listener.local_addr().expect("a bound address");
    let app = Router::new().route(
        "/sum",
        get(move |Query(query): Query<SumQuery>| sum_axum(query.n, rayon_form)),
    );
    runtime.spawn(async move { axum::serve(listener, app).await });
    let outcome = measure(addr);
    runtime.shutdown_timeout(Duration::from_secs(5));
    outcome
}

/// `--probe`: each server in turn, the probe's latencies behind 8 clients of long work.
fn probe_all() {
    let n_long = calibrate(Duration::from_millis(20));
    println!(
        "8 keep-alive clients sending GET /sum?n={n_long} (about 20 ms of work) back to back; \
         a probe of GET /sum?n=1 200 times a second for {PROBE_SECONDS} s"
    );
    println!("| server | probes | p50 | p99 | max | long requests answered |");
    println!("|---|--:|--:|--:|--:|--:|");
    for form in FORMS {
        let executor = if form == "ythread-serve" {
            "rayon:1"
                .parse::<ythread_executors::ExecutorConfig>()
                .and_then(|config| config.build())
                .unwrap_or_else(|e| fail(&format!("could not start rayon:1: {e}")))
        } else {
            Executor::inline()
        };
        let label = if form == "ythread-serve" {
            "ythread-serve, rayon:1"
        } else {
            form
        };
        let (mut latencies, long) = with_server(form, executor, |addr| probe(addr, n_long));
        latencies.sort();
        let at = |quantile: f64| {
            let index = ((latencies.len() as f64 * quantile) as usize).min(latencies.len() - 1);
            latencies[index].as_secs_f64() * 1e3
        };
        println!(
            "| {label} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {long} |",
            latencies.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
}

/// How long the probe runs.
const PROBE_SECONDS: u64 = 5;

/// The `n` whose `sumn` takes about `target` here.
fn calibrate(target: Duration) -> u64 {
    let n = 10_000_000;
    let started = Instant::now();
    std::hint::black_box(sumn.call(n));
    let took = started.elapsed().max(Duration::from_micros(1));
    (n as f64 * target.as_secs_f64() / took.as_secs_f64()) as u64
}

/// The probe's latencies, and how many long requests were answered meanwhile.
fn probe(addr: SocketAddr, n_long: u64) -> (Vec<Duration>, u64) {
    let mut probe = connect(addr);
    // The learned scheduler's first look at a tiny request, outside the measurement.
    for _ in 0..50 {
        get_sum(&mut probe, 1).unwrap_or_else(|e| fail(&format!("a warm-up probe: {e}")));
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let long: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut connection = connect(addr);
                    let mut answered = 0u64;
                    while !stop.load(Ordering::Relaxed) && get_sum(&mut connection, n_long).is_ok()
                    {
                        answered += 1;
                    }
                    answered
                })
            })
            .collect();
        // Let the long requests fill the server first.
        std::thread::sleep(Duration::from_millis(200));
        let mut latencies = Vec::new();
        let started = Instant::now();
        let mut next = started;
        while started.elapsed() < Duration::from_secs(PROBE_SECONDS) {
            next += Duration::from_millis(5);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            let sent = Instant::now();
            match get_sum(&mut probe, 1) {
                Ok(()) => latencies.push(sent.elapsed()),
                Err(e) => fail(&format!("a probe failed: {e}")),
            }
        }
        stop.store(true, Ordering::Relaxed);
        let long = long
            .into_iter()
            .map(|client| client.join().unwrap_or(0))
            .sum();
        (latencies, long)
    })
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream =
        TcpStream::connect(addr).unwrap_or_else(|e| fail(&format!("could not connect: {e}")));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    BufReader::new(stream)
}

/// One `GET /sum?n=N` on a keep-alive connection, its response read whole.
fn get_sum(connection: &mut BufReader<TcpStream>, n: u64) -> std::io::Result<()> {
    write!(
        connection.get_mut(),
        "GET /sum?n={n} HTTP/1.1\r\nHost: peers\r\n\r\n"
    )?;
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if connection.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    connection.read_exact(&mut body)
}

#[derive(serde::Deserialize)]
struct SumQuery {
    n: u64,
}

async fn sum_axum(n: u64, rayon_form: bool) -> String {
    let total = if rayon_form {
        let (done, answer) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let _ = done.send(sumn.call(n));
        });
        answer.await.unwrap_or(0)
    } else {
        tokio::task::spawn_blocking(move || sumn.call(n))
            .await
            .unwrap_or(0)
    };
    format!("{total}\n")
}

fn serve_ythread(executor: Executor) -> ythread_serve::RunningServer {
    let http = Http::new(
        |y: &Yielder<'_>, request: &Request, _body: &mut Body<'_, '_>| {
            let n = request
                .query_value("n")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            match y.apply(sumn, n) {
                Ok(total) => Response::text(200, total.to_string()),
                Err(e) => Response::text(503, e.to_string()),
            }
        },
    );
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    Server::bind(addr, ServeConfig::default(), executor, http)
        .unwrap_or_else(|e| fail(&format!("could not start the server: {e}")))
        .spawn()
}

/// Runs wrk against `addr` and returns the table cells: requests/s, p50, p99, errors.
fn load(addr: SocketAddr, seconds: u64, n: u64) -> String {
    let output = Command::new("wrk")
        .args(["-t2", "-c256", &format!("-d{seconds}s"), "--latency"])
        .arg(format!("http://{addr}/sum?n={n}"))
        .output()
        .unwrap_or_else(|e| {
            fail(&format!(
                "could not run wrk ({e}); install it (Debian: apt-get install -y wrk)"
            ))
        });
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .map_or("?".to_owned(), |rest| {
                rest.split_whitespace().next().unwrap_or("?").to_owned()
            })
    };
    let errors = text
        .lines()
        .find(|line| line.contains("Socket errors") || line.contains("Non-2xx"))
        .map_or("0".to_owned(), |line| line.trim().to_owned());
    format!(
        "{} | {} | {} | {errors}",
        field("Requests/sec:"),
        field("50%"),
        field("99%")
    )
}

fn fail(why: &str) -> ! {
    eprintln!("http_peers: {why}");
    std::process::exit(2);
}
