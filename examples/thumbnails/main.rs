//! A thumbnails HTTP service on yieldable threads: a thread per request in progress (on
//! `ythread_serve::http`), the image decode and resize yielded as a task to the strategy named
//! by `--executor`. It also answers `GET /sum?n=N` (`sumn` yielded), for load tests.
//!
//! ```text
//! cargo run --release --example thumbnails -- --executor subprocess:2,timeout=2s --addr 127.0.0.1:8080
//! curl --data-binary @photo.jpg -o thumb.png 'http://127.0.0.1:8080/thumbnail?width=160'
//! curl 'http://127.0.0.1:8080/sum?n=25000'
//! ```
//!
//! The first line on stdout is `listening on HOST:PORT` with the real port (useful with port 0).
//! SIGINT or SIGTERM stops it gracefully and it exits with status 0.
//!
//! `--decoder-limits off` leaves a decompression bomb to whatever runs the work. It is
//! refused unless that is a subprocess pool with a memory cap (`memory=`): under an
//! in-process strategy the decoder would allocate what the file declares in the server
//! itself. See docs/thumbnails.md.

mod service;
mod task;

use std::error::Error;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use ythread_executors::ExecutorConfig;
use ythread_suite::server;

use crate::service::{DEFAULT_MAX_BODY, DEFAULT_MAX_IN_FLIGHT, ServiceConfig};

/// An HTTP service that answers `POST /thumbnail?width=W` (a PNG or JPEG body) with a PNG
/// thumbnail, yielding the image work.
#[derive(Debug, Parser)]
#[command(name = "thumbnails")]
struct Args {
    /// Strategy for the image work: inline, exclusive, rayon[:N][,nice=K],
    /// subprocess[:N][,timeout=D][,memory=SIZE]... (default: $YTHREAD_EXECUTOR, else inline).
    #[arg(long, value_name = "CONFIG")]
    executor: Option<String>,
    /// Address to listen on; port 0 lets the OS pick one.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY)]
    max_body: u64,
    /// Whether the decoder enforces its own size limits. `off` is allowed only with a
    /// subprocess strategy that has a memory cap, which then is what stops a bomb.
    #[arg(long, value_name = "on|off", default_value = "on")]
    decoder_limits: Switch,
    /// Requests handled at once; more are refused with 503.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
}

/// `on` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

fn main() -> ExitCode {
    // First: in a worker process of the subprocess strategy this serves tasks and never returns.
    ythread_executors::init(
        ythread::TaskRegistry::new()
            .with(task::thumbnail)
            .with(ythread_suite::tasks::sumn),
    );
    let args = Args::parse();
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thumbnails: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &Args) -> Result<(), Box<dyn Error>> {
    server::install_signal_handlers()?;
    let strategy = match &args.executor {
        Some(text) => text.parse::<ExecutorConfig>()?,
        None => ExecutorConfig::from_env()?,
    };
    let decoder_limits = args.decoder_limits == Switch::On;
    if !decoder_limits {
        check_limits_may_be_off(&strategy)?;
    }
    if args.max_body == 0 || args.max_in_flight == 0 {
        return Err("--max-body and --max-in-flight must be at least 1".into());
    }
    let config = ServiceConfig {
        addr: args.addr,
        max_body: args.max_body,
        decoder_limits,
        max_in_flight: args.max_in_flight,
    };
    let service = service::bind(config, strategy.build()?)?.stop_on_signals()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", service.local_addr())?;
    stdout.flush()?;
    drop(stdout);
    eprintln!(
        "thumbnails: strategy {}, decoder limits {}, bodies up to {} bytes; stop with Ctrl-C",
        service.executor().describe(),
        if decoder_limits { "on" } else { "off" },
        args.max_body
    );
    eprintln!("thumbnails: {}", service.describe_caps());
    service.run()?;
    eprintln!("thumbnails: stopped");
    Ok(())
}

/// Turning the decoder's limits off hands a bomb to whatever runs the work: only a worker
/// process with a memory cap stops it without touching the server.
fn check_limits_may_be_off(strategy: &ExecutorConfig) -> Result<(), String> {
    match strategy {
        ExecutorConfig::Subprocess(settings) if settings.memory.is_some() => Ok(()),
        _ => Err(format!(
            "--decoder-limits off needs a subprocess strategy with a memory cap, such as \
             subprocess:2,timeout=2s,memory=256MiB; under `{strategy}` a decompression bomb \
             would allocate what it declares inside the server; keep the limits on"
        )),
    }
}
