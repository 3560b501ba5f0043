//! The chart of the open-loop section: the short requests' p99 slowdown against the load
//! offered, one line per server, on a log scale (the values span a few to thousands).
//!
//! Hand-written SVG, as the p99 chart is: a log axis with round ticks and lines styled by
//! kind (solid for a default configuration, dashed for its fifo form, dotted for tokio) are
//! a few dozen lines here. A saturated point (its p99 among the unanswered requests) is drawn
//! as an open circle on the top edge, and the line stops before it. Text is measured by a
//! fixed per-character width, so the legend keeps spare room for wider fallback fonts.

use std::fmt::Write as _;

use crate::chart::PALETTE;
use crate::open_loop::{LOADS, Point};
use crate::p99_chart::escape;
use crate::report::{Results, tokio_form};

/// The file next to `strategies.md`.
pub(crate) const FILE_NAME: &str = "strategies-open-loop.svg";

const WIDTH: f64 = 1040.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 80.0;
const TOP: f64 = 60.0;
const PLOT_WIDTH: f64 = 560.0;
const PLOT_HEIGHT: f64 = 380.0;
const LEGEND_X: f64 = LEFT + PLOT_WIDTH + 40.0;

/// How a line is drawn: `stroke-dasharray`, or none for solid.
fn dashes(results: &Results, label: &str) -> Option<&'static str> {
    if tokio_form(label).is_some() {
        Some("2,4")
    } else if fifo_of(results, label).is_some() {
        Some("8,4")
    } else {
        None
    }
}

/// The default configuration a fifo form belongs to.
fn fifo_of<'a>(results: &'a Results, label: &str) -> Option<&'a str> {
    results
        .strategies
        .iter()
        .find(|s| s.label == label)
        .and_then(|s| s.fifo_of.as_deref())
}

pub(crate) fn svg(results: &Results) -> String {
    let rows: Vec<(&str, &[Point])> = results
        .open_loop
        .iter()
        .filter_map(|row| Some((row.strategy.as_str(), row.result.as_ref().ok()?.as_slice())))
        .collect();
    // One colour per family (the palette's order): a fifo form takes its default's colour.
    let families: Vec<&str> = rows
        .iter()
        .map(|&(label, _)| fifo_of(results, label).unwrap_or(label))
        .fold(Vec::new(), |mut seen, family| {
            if !seen.contains(&family) {
                seen.push(family);
            }
            seen
        });
    let colour = |label: &str| {
        let family = fifo_of(results, label).unwrap_or(label);
        let index = families.iter().position(|&f| f == family).unwrap_or(0);
        PALETTE[index % PALETTE.len()]
    };
    let values = rows
        .iter()
        .flat_map(|(_, points)| points.iter().filter_map(|p| p.short_p99));
    let low = values.clone().fold(10.0, f64::min).max(1.0).log10().floor();
    let high = values.fold(100.0, f64::max).log10().ceil().max(low + 1.0);
    let (first, last) = (f64::from(LOADS[0]), f64::from(LOADS[LOADS.len() - 1]));
    let x = |load: u32| LEFT + (f64::from(load) - first) / (last - first) * PLOT_WIDTH;
    let y = |value: f64| TOP + (high - value.max(1.0).log10()) / (high - low) * PLOT_HEIGHT;

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">short requests' p99 \
         slowdown against the load offered (open loop, log scale; lower is better)</text>\n",
        WIDTH / 2.0
    );
    axes(&mut svg, low, high, &x, &y);
    for (i, &(label, points)) in rows.iter().enumerate() {
        let stroke = colour(label);
        let dash = dashes(results, label)
            .map(|d| format!(" stroke-dasharray=\"{d}\""))
            .unwrap_or_default();
        let path: Vec<String> = points
            .iter()
            .map_while(|p| p.short_p99.map(|v| format!("{:.1},{:.1}", x(p.load), y(v))))
            .collect();
        if path.len() > 1 {
            let _ = writeln!(
                svg,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" \
                 stroke-width=\"2\"{dash}/>",
                path.join(" ")
            );
        }
        for p in points {
            let (cy, fill) = match p.short_p99 {
                Some(v) => (y(v), stroke),
                None => (TOP, "white"),
            };
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"4\" fill=\"{fill}\" \
                 stroke=\"{stroke}\" stroke-width=\"2\"/>",
                x(p.load)
            );
        }
        let ly = TOP + 10.0 + i as f64 * 22.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{LEGEND_X}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" \
             stroke=\"{stroke}\" stroke-width=\"2\"{dash}/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LEGEND_X + 30.0,
            LEGEND_X + 38.0,
            ly + 4.0,
            escape(label)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{LEGEND_X}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\">solid: default; \
         dashed: fifo form; dotted: tokio;</text>\n<text x=\"{LEGEND_X}\" y=\"{:.1}\" \
         font-size=\"11\" fill=\"#555\">open circle on top: saturated</text>\n</svg>",
        TOP + 10.0 + rows.len() as f64 * 22.0 + 8.0,
        TOP + 10.0 + rows.len() as f64 * 22.0 + 24.0
    );
    svg
}

/// The frame, the decades of the value axis and the loads of the other, with their titles.
fn axes(svg: &mut String, low: f64, high: f64, x: &impl Fn(u32) -> f64, y: &impl Fn(f64) -> f64) {
    let bottom = TOP + PLOT_HEIGHT;
    for decade in (low as i32)..=(high as i32) {
        let value = 10f64.powi(decade);
        let ty = y(value);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{value}</text>",
            LEFT + PLOT_WIDTH,
            LEFT - 8.0,
            ty + 4.0
        );
    }
    for load in LOADS {
        let tx = x(load);
        let _ = writeln!(
            svg,
            "<line x1=\"{tx:.1}\" y1=\"{TOP}\" x2=\"{tx:.1}\" y2=\"{bottom}\" stroke=\"#eee\"/>\n\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{load}%</text>",
            bottom + 18.0
        );
    }
    let _ = writeln!(
        svg,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{PLOT_WIDTH}\" height=\"{PLOT_HEIGHT}\" \
         fill=\"none\" stroke=\"#555\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">load offered, % of capacity \
         (cores / mean service time)</text>\n\
         <text transform=\"translate(22,{:.1}) rotate(-90)\" text-anchor=\"middle\">p99 \
         slowdown of the ~50 µs requests</text>",
        LEFT + PLOT_WIDTH / 2.0,
        bottom + 42.0,
        TOP + PLOT_HEIGHT / 2.0
    );
}
