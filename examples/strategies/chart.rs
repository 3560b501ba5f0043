//! The chart of the throughput table as an SVG, drawn with `charts-rs`: requests/s against
//! clients, one line per strategy. charts-rs measures text with a font it embeds, so the
//! chart renders the same on a machine with no fonts installed.

use charts_rs::{LineChart, Series};

use crate::plan::CLIENT_COUNTS;
use crate::report::{Results, group};

pub(crate) fn throughput_svg(results: &Results) -> Result<String, String> {
    let series = results
        .article
        .iter()
        .filter_map(|row| {
            let points = row.result.as_ref().ok()?;
            let rates = CLIENT_COUNTS
                .iter()
                .map(|clients| {
                    points
                        .iter()
                        .find(|p| p.clients == *clients)
                        .map_or(0.0, |p| p.requests_per_sec as f32)
                })
                .collect();
            Some(Series::new(row.strategy.clone(), rates))
        })
        .collect();
    let clients = CLIENT_COUNTS.iter().map(|c| c.to_string()).collect();
    let mut chart = LineChart::new(series, clients);
    chart.base.title.text = format!(
        "requests/s by clients: {} requests of ~1 ms, {} cores",
        group(results.plan.requests as u64),
        results.machine.cores
    );
    chart.base.width = 820.0;
    chart.base.height = 460.0;
    chart
        .svg()
        .map_err(|e| format!("could not draw the chart: {e}"))
}
