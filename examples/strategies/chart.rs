//! The chart of the throughput table as an SVG, drawn with `charts-rs`: requests/s against
//! clients, one line per strategy.
//!
//! For reading at a glance: both axes are titled, the value axis starts at 0 and ends on a
//! round number split into round steps, and the legend sits in its own column to the right
//! of the plot, where it cannot cover a line. Nine lines stay apart: each has its own colour
//! from a palette chosen to be told apart (also with the common colour-vision deficiencies),
//! and the tokio peer's lines are dashed.
//!
//! Fonts: charts-rs lays text out with the metrics of a font it embeds (Roboto) but the SVG
//! only names it, so a viewer without Roboto draws the text in another, often wider font.
//! The SVG names common sans-serif fonts after it, and the legend keeps spare room to its
//! right, so the chart stays legible on a machine with no Roboto. Embedding the font itself
//! would add some hundred kilobytes to every chart.

use charts_rs::{Color, LineChart, Position, Series};

use crate::plan::CLIENT_COUNTS;
use crate::report::{Results, group, tokio_form};

/// Steps of the value axis.
const Y_STEPS: usize = 5;

/// One colour per line, in order: distinct hues first, then darker and lighter ones.
pub(crate) const PALETTE: [&str; 10] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B",
    "#7F7F7F", "#BCBD22",
];

/// The dashes of the tokio peer's lines.
const TOKIO_DASHES: &str = "8,4";

/// Room kept right of the legend for a fallback font wider than Roboto.
const FALLBACK_ROOM: f32 = 90.0;

/// The fonts the SVG asks for: the one it was laid out with, then look-alikes.
const FONT_FAMILIES: &str =
    "Roboto, 'Helvetica Neue', Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif";

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
            let mut series = Series::new(row.strategy.clone(), rates);
            if tokio_form(&row.strategy).is_some() {
                series.stroke_dash_array = Some(TOKIO_DASHES.to_owned());
            }
            Some(series)
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
    chart.base.margin.right += FALLBACK_ROOM;
    chart.base.series.colors = PALETTE.iter().map(|&hex| Color::from(hex)).collect();
    if let Some(y) = chart.y_axis_configs.first_mut() {
        y.title = Some("requests/s".to_owned());
        y.min = Some(0.0);
        y.max = Some(round_up(highest, Y_STEPS) as f32);
        y.split_number = Y_STEPS;
    }
    let svg = chart
        .svg()
        .map_err(|e| format!("could not draw the chart: {e}"))?;
    Ok(with_fallback_fonts(&svg))
}

/// The SVG with the font it was laid out with followed by look-alikes (module docs).
fn with_fallback_fonts(svg: &str) -> String {
    svg.replace(
        r#"font-family="Roboto""#,
        &format!(r#"font-family="{FONT_FAMILIES}""#),
    )
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
