//! The strategy comparison: every `cpu_apply` strategy side by side in one run.
//!
//! ```text
//! cargo run --release --example strategies             # the full run, a few minutes
//! cargo run --release --example strategies -- --quick  # every count shrunk, for CI
//! ```
//!
//! Six sections, each against a real server over loopback TCP:
//! 1. throughput: a fixed number of ~1 ms requests from 1, 2, 4, 8 and 32 clients (the table
//!    of the yieldable-threads article), ythread's strategies and the tokio peer;
//! 2. responsiveness: tiny requests while 8 clients send heavy ones (the fib article's
//!    `perf2`), each strategy as configured by default, in its fifo form (no
//!    learned scheduling) and with tiny requests computed directly, and the tokio peer;
//! 3. mixed heavy-tailed load: slowdown of each request against its own size;
//! 4. what the learned scheduler learned: each strategy's metrics after the mixed load;
//! 5. crash isolation: a task that aborts the process it runs in;
//! 6. overhead: what one yield of tiny work costs;
//!
//! and the thumbnails HTTP service's requests/s per strategy (`thumbnails`), 1 MiB and
//! 16 MiB round trips per strategy against a raw-socket floor (`payloads`), and the mixed
//! load with open-loop arrivals at 30-90% of capacity (`open_loop`).
//!
//! A strategy's fifo form is the same strategy with the options that turn
//! learned scheduling off (see `plan::fifo_form`); it is added next to each strategy listed.
//!
//! It prints markdown tables on stdout, shows progress on stderr, and writes
//! `strategies.md` and its three charts under `--out` (default
//! `comparison/` in the build's own directory, e.g. `target/release/comparison/`, so a run
//! leaves the checkout as it was). `--update-docs` writes them to the repository's
//! `docs/results/` instead, to publish a run. The numbers are whatever this machine
//! measures; the summary paragraph is generated from them.

mod article;
mod awake;
mod bars;
mod chart;
mod child_server;
mod crash;
mod format;
mod learned;
mod machine;
mod mixed;
mod mixed_report;
mod nats_row;
mod open_loop;
mod open_loop_chart;
mod open_loop_report;
mod overhead;
mod p99_chart;
mod payloads;
mod plan;
mod progress;
mod reading;
mod report;
mod responsiveness;
mod responsiveness_report;
mod served;
mod thumbnails;
mod tokio_peer;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use ythread::Executor;

use crate::plan::{Plan, Strategy};
use crate::progress::Progress;
use crate::report::Results;
use crate::tokio_peer::TokioForm;

/// Compares the ythread strategies side by side: throughput, responsiveness, crash isolation
/// and overhead, against the sum server on loopback.
#[derive(Debug, Parser)]
#[command(name = "strategies")]
struct Args {
    /// Shrink every count and duration (for CI): finishes in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Where to write strategies.md and the charts [default: comparison/ next to this
    /// program, e.g. target/release/comparison/].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write the report and charts to the repository's docs/results/, replacing the
    /// published run.
    #[arg(long, conflicts_with = "out")]
    update_docs: bool,
    /// Strategies to compare, comma-separated; an item KEY=VALUE is an option of the one
    /// before it, as in `inline,rayon,nice=10,subprocess:4,timeout=5s`. Each is also
    /// measured in its fifo form (learned scheduling off).
    #[arg(long, value_name = "LIST", default_value = plan::DEFAULT_STRATEGIES)]
    strategies: String,
    /// Requests per throughput measurement (default 700, each point measured 3 times; 120
    /// once with --quick).
    #[arg(long, value_name = "N")]
    requests: Option<usize>,
    /// Internal: serve the crash-isolation protocol with this strategy and print the port.
    #[arg(long, value_name = "EXECUTOR", hide = true)]
    serve_child: Option<String>,
}

fn main() -> ExitCode {
    // Subprocess workers are this program started again: they never get past this line.
    ythread_executors::init(thumbnails::with_task(ythread_suite::tasks::registry()));
    if ythread_suite::echo_floor::serve_if_peer() {
        return ExitCode::SUCCESS;
    }
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
    let listed = plan::parse_strategies(&args.strategies)?;
    if args.requests == Some(0) {
        return Err("--requests must be at least 1".to_owned());
    }
    // With nats-server installed, a broker and two local nodes for a `nats` row.
    let nats = nats_row::NatsRow::start();
    // Each strategy listed, followed by its fifo form when it has one.
    let strategies: Vec<Strategy> = listed
        .iter()
        .flat_map(|s| std::iter::once(s.clone()).chain(plan::fifo_form(s)))
        .chain(nats.as_ref().map(nats_row::NatsRow::strategy))
        .collect();
    eprintln!("calibrating sumn to 1 ms ...");
    let plan = Plan::new(args.quick, args.requests);
    let progress = Progress::new(step_count(&strategies, &plan));
    let mut results = Results::new(
        &plan,
        machine::Machine::describe(),
        command_line(),
        overhead::direct_call_ns(&plan),
        strategies.clone(),
    );

    // One executor per strategy serves every section but the crash one, so a worker pool
    // starts once; one that cannot start is reported as unavailable in every section.
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

    let throughput_servers = lineup
        .iter()
        .filter(|(strategy, _)| strategy.fifo_of.is_none())
        .map(|(strategy, executor)| (strategy.label.clone(), served::sum_server(executor, 0)))
        .chain(tokio_servers(&plan))
        .collect();
    results.article = article::measure(throughput_servers, &plan, &progress);

    for (strategy, executor) in &lineup {
        for direct_below in direct_thresholds(strategy, &strategies) {
            results.responsiveness.push(responsiveness::measure(
                served::sum_server(executor, direct_below),
                responsiveness::label(strategy, direct_below),
                &plan,
                &progress,
            ));
        }
    }
    for (label, server) in tokio_servers(&plan) {
        results
            .responsiveness
            .push(responsiveness::measure(server, label, &plan, &progress));
    }

    results.mixed = on_every_server(
        &lineup,
        &plan,
        |_| true,
        |server, label| mixed::measure(server, label, &plan, &progress),
    );
    results.learned = lineup
        .iter()
        .map(|(strategy, executor)| learned::summary(strategy, executor))
        .collect();
    results.open_loop = on_every_server(&lineup, &plan, open_loop_measures, |server, label| {
        open_loop::measure(server, label, &plan, &progress)
    });

    for (strategy, executor) in &lineup {
        let row = match executor {
            Ok(executor) => overhead::measure(executor, strategy, &plan, &progress),
            Err(reason) => {
                progress.skip(1);
                overhead::Row::failed(strategy, reason)
            }
        };
        results.overhead.push(row);
    }
    results.thumbnails = Some(thumbnails::measure(&lineup, &plan, &progress));
    results.payloads = Some(payloads::measure(&lineup, &plan, &progress));
    // Stop every pool (threads or worker processes) before the crash section starts its own.
    drop(lineup);
    drop(nats);

    // A fifo form crashes as its strategy does: only the listed ones are run.
    for strategy in &listed {
        progress.step(&format!("crash isolation: {}", strategy.label));
        results.crash.push(crash::measure(strategy, &plan));
        progress.done();
    }
    progress.finish();
    write_outputs(&output_dir(args), &results)
}

/// Where this run's report goes (see the module docs).
fn output_dir(args: &Args) -> PathBuf {
    if args.update_docs {
        return Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join("results");
    }
    if let Some(out) = &args.out {
        return out.clone();
    }
    // This program is <target>/<profile>/examples/strategies.
    let build_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()));
    build_dir
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("comparison")
}

/// `measure` run on a new sum server of each strategy of `lineup` that `include` accepts,
/// then on each form of the tokio peer: a section's rows, in the report's order.
fn on_every_server<R>(
    lineup: &Lineup,
    plan: &Plan,
    include: impl Fn(&Strategy) -> bool,
    mut measure: impl FnMut(served::Started, String) -> R,
) -> Vec<R> {
    let mut rows: Vec<R> = lineup
        .iter()
        .filter(|(strategy, _)| include(strategy))
        .map(|(strategy, executor)| {
            measure(served::sum_server(executor, 0), strategy.label.clone())
        })
        .collect();
    rows.extend(
        tokio_servers(plan)
            .into_iter()
            .map(|(label, server)| measure(server, label)),
    );
    rows
}

/// Whether the open-loop section measures `strategy`: every one on this machine (the
/// defaults and their fifo forms), not the `nats` row, whose nodes share the same cores.
fn open_loop_measures(strategy: &Strategy) -> bool {
    !matches!(strategy.config, ythread_executors::ExecutorConfig::Nats(_))
}

/// The tokio peer in each form, started now.
fn tokio_servers(plan: &Plan) -> Vec<(String, served::Started)> {
    TokioForm::ALL
        .into_iter()
        .map(|form| {
            (
                form.label().to_owned(),
                served::tokio_peer(form, plan.cores),
            )
        })
        .collect()
}

/// The `direct_below` thresholds `strategy` is measured with in the responsiveness section:
/// 0 (every request yielded), and the seed article's fix for a strategy whose work can queue,
/// unless it has a fifo form (whose row shows the fix instead: the learned
/// default makes that choice itself).
fn direct_thresholds(strategy: &Strategy, strategies: &[Strategy]) -> Vec<u64> {
    let has_fifo_form = strategies
        .iter()
        .any(|s| s.fifo_of.as_deref() == Some(strategy.label.as_str()));
    if plan::queues_work(strategy) && !has_fifo_form {
        vec![0, responsiveness::DIRECT_BELOW]
    } else {
        vec![0]
    }
}

/// Every progress step of a run of `strategies` (the listed ones and their fifo forms).
fn step_count(strategies: &[Strategy], plan: &Plan) -> u64 {
    let tokio = TokioForm::ALL.len() as u64;
    let listed = strategies.iter().filter(|s| s.fifo_of.is_none()).count() as u64;
    let responsiveness_rows: u64 = strategies
        .iter()
        .map(|s| direct_thresholds(s, strategies).len() as u64)
        .sum::<u64>()
        + tokio;
    let all = strategies.len() as u64;
    let open_loop_servers =
        strategies.iter().filter(|s| open_loop_measures(s)).count() as u64 + tokio;
    article::steps((listed + tokio) as usize, plan)
        + responsiveness_rows * plan::RESPONSIVENESS_STEPS
        + (all + tokio) // mixed
        + open_loop_servers * open_loop::STEPS
        + all // overhead
        + thumbnails::steps(listed as usize)
        + payloads::steps(strategies)
        + listed // crash
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
    let p99_path = out.join(p99_chart::FILE_NAME);
    std::fs::write(&p99_path, p99_chart::svg(results))
        .map_err(|e| format!("could not write {}: {e}", p99_path.display()))?;
    let open_loop_path = out.join(open_loop_chart::FILE_NAME);
    std::fs::write(&open_loop_path, open_loop_chart::svg(results))
        .map_err(|e| format!("could not write {}: {e}", open_loop_path.display()))?;
    eprintln!(
        "wrote {}, {}, {} and {}",
        md_path.display(),
        svg_path.display(),
        p99_path.display(),
        open_loop_path.display()
    );
    Ok(())
}

/// How to repeat this run, for the report.
fn command_line() -> String {
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    // Where the report went is not part of what was measured.
    let extra: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--update-docs")
        .collect();
    if extra.is_empty() {
        format!("cargo run{profile} --example strategies")
    } else {
        format!(
            "cargo run{profile} --example strategies -- {}",
            extra.join(" ")
        )
    }
}
