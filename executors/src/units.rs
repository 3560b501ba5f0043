//! The values inside executor configurations: durations (`2m`, `2s`, `500ms`, `50us`) and
//! sizes (`512MiB`, `2GiB`), parsed strictly and written in the largest unit that keeps them
//! whole, so that every written form parses back to the same value.
//!
//! One duration grammar serves every option (`timeout=`, `spin=`, `inline_below=`, the nats
//! `timeout=`): a whole number and one of `ns`, `us`, `ms`, `s`, `m`. A bare number is
//! refused rather than read as seconds, because `spin=50` is more likely meant as 50us than as
//! 50 seconds. Durations are written back in `s`, `ms`, `us` or `ns` (so `2m` reads back as
//! `120s`, the same value), which keeps the strategies' descriptions as they were.

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

/// Duration units the grammar accepts, with their length in nanoseconds.
const DURATION_UNITS: [(&str, u64); 5] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
];

/// Parses the duration grammar of every configuration option: a whole number and a unit,
/// `ns`, `us`, `ms`, `s` or `m` (`50us`, `500ms`, `2s`, `2m`), at most a year. A bare number
/// is refused: write its unit.
///
/// ```
/// use std::time::Duration;
/// use ythread_executors::parse_duration;
///
/// assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert!(parse_duration("30").is_err());
/// ```
///
/// # Errors
/// A lowercase message that quotes `text` and shows the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("`{text}` is not a duration like 2m, 2s, 500ms or 50us");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let (_, nanos_per_unit) = DURATION_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or_else(bad)?;
    let too_long =
        || format!("`{text}` is longer than a year; give a duration of at most 365 days, like 2s");
    let nanos = u128::from(n) * u128::from(*nanos_per_unit);
    if nanos > MAX_DURATION.as_nanos() {
        return Err(too_long());
    }
    // At most a year in nanoseconds fits in a u64 many times over.
    Ok(Duration::from_nanos(
        u64::try_from(nanos).map_err(|_| too_long())?,
    ))
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
