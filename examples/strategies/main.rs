//! The strategy comparison: every `cpu_apply` strategy side by side in one run.
//!
//! ```text
//! cargo run --release --example strategies             # the full run, a few minutes
//! cargo run --release --example strategies -- --quick  # every count shrunk, for CI
//! ```
//!
//! Four sections, each against the real sum server over loopback TCP:
//! 1. throughput: a fixed number of ~1 ms requests from 1, 2, 4, 8 and 32 clients (the table
//!    of the yieldable-threads article);
//! 2. responsiveness: tiny requests while 8 clients send heavy ones (the fib article's `perf2`);
//! 3. crash isolation: a task that aborts the process it runs in;
//! 4. overhead: what one yield of tiny work costs.
//!
//! It prints markdown tables on stdout, shows progress on stderr, and writes
//! `strategies.md` and `strategies.svg` under `--out` (default `docs/results`). The numbers
//! are whatever this machine measures; the summary paragraph is generated from them.

mod article;
mod chart;
mod child_server;
mod crash;
mod machine;
mod overhead;
mod plan;
mod progress;
mod reading;
mod report;
mod responsiveness;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use ythread::Executor;

use crate::plan::{Plan, Strategy};
use crate::progress::Progress;
use crate::report::Results;

/// Compares the ythread strategies side by side: throughput, responsiveness, crash isolation
/// and overhead, against the sum server on loopback.
#[derive(Debug, Parser)]
#[command(name = "strategies")]
struct Args {
    /// Shrink every count and duration (for CI): finishes in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Where to write strategies.md and strategies.svg.
    #[arg(long, value_name = "DIR", default_value = "docs/results")]
    out: PathBuf,
    /// Strategies to compare, comma-separated; an item KEY=VALUE is an option of the one
    /// before it, as in `inline,rayon,nice=10,subprocess:4,timeout=5s`.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "inline,exclusive,rayon,rayon,nice=10,subprocess"
    )]
    strategies: String,
    /// Requests per throughput measurement (default 1000, each point measured 3 times; 120
    /// once with --quick).
    #[arg(long, value_name = "N")]
    requests: Option<usize>,
    /// Internal: serve the crash-isolation protocol with this strategy and print the port.
    #[arg(long, value_name = "EXECUTOR", hide = true)]
    serve_child: Option<String>,
}

fn main() -> ExitCode {
    // Subprocess workers are this program started again: they never get past this line.
    ythread_executors::init(ythread_suite::tasks::registry());
    let args = Args::parse();
    if let Some(config) = &args.serve_child {
        return child_server::serve(config);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("strategies: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Every strategy to compare with its started executor, or why it could not start.
pub(crate) type Lineup = Vec<(Strategy, Result<Executor, String>)>;

fn run(args: &Args) -> Result<(), String> {
    let strategies = plan::parse_strategies(&args.strategies)?;
    if args.requests == Some(0) {
        return Err("--requests must be at least 1".to_owned());
    }
    eprintln!("calibrating sumn to 1 ms ...");
    let plan = Plan::new(args.quick, args.requests);
    let progress = Progress::new(plan.step_count(&strategies));
    let mut results = Results::new(
        &plan,
        machine::Machine::describe(),
        command_line(),
        overhead::direct_call(&plan),
    );

    // One executor per strategy serves throughput, responsiveness and overhead, so a worker
    // pool starts once; one that cannot start is reported as unavailable in every section.
    let lineup: Lineup = strategies
        .iter()
        .map(|strategy| {
            progress.message(&format!("starting {}", strategy.label));
            let executor = strategy
                .config
                .build()
                .map_err(|e| format!("unavailable: {e}"));
            (strategy.clone(), executor)
        })
        .collect();
    results.article = article::measure(&lineup, &plan, &progress);
    for (strategy, executor) in &lineup {
        // Strategies whose work can queue behind other work are measured a second time with
        // tiny requests computed directly, the seed article's "only offload if it takes long".
        let thresholds: &[u64] = if plan::queues_work(strategy) {
            &[0, responsiveness::DIRECT_BELOW]
        } else {
            &[0]
        };
        match executor {
            Ok(executor) => {
                for &direct_below in thresholds {
                    results.responsiveness.push(responsiveness::measure(
                        executor,
                        strategy,
                        direct_below,
                        &plan,
                        &progress,
                    ));
                }
                results
                    .overhead
                    .push(overhead::measure(executor, strategy, &plan, &progress));
            }
            Err(reason) => {
                progress.skip(plan::RESPONSIVENESS_STEPS * thresholds.len() as u64 + 1);
                for &direct_below in thresholds {
                    let labelled = plan::Strategy {
                        label: responsiveness::label(strategy, direct_below),
                        config: strategy.config.clone(),
                    };
                    results
                        .responsiveness
                        .push(responsiveness::Row::failed(&labelled, reason));
                }
                results
                    .overhead
                    .push(overhead::Row::failed(strategy, reason));
            }
        }
    }
    // Stop every pool (threads or worker processes) before the crash section starts its own.
    drop(lineup);

    for strategy in &strategies {
        progress.step(&format!("crash isolation: {}", strategy.label));
        results.crash.push(crash::measure(strategy, &plan));
        progress.done();
    }
    progress.finish();
    write_outputs(&args.out, &results)
}

fn write_outputs(out: &Path, results: &Results) -> Result<(), String> {
    let markdown = report::markdown(results);
    println!("{markdown}");
    std::fs::create_dir_all(out).map_err(|e| format!("could not create {}: {e}", out.display()))?;
    let md_path = out.join("strategies.md");
    let svg_path = out.join("strategies.svg");
    std::fs::write(&md_path, &markdown)
        .map_err(|e| format!("could not write {}: {e}", md_path.display()))?;
    std::fs::write(&svg_path, chart::throughput_svg(results)?)
        .map_err(|e| format!("could not write {}: {e}", svg_path.display()))?;
    eprintln!("wrote {} and {}", md_path.display(), svg_path.display());
    Ok(())
}

/// How to repeat this run, for the report.
fn command_line() -> String {
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    let extra: Vec<String> = std::env::args().skip(1).collect();
    if extra.is_empty() {
        format!("cargo run{profile} --example strategies")
    } else {
        format!(
            "cargo run{profile} --example strategies -- {}",
            extra.join(" ")
        )
    }
}
