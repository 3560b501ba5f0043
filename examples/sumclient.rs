//! The load generator for `sumserver`: client threads sharing a number of requests, a new
//! connection per request as in the article (or `--keepalive`), every answer checked.
//!
//! ```text
//! cargo run --release --example sumclient -- --addr 127.0.0.1:10000 --clients 4 --requests 1000
//! ```
//!
//! Prints elapsed time, requests/s, p50/p90/p99 latency and the error count; exits with
//! status 1 if any request failed or was not sent.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ythread_suite::client::{LoadConfig, run_load};
use ythread_suite::server::{Work, parse_duration};

/// Puts a bounded load on a sum server and reports throughput and latency.
#[derive(Debug, Parser)]
#[command(name = "sumclient")]
struct Args {
    /// The server.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:10000")]
    addr: String,
    /// Client threads, each with one request in flight.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Requests in total, shared among the clients.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// The n of every request.
    #[arg(long, default_value_t = 25_000)]
    n: u64,
    /// One connection per client for all its requests (default: a new one per request).
    #[arg(long)]
    keepalive: bool,
    /// The server's task, to check the answers.
    #[arg(long, value_name = "sumn|fib", default_value = "sumn")]
    task: Work,
    /// Bound on the connect and on each read and write.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Bound on the whole run: no request starts after it.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    max_duration: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let addr = match resolve(&args.addr) {
        Ok(addr) => addr,
        Err(why) => {
            eprintln!("sumclient: {why}");
            return ExitCode::from(2);
        }
    };
    if args.clients == 0 {
        eprintln!("sumclient: --clients must be at least 1");
        return ExitCode::from(2);
    }
    let config = LoadConfig {
        addr,
        clients: args.clients,
        requests: args.requests,
        n: args.n,
        keepalive: args.keepalive,
        timeout: args.timeout,
        max_duration: args.max_duration,
        ..LoadConfig::new(addr)
    };
    let task = args.task;
    println!(
        "{} requests of {task}({}) to {addr} from {} clients, {}",
        config.requests,
        config.n,
        config.clients,
        if config.keepalive {
            "one connection per client"
        } else {
            "a new connection per request"
        }
    );
    let report = run_load(&config, |n| Some(task.expected(n)));
    println!("{report}");
    if report.errors == 0 && report.not_sent == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn resolve(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("cannot resolve --addr `{text}`: {e}"))?
        .next()
        .ok_or_else(|| format!("--addr `{text}` resolves to no address"))
}
