//! The article's sum server on yieldable threads: a thread per request in progress (quiet
//! connections rest without one), the CPU work of every request yielded to the strategy named
//! by `--executor`.
//!
//! ```text
//! cargo run --release --example sumserver -- --executor rayon --addr 127.0.0.1:10000
//! cargo run --release --example sumclient -- --addr 127.0.0.1:10000 --clients 4
//! ```
//!
//! The first line on stdout is `listening on HOST:PORT` with the real port (useful with port 0).
//! It registers only the tasks that compute (`tasks::served_registry`): run as a worker node
//! (`YTHREAD_WORKER=nats://...`), it serves no fault-injection task (`exit_with`, ...) unless
//! `YTHREAD_FAULT_TASKS=1` asks for them, on the node and its callers alike.
//! SIGINT or SIGTERM stops it gracefully (a second one kills it) and it exits with status 0.
//! With `--stats` it then prints, on stdout, one line per task: what ran inline or was handed
//! off, the waits in line, and the costs its scheduler learned.

use std::error::Error;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ythread_executors::ExecutorConfig;
use ythread_suite::server::{self, Framing, Server, ServerConfig, Work};

/// A threaded TCP server that answers n with sumn(n) (or fib(n)), yielding the CPU work.
#[derive(Debug, Parser)]
#[command(name = "sumserver")]
struct Args {
    /// Strategy for the CPU work: inline, exclusive, rayon[:N][,nice=K],
    /// subprocess[:N][,timeout=D]..., each with [,order=shortest|fifo][,inline_below=...],
    /// or nats://HOST:PORT[,timeout=D][,subject=P] for worker nodes started with
    /// YTHREAD_WORKER=nats://HOST:PORT (default: $YTHREAD_EXECUTOR, else inline).
    #[arg(long, value_name = "CONFIG")]
    executor: Option<String>,
    /// Address to listen on; port 0 lets the OS pick one.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:10000")]
    addr: SocketAddr,
    /// What a request computes.
    #[arg(long, value_name = "sumn|fib", default_value = "sumn")]
    task: Work,
    /// Largest n served (default: about one second of work: 1000000000 for sumn, 40 for fib).
    #[arg(long, value_name = "N")]
    max_n: Option<u64>,
    /// Close a connection that sends no request for this long (e.g. 30s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = server::parse_duration)]
    idle_timeout: Duration,
    /// Compute requests with n below this directly on the connection's thread and yield only
    /// larger ones ("only offload if it takes long"); 0 yields every request.
    #[arg(long, value_name = "N", default_value_t = 0)]
    direct_below: u64,
    /// How requests are delimited: `read-once` (the article's protocol: each read is one
    /// request) or `line` (one request per line, so clients may pipeline).
    #[arg(long, value_name = "read-once|line", default_value = "read-once")]
    framing: Framing,
    /// The most connections open at once (default: derived from the fd limit). At the cap a
    /// newcomer takes the place of the connection idle longest, or is refused.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// At the cap, how long a connection must have been idle to give up its place to a
    /// newcomer (`off`: never shed; newcomers at the cap are refused).
    // A fully qualified `Option` keeps clap from treating the flag as optional: `off` is a value.
    #[arg(long, value_name = "DURATION|off", default_value = "100ms", value_parser = parse_shed)]
    shed_idle_after: std::option::Option<Duration>,
    /// The listen backlog (default: the OS maximum, net.core.somaxconn).
    #[arg(long, value_name = "N")]
    backlog: Option<u32>,
    /// After a graceful stop, print one summary line per task that ran (runs, inline and
    /// offloaded, waits, learned costs) on stdout.
    #[arg(long)]
    stats: bool,
}

fn main() -> ExitCode {
    // First: in a worker process of the subprocess strategy, or in a worker node of the nats
    // strategy (YTHREAD_WORKER=nats://...), this serves tasks and never returns.
    ythread_executors::init(ythread_suite::tasks::served_registry());
    let args = Args::parse();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sumserver: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `off`, or a duration as for `--idle-timeout`.
fn parse_shed(text: &str) -> Result<Option<Duration>, String> {
    match text.trim() {
        "off" => Ok(None),
        other => server::parse_duration(other).map(Some),
    }
}

fn serve(args: Args) -> Result<(), Box<dyn Error>> {
    // Before the strategy starts, so a signal during a slow pool start still stops us cleanly.
    server::install_signal_handlers()?;
    let strategy = match &args.executor {
        Some(text) => text.parse::<ExecutorConfig>()?,
        None => ExecutorConfig::from_env()?,
    };
    let executor = strategy.build()?;
    // The server drops its executor when it stops; keep a handle to read the metrics after.
    let stats_of = args.stats.then(|| executor.clone());
    let config = ServerConfig {
        addr: args.addr,
        work: args.task,
        max_n: args.max_n.unwrap_or(args.task.default_max_n()),
        idle_timeout: args.idle_timeout,
        direct_below: args.direct_below,
        framing: args.framing,
        max_connections: args.max_connections,
        shed_idle_after: args.shed_idle_after,
        backlog: args.backlog,
    };
    let (work, max_n, idle) = (config.work, config.max_n, config.idle_timeout);
    let server = Server::bind(config, executor)?.stop_on_signals()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", server.local_addr())?;
    stdout.flush()?;
    drop(stdout);
    eprintln!(
        "sumserver: task {work}, strategy {}, n up to {max_n}, idle timeout {idle:?}, framing \
         {}; stop with Ctrl-C",
        server.executor().describe(),
        args.framing,
    );
    eprintln!("sumserver: {}", server.describe_caps());
    server.run()?;
    match server::termination_signal() {
        Some(signal) => eprintln!("sumserver: stopped by signal {signal}"),
        None => eprintln!("sumserver: stopped"),
    }
    if let Some(executor) = stats_of {
        let metrics = executor.metrics();
        let mut stdout = std::io::stdout().lock();
        if metrics.tasks.is_empty() {
            writeln!(stdout, "no task ran")?;
        }
        for task in &metrics.tasks {
            writeln!(stdout, "{task}")?;
        }
        stdout.flush()?;
    }
    Ok(())
}
