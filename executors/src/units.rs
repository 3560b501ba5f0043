//! The values inside executor configurations: durations (`2m`, `2s`, `500ms`, `50us`) and
//! sizes (`512MiB`, `2GiB`), parsed strictly and written in the largest unit that keeps them
//! whole, so that every written form parses back to the same value.
//!
//! One duration grammar serves every option (`timeout=`, `spin=`, `inline_below=`, the nats
//! `timeout=`) and the servers' flags: [`ythread::parse_duration`], re-exported here. Durations are written back in `s`, `ms`, `us` or `ns` (so `2m` reads back as
//! `120s`, the same value), which keeps the strategies' descriptions as they were.

use std::fmt;
use std::time::Duration;

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

pub use ythread::parse_duration;

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

/// A job deadline: a duration, and not zero (which would fail every job).
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!(
            "timeout `{text}` would fail every job; give a positive duration like 2s"
        )),
        d => Ok(d),
    }
}

/// A count of at least 1 for the option or strategy `what` (`recycle`, `rayon`, ...).
pub(crate) fn parse_count(text: &str, what: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err(format!("`{what}` needs a count of at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number for `{what}`")),
    }
}
