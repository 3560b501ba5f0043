//! [`ServeConfig`]: the serving layer's limits, as a builder and as one line of text.
//!
//! The text form is a comma-separated list of `key=value` options, in the style of the
//! executors' configuration (`rayon:4,nice=5`): `idle_timeout=30s,max_connections=2000`. Any
//! option may be left out for its default; `default` (or nothing) is the default
//! configuration. [`ServeConfig`]'s `Display` writes every option, and parsing that gives the
//! same configuration back. A bad key or value is refused with the valid forms.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Duration;

/// By default a connection idle for less than this is never shed. A client's first request
/// leaves with the last packet of its handshake, so a real client is busy within a moment of
/// being accepted, whatever the network's round trip; one that sent nothing for 100 ms is
/// holding a place without using it. Much longer, and a steady flood keeps every place
/// younger than the threshold, so newcomers are refused instead of making room.
pub const DEFAULT_SHED_IDLE_AFTER: Duration = Duration::from_millis(100);

/// How long in-flight turns may finish after a stop unless told otherwise.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// The options of the text form, for error messages.
const VALID_FORMS: &str = "default, or KEY=VALUE options separated by commas: \
     max_connections=N|auto, max_threads=N|auto, idle_timeout=DURATION, turn_deadline=DURATION, \
     shed_idle_after=DURATION|off, backlog=N|auto, write_timeout=DURATION, \
     stop_grace=DURATION (durations like 30s, 500ms, 50us or 2m)";

/// The limits of a [`Server`](crate::Server); every one has a default.
///
/// ```
/// use std::time::Duration;
/// use ythread_serve::ServeConfig;
///
/// let config = ServeConfig::default()
///     .max_connections(2_000)
///     .idle_timeout(Duration::from_secs(10));
/// let text = config.to_string();
/// assert_eq!(text.parse::<ServeConfig>().unwrap(), config);
/// assert!("idle_timeout=soon".parse::<ServeConfig>().unwrap_err().to_string().contains("30s"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    max_connections: Option<usize>,
    max_threads: Option<usize>,
    idle_timeout: Duration,
    turn_deadline: Duration,
    shed_idle_after: Option<Duration>,
    backlog: Option<u32>,
    write_timeout: Duration,
    stop_grace: Duration,
}

impl Default for ServeConfig {
    /// The cap and backlog derived from the OS limits, 30 s idle timeout, turn deadline and
    /// write timeout, shedding after [`DEFAULT_SHED_IDLE_AFTER`], a 5 s stop grace.
    fn default() -> Self {
        ServeConfig {
            max_connections: None,
            max_threads: None,
            idle_timeout: Duration::from_secs(30),
            turn_deadline: Duration::from_secs(30),
            shed_idle_after: Some(DEFAULT_SHED_IDLE_AFTER),
            backlog: None,
            write_timeout: Duration::from_secs(30),
            stop_grace: DEFAULT_STOP_GRACE,
        }
    }
}

impl ServeConfig {
    /// The most connections open at once; by default derived from the fd limit (see
    /// [`ConnectionLimits`](crate::ConnectionLimits)). A newcomer at the cap takes the place
    /// of the connection idle longest, or is refused with the protocol's busy reply.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// The most threads serving turns at once (acceptors and handlers); by default derived
    /// from the thread and memory-map limits (see
    /// [`ConnectionLimits::max_threads`](crate::ConnectionLimits::max_threads)). A request
    /// that would need another is refused with the protocol's busy reply.
    pub fn max_threads(mut self, max: usize) -> Self {
        self.max_threads = Some(max);
        self
    }

    /// A connection resting with no request for this long is sent the protocol's
    /// [`idle`](crate::Protocol::idle) bytes and closed.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// A turn's reads must be done within this of its first byte's arrival, however the
    /// request is trickled; the read that passes it fails with `TimedOut`.
    pub fn turn_deadline(mut self, deadline: Duration) -> Self {
        self.turn_deadline = deadline;
        self
    }

    /// At the cap, how long a connection must have been idle to be shed for a newcomer;
    /// `None` never sheds (newcomers at the cap are refused).
    pub fn shed_idle_after(mut self, after: Option<Duration>) -> Self {
        self.shed_idle_after = after;
        self
    }

    /// The listen backlog; by default the OS maximum (`net.core.somaxconn`).
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = Some(backlog);
        self
    }

    /// Each write may wait this long for a client that does not read; then it fails.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How long turns in progress may finish after a stop before they are cancelled.
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// The connection cap, if one is set (else it is derived from the OS limits).
    pub fn configured_max_connections(&self) -> Option<usize> {
        self.max_connections
    }

    /// The thread cap, if one is set (else it is derived from the OS limits).
    pub fn configured_max_threads(&self) -> Option<usize> {
        self.max_threads
    }

    /// The idle timeout.
    pub fn configured_idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The turn deadline.
    pub fn configured_turn_deadline(&self) -> Duration {
        self.turn_deadline
    }

    /// How idle a connection must be to be shed at the cap, if ever.
    pub fn configured_shed_idle_after(&self) -> Option<Duration> {
        self.shed_idle_after
    }

    /// The listen backlog, if one is set.
    pub fn configured_backlog(&self) -> Option<u32> {
        self.backlog
    }

    /// The write timeout.
    pub fn configured_write_timeout(&self) -> Duration {
        self.write_timeout
    }

    /// The stop grace.
    pub fn configured_stop_grace(&self) -> Duration {
        self.stop_grace
    }

    /// Refuses settings that cannot work.
    ///
    /// # Errors
    /// `InvalidInput`, naming the setting and what to give instead.
    pub fn validate(&self) -> io::Result<()> {
        let zero = |what: &str, instead: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what} is zero; {instead}"),
            ))
        };
        if self.idle_timeout.is_zero() {
            return zero(
                "the idle timeout",
                "give it a positive duration such as 30s",
            );
        }
        if self.turn_deadline.is_zero() {
            return zero(
                "the turn deadline",
                "give it a positive duration such as 30s",
            );
        }
        if self.write_timeout.is_zero() {
            return zero(
                "the write timeout",
                "give it a positive duration such as 30s",
            );
        }
        if self.max_connections == Some(0) {
            return zero(
                "max connections",
                "allow at least one, or leave it unset to derive it from the fd limit",
            );
        }
        if self.max_threads == Some(0) {
            return zero(
                "max threads",
                "allow at least one, or leave it unset to derive it from the thread and \
                 memory-map limits",
            );
        }
        if self.backlog == Some(0) {
            return zero(
                "the listen backlog",
                "give a positive length, or leave it unset for the OS maximum",
            );
        }
        Ok(())
    }
}

impl fmt::Display for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("max_connections=")?;
        match self.max_connections {
            Some(max) => write!(f, "{max}")?,
            None => f.write_str("auto")?,
        }
        f.write_str(",max_threads=")?;
        match self.max_threads {
            Some(max) => write!(f, "{max}")?,
            None => f.write_str("auto")?,
        }
        write!(f, ",idle_timeout={}", DurationText(self.idle_timeout))?;
        write!(f, ",turn_deadline={}", DurationText(self.turn_deadline))?;
        f.write_str(",shed_idle_after=")?;
        match self.shed_idle_after {
            Some(after) => write!(f, "{}", DurationText(after))?,
            None => f.write_str("off")?,
        }
        f.write_str(",backlog=")?;
        match self.backlog {
            Some(backlog) => write!(f, "{backlog}")?,
            None => f.write_str("auto")?,
        }
        write!(f, ",write_timeout={}", DurationText(self.write_timeout))?;
        write!(f, ",stop_grace={}", DurationText(self.stop_grace))
    }
}

/// The error of parsing a [`ServeConfig`]: what was wrong, and the valid forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl FromStr for ServeConfig {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, ConfigError> {
        parse(text.trim())
            .and_then(|config| {
                config
                    .validate()
                    .map(|()| config)
                    .map_err(|e| e.to_string())
            })
            .map_err(|why| {
                ConfigError(format!(
                    "invalid serving configuration `{text}`: {why}; valid forms: {VALID_FORMS}"
                ))
            })
    }
}

fn parse(text: &str) -> Result<ServeConfig, String> {
    let mut config = ServeConfig::default();
    if text.is_empty() || text == "default" {
        return Ok(config);
    }
    let mut seen = Vec::new();
    for option in text.split(',') {
        let (key, value) = option
            .split_once('=')
            .map(|(key, value)| (key.trim(), value.trim()))
            .ok_or_else(|| format!("option `{}` is not KEY=VALUE", option.trim()))?;
        if seen.contains(&key) {
            return Err(format!("option `{key}` is given twice"));
        }
        seen.push(key);
        match key {
            "max_connections" => config.max_connections = parse_auto(value, key)?,
            "max_threads" => config.max_threads = parse_auto(value, key)?,
            "idle_timeout" => config.idle_timeout = parse_duration(value)?,
            "turn_deadline" => config.turn_deadline = parse_duration(value)?,
            "shed_idle_after" => {
                config.shed_idle_after = match value {
                    "off" => None,
                    other => Some(parse_duration(other)?),
                }
            }
            "backlog" => config.backlog = parse_auto(value, key)?,
            "write_timeout" => config.write_timeout = parse_duration(value)?,
            "stop_grace" => config.stop_grace = parse_duration(value)?,
            other => return Err(format!("there is no option `{other}`")),
        }
    }
    Ok(config)
}

/// `auto` (derived), or a whole number.
fn parse_auto<T: FromStr>(value: &str, key: &str) -> Result<Option<T>, String> {
    match value {
        "auto" => Ok(None),
        number => number
            .parse()
            .map(Some)
            .map_err(|_| format!("`{number}` is not a valid {key}; give a whole number or auto")),
    }
}

/// The workspace's one duration grammar (`30s`, `500ms`, `50us`, `2m`; a bare number is
/// refused), as the executors' options read it: see [`ythread::parse_duration`].
pub use ythread::parse_duration;

/// A duration in the largest unit [`parse_duration`] reads that divides it exactly.
struct DurationText(Duration);

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.as_micros();
        if micros.is_multiple_of(60_000_000) && micros > 0 {
            write!(f, "{}m", micros / 60_000_000)
        } else if micros.is_multiple_of(1_000_000) {
            write!(f, "{}s", micros / 1_000_000)
        } else if micros.is_multiple_of(1_000) {
            write!(f, "{}ms", micros / 1_000)
        } else {
            write!(f, "{micros}us")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configuration_round_trips_through_its_text() {
        let configs = [
            ServeConfig::default(),
            ServeConfig::default()
                .max_connections(7)
                .max_threads(3)
                .idle_timeout(Duration::from_millis(1_500))
                .turn_deadline(Duration::from_secs(120))
                .shed_idle_after(None)
                .backlog(128)
                .write_timeout(Duration::from_micros(250))
                .stop_grace(Duration::from_secs(1)),
        ];
        for config in configs {
            let text = config.to_string();
            assert_eq!(text.parse::<ServeConfig>(), Ok(config), "{text}");
        }
        assert_eq!("".parse::<ServeConfig>(), Ok(ServeConfig::default()));
        assert_eq!("default".parse::<ServeConfig>(), Ok(ServeConfig::default()));
        assert_eq!(
            " idle_timeout = 5s ".parse::<ServeConfig>(),
            Ok(ServeConfig::default().idle_timeout(Duration::from_secs(5)))
        );
    }

    #[test]
    fn bad_options_name_the_problem_and_list_the_valid_forms() {
        for (text, problem) in [
            ("idle_timeout=soon", "`soon` is not a duration"),
            (
                "max_connections=many",
                "`many` is not a valid max_connections",
            ),
            ("threads=4", "no option `threads`"),
            ("idle_timeout", "not KEY=VALUE"),
            ("backlog=1,backlog=2", "given twice"),
            ("max_connections=0", "max connections is zero"),
            ("max_threads=0", "max threads is zero"),
            ("write_timeout=0s", "write timeout is zero"),
        ] {
            let error = text.parse::<ServeConfig>().unwrap_err().to_string();
            assert!(error.contains(problem), "{text}: {error}");
            assert!(
                error.contains("valid forms: default, or KEY=VALUE"),
                "{error}"
            );
        }
    }

    #[test]
    fn durations_parse_with_units_or_as_seconds() {
        assert!(parse_duration("30").is_err(), "a bare number names no unit");
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5us"), Ok(Duration::from_micros(5)));
        for bad in ["", "ms", "1.5s", "-1s", "3h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
