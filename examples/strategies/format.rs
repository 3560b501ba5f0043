//! How numbers read in the report: durations in the unit that suits them, rates, shares,
//! thousands separators, and table-safe text.

use std::time::Duration;

/// `trip` as a multiple of the direct call, or `None` when the floor is too small to show
/// (it would print as `0.0 ns`, and a ratio to what reads as zero means nothing).
pub(crate) fn over_floor(trip: Duration, floor_ns: f64) -> Option<String> {
    (floor_ns >= 0.05).then(|| ratio_text(trip.as_secs_f64() * 1e9 / floor_ns))
}

/// A time in fractional nanoseconds, in the unit that suits it (`0.4 ns`, `12.3 µs`).
pub(crate) fn nanos(ns: f64) -> String {
    if ns < 100.0 {
        format!("{ns:.1} ns")
    } else {
        duration(Duration::from_secs_f64(ns / 1e9))
    }
}

/// A ratio with the digits that matter: `0.45x`, `16.0x`, `9,627x`.
pub(crate) fn ratio_text(ratio: f64) -> String {
    if ratio >= 100.0 {
        format!("{}x", group(ratio.round() as u64))
    } else if ratio >= 10.0 {
        format!("{ratio:.1}x")
    } else {
        format!("{ratio:.2}x")
    }
}

/// Markdown inline code, for strategy names.
pub(crate) fn code(text: &str) -> String {
    format!("`{text}`")
}

/// A table cell must be one line, with no `|`.
pub(crate) fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('|', "/")
}

/// A duration in the unit that suits it: `850 ns`, `12.3 µs`, `1.05 ms`, `2.10 s`.
pub(crate) fn duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos < 100 {
        format!("{:.1} ns", d.as_secs_f64() * 1e9)
    } else if nanos < 1_000 {
        format!("{nanos} ns")
    } else if nanos < 1_000_000 {
        format!("{:.1} µs", nanos as f64 / 1e3)
    } else if nanos < 1_000_000_000 {
        format!("{:.2} ms", nanos as f64 / 1e6)
    } else {
        format!("{:.2} s", nanos as f64 / 1e9)
    }
}

/// A fraction as a percentage with at least two significant digits: `45%`, `3.2%`, `0.0041%`.
pub(crate) fn percent(fraction: f64) -> String {
    let value = fraction * 100.0;
    let decimals = if value >= 10.0 || value == 0.0 {
        0
    } else {
        // Two significant digits below 10%.
        (1.0 - value.log10().floor()).clamp(1.0, 6.0) as usize
    };
    format!("{value:.decimals$}%")
}

/// A window of time in seconds: `0.5 s`, `3 s`.
pub(crate) fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// A rate per second: whole numbers with thousands separators, one decimal below 100.
pub(crate) fn rate(per_sec: f64) -> String {
    if per_sec < 100.0 {
        format!("{per_sec:.1}")
    } else {
        group(per_sec.round() as u64)
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(ratio_text(0.452), "0.45x");
        assert_eq!(ratio_text(16.04), "16.0x");
        assert_eq!(ratio_text(9_627.2), "9,627x");
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(rate(12.345), "12.3");
        assert_eq!(rate(12_345.6), "12,346");
        assert_eq!(percent(0.45), "45%");
        assert_eq!(percent(0.032), "3.2%");
        assert_eq!(percent(0.000_041), "0.0041%");
        assert_eq!(duration(Duration::from_nanos(850)), "850 ns");
        assert_eq!(duration(Duration::from_nanos(47)), "47.0 ns");
        assert_eq!(duration(Duration::from_micros(12_345)), "12.35 ms");
        assert_eq!(duration(Duration::from_millis(2_100)), "2.10 s");
        assert_eq!(nanos(0.43), "0.4 ns");
        assert_eq!(nanos(12_345.0), "12.3 µs");
        let trip = Duration::from_nanos(16);
        assert_eq!(over_floor(trip, 0.5).as_deref(), Some("32.0x"));
        assert_eq!(over_floor(trip, 0.01), None);
    }
}
