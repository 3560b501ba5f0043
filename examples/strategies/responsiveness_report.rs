//! The responsiveness section's table: each strategy's tiny requests alone and under heavy
//! load, next to its fifo form, and the tokio peer against ythread.

use std::fmt::Write as _;

use crate::plan::{HEAVY_CLIENTS, HEAVY_MS};
use crate::report::{
    Notes, Results, code, duration, group, percent, rate, ratio_text, seconds, tokio_form,
    unavailable_row,
};
use crate::responsiveness::{self, DIRECT_BELOW, Measured};

pub(crate) fn table(out: &mut String, results: &Results, notes: &mut Notes) {
    let plan = &results.plan;
    let _ = write!(
        out,
        "## 2. Responsiveness: tiny requests while {HEAVY_CLIENTS} clients send heavy ones\n\n\
         One client sends n = 1 back to back on one connection for {}, first alone, then while \
         {HEAVY_CLIENTS} clients on their own connections send heavy requests (n = {}, ~{HEAVY_MS} \
         ms). While it runs alone, a spinning thread at nice 19 keeps each other core awake: on \
         this VM an idle core is slow to wake, which otherwise makes tiny requests faster under \
         load than alone. \"Kept\" is the loaded tiny rate as a share of the unloaded one; \
         \"p99 growth\" the loaded p99 over the unloaded p99. \"Heavy req/s\" is the heavy \
         clients' rate while the tiny client runs; the next column is the same clients alone \
         afterwards, which shows what a strategy does for heavy work when no tiny request \
         competes for the CPU.\n\n\
         Each strategy runs as configured by default, then in its fifo form \
         (the options that turn learned scheduling off: first come, first served, nothing run \
         inline, no express worker), then that form with the seed article's fix (\"n < \
         {DIRECT_BELOW} direct\": the server computes requests below that n on the handler's \
         thread and yields only heavier ones). The last column compares a default with its \
         fifo form (heavy throughput, so learning costs none) and a tokio form with the \
         ythread strategy that runs the work the same way.\n\n\
         | strategy | tiny req/s alone | p99 alone | tiny req/s loaded | p99 loaded | kept | p99 growth | heavy req/s | heavy req/s, no tiny client | compared |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
        seconds(plan.window),
        group(plan.heavy_n()),
    );
    for row in &results.responsiveness {
        match &row.result {
            Ok(m) => {
                let kept = m.kept_fraction().map_or("-".to_owned(), percent);
                let growth = m.p99_growth().map_or("-".to_owned(), ratio_text);
                let mut rate_cell = |phase: &responsiveness::Phase| {
                    let mut cell = rate(phase.requests_per_sec);
                    if let Some(e) = phase.first_error.as_deref().filter(|_| phase.errors > 0) {
                        let _ = write!(cell, " ({} failed [{}])", phase.errors, notes.number(e));
                    }
                    cell
                };
                let (alone, loaded, heavy, heavy_alone) = (
                    rate_cell(&m.alone),
                    rate_cell(&m.loaded),
                    rate_cell(&m.heavy),
                    rate_cell(&m.heavy_alone),
                );
                let _ = writeln!(
                    out,
                    "| {} | {alone} | {} | {loaded} | {} | {kept} | {growth} | {heavy} | \
                     {heavy_alone} | {} |",
                    code(&row.strategy),
                    duration(m.alone.p99),
                    duration(m.loaded.p99),
                    compared(results, &row.strategy, m),
                );
            }
            Err(reason) => unavailable_row(out, &row.strategy, notes.cell(reason), 7),
        }
    }
    out.push_str(
        "\n![tiny-request p99 under load per strategy, log scale](strategies-p99.svg)\n\n",
    );
}

/// The measurement of the row labelled `label`, if it succeeded.
pub(crate) fn measured<'a>(results: &'a Results, label: &str) -> Option<&'a Measured> {
    results
        .responsiveness
        .iter()
        .find(|row| row.strategy == label)?
        .result
        .as_ref()
        .ok()
}

/// The "compared" cell: a default against its fifo form, a tokio form against ythread.
fn compared(results: &Results, label: &str, m: &Measured) -> String {
    let heavy_ratio = |theirs: &Measured| {
        (theirs.heavy.requests_per_sec > 0.0)
            .then(|| m.heavy.requests_per_sec / theirs.heavy.requests_per_sec)
    };
    if let Some(fifo) = results.fifo_form_of(label)
        && let Some(theirs) = measured(results, &fifo.label)
        && let Some(ratio) = heavy_ratio(theirs)
    {
        return format!("heavy {ratio:.2}x the fifo form");
    }
    if let Some(counterpart) = tokio_form(label).and_then(|f| results.ythread_counterpart(f))
        && let Some(theirs) = measured(results, &counterpart.label)
    {
        let p99 = if theirs.loaded.p99.is_zero() || m.loaded.ok == 0 {
            "-".to_owned()
        } else {
            ratio_text(m.loaded.p99.as_secs_f64() / theirs.loaded.p99.as_secs_f64())
        };
        let heavy = heavy_ratio(theirs).map_or("-".to_owned(), ratio_text);
        return format!(
            "loaded p99 {p99}, heavy {heavy} {}",
            code(&counterpart.label)
        );
    }
    String::new()
}
