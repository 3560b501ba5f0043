//! The results of a run and their markdown: the header, the tables and the notes. The mixed
//! section's tables are in `mixed_report`, the bars in `bars`.

use std::fmt::Write as _;

pub(crate) use crate::format::{
    code, duration, group, nanos, one_line, over_floor, percent, rate, ratio_text, seconds,
};
use crate::machine::Machine;
use crate::plan::{CALIBRATION_RUNS, CLIENT_COUNTS, HEAVY_MS, Plan, Strategy};
use crate::tokio_peer::TokioForm;
use crate::{
    article, bars, crash, learned, mixed, mixed_report, overhead, reading, responsiveness,
    responsiveness_report,
};

/// Everything one run measured.
pub(crate) struct Results {
    pub(crate) plan: Plan,
    pub(crate) machine: Machine,
    pub(crate) command: String,
    /// The ythread strategies measured: the listed ones and their fifo forms.
    pub(crate) strategies: Vec<Strategy>,
    /// A direct call of the tiny task in nanoseconds: the floor of the overhead table.
    pub(crate) direct_call_ns: f64,
    pub(crate) article: Vec<article::Row>,
    pub(crate) responsiveness: Vec<responsiveness::Row>,
    pub(crate) mixed: Vec<mixed::Row>,
    pub(crate) learned: Vec<learned::Row>,
    pub(crate) crash: Vec<crash::Row>,
    pub(crate) overhead: Vec<overhead::Row>,
    pub(crate) thumbnails: Option<crate::thumbnails::Section>,
    pub(crate) payloads: Option<crate::payloads::Section>,
    pub(crate) open_loop: Vec<crate::open_loop::Row>,
}

impl Results {
    pub(crate) fn new(
        plan: &Plan,
        machine: Machine,
        command: String,
        direct_call_ns: f64,
        strategies: Vec<Strategy>,
    ) -> Self {
        Results {
            plan: plan.clone(),
            machine,
            command,
            strategies,
            direct_call_ns,
            article: Vec::new(),
            responsiveness: Vec::new(),
            mixed: Vec::new(),
            learned: Vec::new(),
            crash: Vec::new(),
            overhead: Vec::new(),
            thumbnails: None,
            payloads: None,
            open_loop: Vec::new(),
        }
    }
}

impl Results {
    /// The fifo form of the strategy labelled `label`, if it was measured.
    pub(crate) fn fifo_form_of(&self, label: &str) -> Option<&Strategy> {
        self.strategies
            .iter()
            .find(|s| s.fifo_of.as_deref() == Some(label))
    }

    /// The ythread row a tokio form is compared with: the strategy that runs the work the
    /// same way (on the connection's own thread for inline and spawn_blocking, a pool of one
    /// thread per core for rayon).
    pub(crate) fn ythread_counterpart(&self, form: TokioForm) -> Option<&Strategy> {
        let listed = || self.strategies.iter().filter(|s| s.fifo_of.is_none());
        match form {
            TokioForm::Inline | TokioForm::SpawnBlocking => {
                listed().find(|s| !crate::plan::queues_work(s))
            }
            TokioForm::Rayon => listed()
                .find(|s| matches!(s.config, ythread_executors::ExecutorConfig::Rayon { .. })),
        }
    }
}

/// The tokio form a row label names, if it is one.
pub(crate) fn tokio_form(label: &str) -> Option<TokioForm> {
    TokioForm::ALL.into_iter().find(|f| f.label() == label)
}

/// Collects the reasons behind cells that hold no number, numbered once each.
#[derive(Default)]
pub(crate) struct Notes(Vec<String>);

impl Notes {
    /// The number of the note for `reason`, adding it if new.
    pub(crate) fn number(&mut self, reason: &str) -> usize {
        let index = match self.0.iter().position(|n| n == reason) {
            Some(index) => index,
            None => {
                self.0.push(reason.to_owned());
                self.0.len() - 1
            }
        };
        index + 1
    }

    /// A table cell with no number, pointing at the note for `reason`.
    pub(crate) fn cell(&mut self, reason: &str) -> String {
        let short = if reason.starts_with("unavailable") {
            "unavailable"
        } else {
            "failed"
        };
        format!("{short} [{}]", self.number(reason))
    }
}

pub(crate) fn markdown(results: &Results) -> String {
    let mut notes = Notes::default();
    let mut out = String::new();
    header(&mut out, results);
    throughput_table(&mut out, results, &mut notes);
    responsiveness_report::table(&mut out, results, &mut notes);
    mixed_report::mixed_table(&mut out, results, &mut notes);
    mixed_report::learned_section(&mut out, results);
    crash_table(&mut out, results, &mut notes);
    overhead_table(&mut out, results, &mut notes);
    if let Some(section) = &results.thumbnails {
        crate::thumbnails::table(&mut out, section, &mut notes);
    }
    if let Some(section) = &results.payloads {
        crate::payloads::table(&mut out, section, &mut notes);
    }
    crate::open_loop_report::table(&mut out, results, &mut notes);
    bars::section(&mut out, results);
    if !notes.0.is_empty() {
        out.push_str("Notes:\n\n");
        for (i, note) in notes.0.iter().enumerate() {
            let _ = writeln!(out, "{}. {}", i + 1, one_line(note));
        }
        out.push('\n');
    }
    out.push_str("## Reading the results\n\n");
    out.push_str(&reading::paragraphs(results));
    out
}

fn header(out: &mut String, results: &Results) {
    let (m, plan) = (&results.machine, &results.plan);
    let _ = write!(
        out,
        "# Strategy comparison\n\n\
         Generated by `{}` on {}{}.\n\n\
         - Machine: {} cores (`available_parallelism`), kernel {} (`uname -r`), {}; {} build.\n\
         - Work: `sumn(n)` with n = {} takes {} here (fastest of {CALIBRATION_RUNS} runs), the ~1 ms request \
         of the throughput table. A heavy request is n = {} (~{HEAVY_MS} ms).\n\
         - Load average (1 minute, `/proc/loadavg`): {} before the run, {} at its end (which \
         counts this run's own threads). Other work on the machine competes with the server \
         and the clients for the cores.\n\
         - Every request goes over loopback TCP to the sum server (`ythread_suite::server`), \
         its `sumn` yielded to the strategy from a yieldable thread per turn of the serving \
         layer; or to the tokio peer, the same protocol on a tokio runtime with one worker per core, its \
         `sumn` run in the async task, with `spawn_blocking`, or on a rayon pool of one \
         thread per core with a oneshot reply.\n\n",
        results.command,
        m.date,
        if plan.quick {
            " (quick run: small counts, rough numbers)"
        } else {
            ""
        },
        m.cores,
        m.kernel,
        m.cpu,
        m.build,
        group(plan.n_1ms),
        duration(plan.measured_1ms),
        group(plan.heavy_n()),
        load(m.load_before),
        load(crate::machine::load_average()),
    );
}

fn load(average: Option<f64>) -> String {
    average.map_or("unknown".to_owned(), |a| format!("{a:.2}"))
}

fn throughput_table(out: &mut String, results: &Results, notes: &mut Notes) {
    let plan = &results.plan;
    let _ = write!(
        out,
        "## 1. Throughput: {} requests of ~1 ms\n\n\
         The article's table. The clients share {} requests, each on a new connection as the \
         article's client does. Speed-up is requests/s over the same strategy with 1 client. \
         The machine has {} cores, shared by the server and the clients; 32 clients \
         oversubscribe them. {} The last column compares each tokio form's rate with the \
         ythread strategy that runs the work the same way, at the same client count.\n\n\
         | strategy | clients | requests/s | speed-up | p50 | p99 | failed | tokio vs ythread |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|\n",
        group(plan.requests as u64),
        group(plan.requests as u64),
        results.machine.cores,
        rounds_text(plan.rounds),
    );
    for row in &results.article {
        match &row.result {
            Ok(points) => {
                for point in points {
                    let speedup = row
                        .speedup(point.clients)
                        .map_or("-".to_owned(), |s| format!("{s:.2}x"));
                    let failed = match &point.first_error {
                        Some(e) if point.failed > 0 => {
                            format!("{} [{}]", point.failed, notes.number(e))
                        }
                        _ => point.failed.to_string(),
                    };
                    let versus = tokio_versus_ythread(results, &row.strategy, point);
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {speedup} | {} | {} | {failed} | {versus} |",
                        code(&row.strategy),
                        point.clients,
                        rate(point.requests_per_sec),
                        duration(point.p50),
                        duration(point.p99),
                    );
                }
            }
            Err(reason) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | | | | | |",
                    code(&row.strategy),
                    CLIENT_COUNTS.map(|c| c.to_string()).join(", "),
                    notes.cell(reason)
                );
            }
        }
    }
    out.push_str("\n![requests/s by clients, one line per strategy](strategies.svg)\n\n");
}

/// For a tokio row: its rate over its ythread counterpart's at the same client count, as
/// "0.95x `inline`"; empty for ythread rows.
fn tokio_versus_ythread(results: &Results, label: &str, point: &article::Point) -> String {
    let Some(counterpart) = tokio_form(label).and_then(|f| results.ythread_counterpart(f)) else {
        return String::new();
    };
    results
        .article
        .iter()
        .find(|row| row.strategy == counterpart.label)
        .and_then(|row| row.point(point.clients))
        .filter(|theirs| theirs.requests_per_sec > 0.0)
        .map_or(String::new(), |theirs| {
            format!(
                "{:.2}x {}",
                point.requests_per_sec / theirs.requests_per_sec,
                code(&counterpart.label)
            )
        })
}

fn rounds_text(rounds: usize) -> String {
    if rounds == 1 {
        "Each point is one measurement.".to_owned()
    } else {
        format!(
            "Each point was measured {rounds} times, the strategies taking turns so that a \
             change in the machine's background load hits all of them, and the run with the \
             median rate is shown (failures count over all runs)."
        )
    }
}

/// A row for a strategy that could not be measured: its name, the reason, `empty` blank cells.
pub(crate) fn unavailable_row(out: &mut String, strategy: &str, reason: String, empty: usize) {
    let _ = writeln!(
        out,
        "| {} | {reason} |{}",
        code(strategy),
        " |".repeat(empty)
    );
}

fn crash_table(out: &mut String, results: &Results, notes: &mut Notes) {
    let followups = results.plan.crash_followups;
    let _ = write!(
        out,
        "## 5. Crash isolation: a task that aborts the process it runs in\n\n\
         Each strategy's server runs in a child process. The client sends a plain request, \
         then one whose task calls `abort()`, then {followups} plain requests.\n\n\
         | strategy | the crash request got | server process | later requests served |\n\
         |---|---|---|--:|\n"
    );
    for row in &results.crash {
        match &row.result {
            Ok(o) => {
                let got = match &o.crash_reply {
                    Ok(reply) if reply.starts_with("error:") => {
                        format!("an error reply [{}]", notes.number(reply))
                    }
                    Ok(reply) => format!("the reply `{}`", one_line(reply)),
                    Err(e) => format!("no reply ({})", one_line(e)),
                };
                let process = match (&o.exit, o.survived) {
                    (_, true) => "kept serving".to_owned(),
                    (Some(exit), false) => format!("died ({exit})"),
                    (None, false) => "died".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {got} | {process} | {} of {} |",
                    code(&row.strategy),
                    o.served_after,
                    o.sent_after
                );
            }
            Err(reason) => unavailable_row(out, &row.strategy, notes.cell(reason), 2),
        }
    }
    out.push('\n');
}

fn overhead_table(out: &mut String, results: &Results, notes: &mut Notes) {
    let floor_ns = results.direct_call_ns;
    let _ = write!(
        out,
        "## 6. Overhead: one yield of tiny work\n\n\
         A yieldable thread yields `tiny(x)` (an add) in a loop; the median of timed batches. \
         The last column is the tiny request over TCP from section 2 (unloaded p50), the cost \
         a client sees. A strategy that runs short work inline by default shows the cost of \
         deciding to, not of a round trip.\n\n\
         | strategy | yield round trip | vs direct call | tiny request p50 over TCP |\n\
         |---|--:|--:|--:|\n\
         | direct call, no yield | {} | 1x | |\n",
        nanos(floor_ns)
    );
    for row in &results.overhead {
        let tcp = results
            .responsiveness
            .iter()
            .find(|r| r.strategy == row.strategy)
            .and_then(|r| r.result.as_ref().ok())
            .map_or(String::new(), |m| duration(m.alone.p50));
        match &row.result {
            Ok(trip) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {tcp} |",
                    code(&row.strategy),
                    duration(*trip),
                    over_floor(*trip, floor_ns).unwrap_or_else(|| "-".to_owned()),
                );
            }
            Err(reason) => unavailable_row(out, &row.strategy, notes.cell(reason), 2),
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_numbered_once_per_reason() {
        let mut notes = Notes::default();
        assert_eq!(notes.cell("unavailable: no pool"), "unavailable [1]");
        assert_eq!(notes.number("timed out"), 2);
        assert_eq!(notes.cell("unavailable: no pool"), "unavailable [1]");
        assert_eq!(notes.cell("timed out"), "failed [2]");
    }
}
