//! The one duration grammar of the workspace: every executor option (`timeout=`, `spin=`,
//! `inline_below=`), every serving option and every example's flag reads durations with
//! [`parse_duration`], so `2m` means the same everywhere.
//!
//! A whole number and one of `ns`, `us`, `ms`, `s`, `m`. A bare number is refused rather than
//! read as seconds, because `spin=50` is more likely meant as 50us than as 50 seconds, and a
//! flag's `30` is one keystroke from `30ms`.

use std::time::Duration;

/// The longest duration any option takes: anything longer is surely a mistake, and staying
/// far from `Duration::MAX` keeps every deadline computable.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

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
/// use ythread::parse_duration;
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
