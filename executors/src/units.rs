//! The values inside executor configurations: durations (`2s`, `500ms`, `50us`) and sizes
//! (`512MiB`, `2GiB`), parsed strictly and written in the largest unit that keeps them whole,
//! so that every written form parses back to the same value.

use std::fmt;
use std::time::Duration;

/// The longest duration any option takes: anything longer is surely a mistake, and staying
/// far from `Duration::MAX` keeps every deadline computable.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A size as the configuration writes it: `512MiB`.
pub(crate) fn size_text(bytes: u64) -> String {
    struct Size(u64);
    impl fmt::Display for Size {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_size(f, self.0)
        }
    }
    Size(bytes).to_string()
}

/// Binary units of sizes, largest first.
const SIZE_UNITS: [(u64, &str); 5] = [
    (1 << 40, "TiB"),
    (1 << 30, "GiB"),
    (1 << 20, "MiB"),
    (1 << 10, "KiB"),
    (1, "B"),
];

/// Parses `512MiB`, `2GiB`, `64KiB`, `4096B`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("`{text}` is not a size like 512MiB, 2GiB or 64KiB");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let (scale, _) = SIZE_UNITS
        .iter()
        .find(|(_, name)| *name == unit)
        .ok_or_else(bad)?;
    n.checked_mul(*scale)
        .filter(|&bytes| bytes <= 1 << 50)
        .ok_or_else(|| format!("`{text}` is larger than 1024TiB; give a size like 512MiB"))
}

/// Writes a size in the largest binary unit that keeps it whole, so that it parses back.
pub(crate) fn write_size(f: &mut fmt::Formatter<'_>, bytes: u64) -> fmt::Result {
    let (scale, unit) = SIZE_UNITS
        .iter()
        .find(|(scale, _)| bytes.is_multiple_of(*scale) && bytes > 0)
        .unwrap_or(&(1, "B"));
    write!(f, "{}{unit}", bytes / scale)
}

/// Parses `2s`, `500ms`, `50us`, `100ns`, up to a year.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("`{text}` is not a duration like 2s, 500ms or 50us");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let duration = match unit {
        "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "us" => Duration::from_micros(n),
        "ns" => Duration::from_nanos(n),
        _ => return Err(bad()),
    };
    if duration > MAX_DURATION {
        return Err(format!(
            "`{text}` is longer than a year; give a duration of at most 365 days, like 2s"
        ));
    }
    Ok(duration)
}

/// Writes a duration in the largest unit that keeps it whole, so that it parses back exactly.
pub(crate) fn write_duration(f: &mut fmt::Formatter<'_>, d: Duration) -> fmt::Result {
    let nanos = d.as_nanos();
    let units = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")];
    match units
        .iter()
        .find(|(scale, _)| nanos.is_multiple_of(*scale) && nanos > 0)
    {
        Some((scale, unit)) => write!(f, "{}{unit}", nanos / scale),
        None => write!(f, "{nanos}ns"),
    }
}
