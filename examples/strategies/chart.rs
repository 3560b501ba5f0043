//! The chart of the throughput table as an SVG, drawn with `charts-rs`: requests/s against
//! clients, one line per strategy. charts-rs measures text with a font it embeds, so the
//! chart renders the same on a machine with no fonts installed.
//!
//! For reading at a glance: both axes are titled, the value axis starts at 0 and ends on a
//! round number split into round steps, and the legend sits in its own column to the right
//! of the plot, where it cannot cover a line.

use charts_rs::{LineChart, Position, Series};

use crate::plan::CLIENT_COUNTS;
use crate::report::{Results, group};

/// Steps of the value axis.
const Y_STEPS: usize = 5;

pub(crate) fn throughput_svg(results: &Results) -> Result<String, String> {
    let series: Vec<Series> = results
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
    let highest = series
        .iter()
        .flat_map(|s| s.data.iter().flatten().copied())
        .fold(0.0f32, f32::max);
    let clients = CLIENT_COUNTS.iter().map(|c| c.to_string()).collect();
    let mut chart = LineChart::new(series, clients);
    chart.base.title.text = format!(
        "requests/s by clients: {} requests of ~1 ms, {} cores",
        group(results.plan.requests as u64),
        results.machine.cores
    );
    chart.base.width = 1000.0;
    chart.base.height = 480.0;
    chart.base.x_axis.title = "clients (each one request at a time)".to_owned();
    chart.base.legend.position = Some(Position::Right);
    if let Some(y) = chart.y_axis_configs.first_mut() {
        y.title = Some("requests/s".to_owned());
        y.min = Some(0.0);
        y.max = Some(round_up(highest, Y_STEPS) as f32);
        y.split_number = Y_STEPS;
    }
    chart
        .svg()
        .map_err(|e| format!("could not draw the chart: {e}"))
}

/// The smallest multiple of `steps` × (1, 2 or 5 × a power of ten) at or above `value`, so
/// that each of the `steps` ticks is a round number.
fn round_up(value: f32, steps: usize) -> f64 {
    let per_step = f64::from(value.max(1.0)) / steps as f64;
    let magnitude = 10f64.powf(per_step.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= per_step)
        .unwrap_or(10.0 * magnitude);
    step * steps as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_ends_on_round_steps() {
        assert_eq!(round_up(1912.0, 5), 2500.0);
        assert_eq!(round_up(2040.0, 5), 2500.0);
        assert_eq!(round_up(930.0, 5), 1000.0);
        assert_eq!(round_up(4.0, 5), 5.0);
    }
}
