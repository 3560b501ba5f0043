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
//! ```text
//! cargo run --release --example http_peers                 # 10 s per server, n = 1
//! cargo run --release --example http_peers -- --seconds 5 --n 1000
//! ```

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

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
        let line = match form {
            "ythread-serve" => {
                let server = serve_ythread();
                let line = load(server.addr(), seconds, n);
                let _ = server.shutdown();
                line
            }
            axum_form => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| fail(&format!("could not start tokio: {e}")));
                let rayon_form = axum_form == "axum, rayon";
                let listener = runtime
                    .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                    .unwrap_or_else(|e| fail(&format!("could not listen: {e}")));
                let addr = listener.local_addr().expect("a bound address");
                let app = Router::new().route(
                    "/sum",
                    get(move |Query(query): Query<SumQuery>| sum_axum(query.n, rayon_form)),
                );
                runtime.spawn(async move { axum::serve(listener, app).await });
                let line = load(addr, seconds, n);
                runtime.shutdown_timeout(Duration::from_secs(5));
                line
            }
        };
        println!("| {form} | {line} |");
    }
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

fn serve_ythread() -> ythread_serve::RunningServer {
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
    Server::bind(addr, ServeConfig::default(), Executor::inline(), http)
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
