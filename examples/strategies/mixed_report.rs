//! The markdown of the mixed-load section and of what each strategy's scheduler learned.

use std::fmt::Write as _;

use crate::mixed::Measured;
use crate::plan::HEAVY_CLIENTS;
use crate::report::{Notes, Results, code, duration, group, rate, seconds, unavailable_row};

pub(crate) fn mixed_table(out: &mut String, results: &Results, notes: &mut Notes) {
    let plan = &results.plan;
    let classes: Vec<String> = plan
        .mix
        .iter()
        .map(|c| {
            format!(
                "{:.1}% n = {} (~{}: {} unloaded)",
                f64::from(c.per_mille) / 10.0,
                group(c.n),
                duration(c.target),
                duration(c.service)
            )
        })
        .collect();
    let class_headers: String = plan
        .mix
        .iter()
        .map(|c| format!(" ~{} p99 |", duration(c.target)))
        .collect();
    let class_align = "--:|".repeat(plan.mix.len());
    let _ = write!(
        out,
        "## 3. Mixed heavy-tailed load: {HEAVY_CLIENTS} clients, mostly short requests\n\n\
         {HEAVY_CLIENTS} clients on kept connections send requests back to back for {}, each \
         drawing its size from a seeded mix: {}. Every server gets the same sequence. A \
         request's *slowdown* is its latency over the unloaded time of its size (a direct call, \
         fastest of several), so 1 is \"as fast as alone\"; the loopback round trip alone puts \
         the shortest requests above 1. Learned rows are each strategy's default; the last \
         column divides its mean and p99 slowdown by its fifo form's.\n\n\
         | strategy | requests/s | mean slowdown | p99 slowdown |{class_headers} against the fifo form |\n\
         |---|--:|--:|--:|{class_align}---|\n",
        seconds(plan.mix_window),
        classes.join(", "),
    );
    for row in &results.mixed {
        match &row.result {
            Ok(m) => {
                let mut requests = rate(m.requests_per_sec);
                if let Some(e) = m.first_error.as_deref().filter(|_| m.errors > 0) {
                    let _ = write!(requests, " ({} failed [{}])", m.errors, notes.number(e));
                }
                let (mean, p99) = m.slowdown.map_or(("-".to_owned(), "-".to_owned()), |s| {
                    (format!("{:.1}", s.mean), format!("{:.1}", s.p99))
                });
                let per_class: String = m
                    .class_p99
                    .iter()
                    .map(|p99| format!(" {} |", p99.map_or("-".to_owned(), duration)))
                    .collect();
                let _ = writeln!(
                    out,
                    "| {} | {requests} | {mean} | {p99} |{per_class} {} |",
                    code(&row.strategy),
                    against_fifo(results, &row.strategy, m),
                );
            }
            Err(reason) => unavailable_row(
                out,
                &row.strategy,
                notes.cell(reason),
                3 + plan.mix.len() + 1,
            ),
        }
    }
    out.push('\n');
}

/// The mixed measurement of the row labelled `label`, if it succeeded.
pub(crate) fn measured<'a>(results: &'a Results, label: &str) -> Option<&'a Measured> {
    results
        .mixed
        .iter()
        .find(|row| row.strategy == label)?
        .result
        .as_ref()
        .ok()
}

/// Mean and p99 slowdown of `label`'s row over its fifo form's: (mean ratio, p99 ratio).
pub(crate) fn ratios_to_fifo(results: &Results, label: &str) -> Option<(f64, f64)> {
    let fifo = results.fifo_form_of(label)?;
    let ours = measured(results, label)?.slowdown?;
    let theirs = measured(results, &fifo.label)?.slowdown?;
    Some((ours.mean / theirs.mean, ours.p99 / theirs.p99))
}

fn against_fifo(results: &Results, label: &str, _m: &Measured) -> String {
    ratios_to_fifo(results, label).map_or(String::new(), |(mean, p99)| {
        format!("mean {mean:.2}x, p99 {p99:.2}x")
    })
}

pub(crate) fn learned_section(out: &mut String, results: &Results) {
    out.push_str(
        "## 4. What the scheduler learned\n\n\
         Each strategy's `executor.metrics()` after sections 2 and 3 (the executor served both, \
         and section 1 before them): a header line (what waits and runs now, the learned \
         inline threshold), then one line per task as `TaskMetrics` prints itself: runs, how \
         many ran inline or were handed off, the wait in line, and the cost learned per size \
         class. The cost model is process-wide, so every strategy shows the same costs.\n\n",
    );
    for row in &results.learned {
        match &row.result {
            Ok(lines) => {
                let _ = writeln!(out, "- {}:\n\n  ```text", code(&row.strategy));
                for line in lines {
                    let _ = writeln!(out, "  {line}");
                }
                out.push_str("  ```\n\n");
            }
            Err(reason) => {
                let _ = writeln!(out, "- {}: {reason}\n", code(&row.strategy));
            }
        }
    }
}
