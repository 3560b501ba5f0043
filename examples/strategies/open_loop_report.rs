//! The open-loop section of the report: the short requests' p99 slowdown per load offered,
//! for each default, its fifo form and the tokio peer, with the chart.

use std::fmt::Write as _;

use crate::format::{code, duration, group, rate, seconds};
use crate::open_loop::{LOADS, Point, capacity};
use crate::report::{Notes, Results};

pub(crate) fn table(out: &mut String, results: &Results, notes: &mut Notes) {
    if results.open_loop.is_empty() {
        return;
    }
    let plan = &results.plan;
    let short = plan.mix.first();
    let headers: String = LOADS.iter().map(|load| format!(" {load}% |")).collect();
    let align = "--:|".repeat(LOADS.len());
    let _ = write!(
        out,
        "## Open-loop arrivals: short requests against the load offered\n\n\
         The mix of section 3 again, but its requests arrive at random times (a Poisson \
         process) at a fixed rate, whether or not the earlier ones have been answered, as a \
         service's users send them: {} each, from up to 64 connections. The rate is a share of \
         the machine's capacity, its {} cores over the mix's mean service time ({} requests/s \
         at 100%); that leaves out what each request costs the network and both ends of it, so \
         the real load is higher than the share says. Each latency counts from the request's \
         scheduled arrival. The cells are the p99 slowdown of the ~{} requests; \"saturated\" \
         means more than 1% of them were still unanswered {} after the last arrival, or \
         failed. Every server gets the same arrivals.\n\n\
         | strategy |{headers} answered at {}% |\n\
         |---|{align}--:|\n",
        seconds(plan.open_window),
        plan.cores,
        rate(capacity(plan)),
        short.map_or_else(|| "shortest".to_owned(), |c| duration(c.target)),
        seconds(plan.open_window.max(std::time::Duration::from_secs(2))),
        LOADS[LOADS.len() - 1],
    );
    for row in &results.open_loop {
        match &row.result {
            Ok(points) => {
                let cells: String = points
                    .iter()
                    .map(|p| format!(" {} |", cell(p, notes)))
                    .collect();
                let last = points.last().map_or("-".to_owned(), |p| {
                    format!(
                        "{} of {}",
                        group(p.answered as u64),
                        group(p.offered as u64)
                    )
                });
                let _ = writeln!(out, "| {} |{cells} {last} |", code(&row.strategy));
            }
            Err(reason) => {
                let cell = notes.cell(reason);
                let cells = format!(" {cell} |").repeat(LOADS.len());
                let _ = writeln!(out, "| {} |{cells} - |", code(&row.strategy));
            }
        }
    }
    out.push_str(&format!(
        "\n![short requests' p99 slowdown against the load offered, log scale]({})\n\n",
        crate::open_loop_chart::FILE_NAME
    ));
}

/// A p99 slowdown, or why there is none.
fn cell(point: &Point, notes: &mut Notes) -> String {
    let mut text = match point.short_p99 {
        Some(p99) if p99 >= 100.0 => group(p99.round() as u64),
        Some(p99) => format!("{p99:.1}"),
        None => format!("saturated ({} unanswered)", group(point.unanswered as u64)),
    };
    if let Some(e) = point.first_error.as_deref().filter(|_| point.errors > 0) {
        let _ = write!(text, " ({} failed [{}])", point.errors, notes.number(e));
    }
    text
}
