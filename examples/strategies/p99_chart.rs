//! The chart of the responsiveness section: tiny-request p99 under load, one bar per row, on
//! a log scale (the values span 20 µs to hundreds of ms), with the unloaded p99 as a tick.
//!
//! Hand-written SVG rather than charts-rs: a log axis whose ticks read as durations (10 µs,
//! 1 ms, 100 ms) and bars coloured by kind (default configuration, fifo form, direct
//! below a threshold, tokio) are a few dozen lines here and awkward to coax out of a chart
//! library. Text is measured by a fixed per-character width, so very long labels may crowd.

use std::fmt::Write as _;
use std::time::Duration;

use crate::format::duration;
use crate::plan::HEAVY_CLIENTS;
use crate::report::{Results, tokio_form};

/// The file next to `strategies.md`.
pub(crate) const FILE_NAME: &str = "strategies-p99.svg";

const WIDTH: f64 = 1040.0;
const LABEL_WIDTH: f64 = 420.0;
const RIGHT_MARGIN: f64 = 80.0;
const TOP: f64 = 82.0;
const ROW: f64 = 24.0;
const BAR: f64 = 15.0;
const AXIS_SPACE: f64 = 60.0;

/// Colours of the kinds of row, with their legend text.
const KINDS: [(&str, &str); 4] = [
    ("#3b6fb6", "ythread, default configuration"),
    ("#d08c2e", "ythread, fifo form"),
    ("#6aa84f", "ythread, tiny requests computed directly"),
    ("#8e5ea2", "tokio"),
];

fn kind(results: &Results, label: &str) -> usize {
    if tokio_form(label).is_some() {
        3
    } else if label.contains(" direct") {
        2
    } else if results
        .strategies
        .iter()
        .any(|s| s.label == label && s.fifo_of.is_some())
    {
        1
    } else {
        0
    }
}

pub(crate) fn svg(results: &Results) -> String {
    let rows: Vec<(&str, Duration, Duration)> = results
        .responsiveness
        .iter()
        .filter_map(|row| {
            let m = row.result.as_ref().ok()?;
            (m.loaded.ok > 0).then_some((row.strategy.as_str(), m.loaded.p99, m.alone.p99))
        })
        .collect();
    // Whole decades around the data, at least 10 µs to 10 ms.
    let micros = |d: Duration| (d.as_secs_f64() * 1e6).max(1.0);
    let low = rows
        .iter()
        .map(|&(_, loaded, alone)| micros(loaded).min(micros(alone)))
        .fold(10.0, f64::min)
        .log10()
        .floor();
    let high = rows
        .iter()
        .map(|&(_, loaded, alone)| micros(loaded).max(micros(alone)))
        .fold(10_000.0, f64::max)
        .log10()
        .ceil();
    let plot_width = WIDTH - LABEL_WIDTH - RIGHT_MARGIN;
    let x = |d: Duration| LABEL_WIDTH + (micros(d).log10() - low) / (high - low) * plot_width;
    let height = TOP + rows.len() as f64 * ROW + AXIS_SPACE;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">tiny-request p99 while \
         {HEAVY_CLIENTS} clients send ~20 ms requests (log scale; shorter is better)</text>\n",
        WIDTH / 2.0
    );
    legend(&mut svg);
    let plot_bottom = TOP + rows.len() as f64 * ROW;
    for decade in (low as i32)..=(high as i32) {
        let d = Duration::from_secs_f64(10f64.powi(decade) / 1e6);
        let tx = x(d);
        let _ = writeln!(
            svg,
            "<line x1=\"{tx:.1}\" y1=\"{TOP}\" x2=\"{tx:.1}\" y2=\"{plot_bottom}\" \
             stroke=\"#ddd\"/>\n<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            plot_bottom + 16.0,
            tick_label(d)
        );
    }
    // The bars the library must meet (see `bars`): rayon's p99 ≤ 1 ms, subprocess's ≤ 2 ms.
    for (bar, text) in [(1, "rayon bar"), (2, "subprocess bar")] {
        let bx = x(Duration::from_millis(bar));
        let _ = writeln!(
            svg,
            "<line x1=\"{bx:.1}\" y1=\"{:.1}\" x2=\"{bx:.1}\" y2=\"{plot_bottom}\" \
             stroke=\"#c0392b\" stroke-dasharray=\"4 3\"/>\n<text x=\"{bx:.1}\" y=\"{:.1}\" \
             font-size=\"10\" fill=\"#c0392b\" text-anchor=\"{}\">{text} ≤ {bar} ms</text>",
            TOP - 6.0,
            TOP - 8.0,
            if bar == 1 { "end" } else { "start" }
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">p99 latency of n = 1 under load \
         (bar) and alone (black tick)</text>",
        LABEL_WIDTH + plot_width / 2.0,
        plot_bottom + 40.0
    );
    for (i, &(label, loaded, alone)) in rows.iter().enumerate() {
        let top = TOP + i as f64 * ROW + (ROW - BAR) / 2.0;
        let mid = top + BAR / 2.0;
        let colour = KINDS[kind(results, label)].0;
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{LABEL_WIDTH}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{BAR}\" \
             fill=\"{colour}\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>\n\
             <line x1=\"{ax:.1}\" y1=\"{:.1}\" x2=\"{ax:.1}\" y2=\"{:.1}\" stroke=\"black\" \
             stroke-width=\"2\"/>",
            LABEL_WIDTH - 8.0,
            mid + 4.0,
            escape(label),
            (x(loaded) - LABEL_WIDTH).max(1.0),
            x(loaded) + 4.0,
            mid + 4.0,
            duration(loaded),
            top - 2.0,
            top + BAR + 2.0,
            ax = x(alone),
        );
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{LABEL_WIDTH}\" y1=\"{TOP}\" x2=\"{LABEL_WIDTH}\" y2=\"{plot_bottom}\" \
         stroke=\"#555\"/>\n</svg>"
    );
    svg
}

/// The legend on its own line under the title, so it never covers a bar.
fn legend(svg: &mut String) {
    let mut lx = 20.0;
    for (colour, text) in KINDS {
        let _ = writeln!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"38\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"48\">{text}</text>",
            lx + 16.0
        );
        // About 6.5 px a character at 12 px.
        lx += 16.0 + text.len() as f64 * 6.5 + 20.0;
    }
}

/// A decade as a round duration: `10 µs`, `1 ms`, `100 ms`, `1 s`.
fn tick_label(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1_000.0 {
        format!("{micros:.0} µs")
    } else if micros < 1_000_000.0 {
        format!("{:.0} ms", micros / 1e3)
    } else {
        format!("{:.0} s", micros / 1e6)
    }
}

/// `text` safe inside SVG text.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_as_round_durations() {
        assert_eq!(tick_label(Duration::from_micros(10)), "10 µs");
        assert_eq!(tick_label(Duration::from_millis(1)), "1 ms");
        assert_eq!(tick_label(Duration::from_millis(100)), "100 ms");
        assert_eq!(tick_label(Duration::from_secs(1)), "1 s");
        assert_eq!(
            escape("rayon, n < 1000 direct"),
            "rayon, n &lt; 1000 direct"
        );
    }
}
