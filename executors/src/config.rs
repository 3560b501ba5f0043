//! `ExecutorConfig`: the strategy as configuration, so that switching is not a code change.
//!
//! One string form serves the command line, the environment (`YTHREAD_EXECUTOR`) and config
//! files (serde reads and writes the same string):
//!
//! ```text
//! inline
//! exclusive[,SCHEDULING]
//! rayon[:THREADS][,nice=N][,express=N][,SCHEDULING]
//! subprocess[:WORKERS][,timeout=DURATION][,recycle=TASKS][,spin=DURATION][,express=N][,nice=idle|N]
//!     [,memory=SIZE][,max_payload=SIZE][,copy=direct|shared][,SCHEDULING]
//! nats://HOST:PORT[,timeout=DURATION][,subject=PREFIX]      (with the `nats` feature)
//!
//! SCHEDULING: order=shortest|fifo, inline_below=auto|off|DURATION
//! ```
//!
//! Durations are a whole number with a unit, `ns`, `us`, `ms`, `s` or `m`: `2m`, `2s`,
//! `500ms`, `50us`, at most a year; the grammar is [`crate::parse_duration`],
//! public so that a program's own duration flags can read the same forms. Sizes are
//! a whole number with a binary unit: `512MiB`, `2GiB`, `64KiB`, `4096B`. Options
//! left out take the strategy's default (see [`Scheduling`]); `Display` writes the options
//! that were given, in a fixed order, so the text parses back to the same value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ythread::Executor;

use crate::schedule::{Scheduling, parse_express};
pub use crate::subprocess::SubprocessConfig;
use crate::sys::default_parallelism;
use crate::units::parse_count;
use crate::{Error, Exclusive, RayonPool, SubprocessPool, exclusive, rayon_pool};

/// The environment variable [`ExecutorConfig::from_env`] reads.
pub const ENV_VAR: &str = "YTHREAD_EXECUTOR";

/// The strategies by name; an error about an unknown strategy lists these.
const STRATEGIES: &str =
    "inline, exclusive, rayon[:THREADS], subprocess[:WORKERS], nats://HOST:PORT";

/// The full form of each strategy: an error about one strategy quotes its form only, so that
/// the message stays short enough to read on one line.
const FORMS: [(&str, &str); 5] = [
    ("inline", "inline"),
    ("exclusive", "exclusive[,SCHEDULING]"),
    ("rayon", "rayon[:THREADS][,nice=N][,express=N][,SCHEDULING]"),
    (
        "subprocess",
        "subprocess[:WORKERS][,timeout=DURATION][,recycle=TASKS][,spin=DURATION][,express=N]\
         [,nice=idle|N][,memory=SIZE][,max_payload=SIZE][,copy=direct|shared][,SCHEDULING]",
    ),
    (
        "nats",
        "nats://HOST:PORT[,timeout=DURATION][,subject=PREFIX]",
    ),
];

/// What to write instead of `text`: the form of the strategy it names, with the grammar of
/// the placeholders that form uses, or the list of strategies if it names none.
fn form_help(text: &str) -> String {
    let name = if text.starts_with("nats://") {
        "nats"
    } else {
        text.split([',', ':']).next().unwrap_or_default().trim()
    };
    let Some((_, form)) = FORMS.iter().find(|(known, _)| *known == name) else {
        return format!("valid strategies: {STRATEGIES}");
    };
    let mut help = format!("write it as {form}");
    let mut sep = ", where";
    if form.contains("SCHEDULING") {
        help.push_str(sep);
        help.push_str(" SCHEDULING is order=shortest|fifo and inline_below=auto|off|DURATION");
        sep = ";";
    }
    if form.contains("DURATION") || form.contains("SCHEDULING") {
        help.push_str(sep);
        help.push_str(" durations are like 2s, 500ms, 50us or 2m");
        sep = ";";
    }
    if form.contains("SIZE") {
        help.push_str(sep);
        help.push_str(" sizes are like 512MiB or 2GiB");
    }
    help
}

/// Which strategy runs yielded work, and its settings.
///
/// ```
/// use ythread_executors::ExecutorConfig;
/// use ythread_executors::schedule::{Order, Scheduling};
///
/// let config: ExecutorConfig = "rayon:2,nice=10,order=fifo".parse().unwrap();
/// assert_eq!(
///     config,
///     ExecutorConfig::Rayon {
///         threads: Some(2),
///         nice: Some(10),
///         express: None,
///         scheduling: Scheduling::new().order(Order::Fifo),
///     }
/// );
/// assert_eq!(config.to_string(), "rayon:2,nice=10,order=fifo");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum ExecutorConfig {
    /// Run work on the handler's thread (the default).
    #[default]
    Inline,
    /// One process-wide turn for the work.
    Exclusive {
        /// Order and inlining of the work.
        scheduling: Scheduling,
    },
    /// A dedicated rayon pool.
    Rayon {
        /// Pool threads; `None` means one per core.
        threads: Option<usize>,
        /// Nice value for the pool's regular threads (higher is lower priority); `None`: 10
        /// while there are express threads, else the process's priority.
        nice: Option<i32>,
        /// Express threads, for work predicted short only; `None` means the default (1).
        express: Option<usize>,
        /// Order and inlining of the work.
        scheduling: Scheduling,
    },
    /// A pool of worker processes.
    Subprocess(SubprocessConfig),
    /// Worker nodes behind a NATS server.
    #[cfg(feature = "nats")]
    #[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
    Nats(crate::NatsConfig),
}

/// What the `nats://` form says when the feature is off.
#[cfg(not(feature = "nats"))]
const NATS_DISABLED: &str = "the nats strategy is not built into this program; enable the \
     `nats` feature of ythread-executors (ythread-executors = { version = \"0.1\", features = \
     [\"nats\"] })";

impl ExecutorConfig {
    /// Reads [`ENV_VAR`]; unset or empty means [`ExecutorConfig::Inline`].
    ///
    /// # Errors
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the variable if its value is invalid.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var(ENV_VAR) {
            Ok(value) if !value.trim().is_empty() => value
                .parse()
                .map_err(|e: Error| Error::config(format!("{ENV_VAR} is invalid: {e}"))),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(ExecutorConfig::Inline),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::config(format!(
                "{ENV_VAR} is not valid unicode; valid strategies: {STRATEGIES}"
            ))),
        }
    }

    /// Starts the strategy and returns a shareable handle to it.
    ///
    /// # Errors
    /// [`ErrorKind::Start`](crate::ErrorKind::Start) if the strategy cannot start: threads or
    /// worker processes that do not come up, a handshake that fails, or the subprocess
    /// strategy without [`init`](crate::init()) at the start of `main`.
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a value written in code that the
    /// parser would refuse, such as `Rayon { threads: Some(0), .. }`.
    pub fn build(&self) -> Result<Executor, Error> {
        Ok(match self {
            ExecutorConfig::Inline => Executor::inline(),
            ExecutorConfig::Exclusive { scheduling } => Executor::new(Exclusive::new(*scheduling)),
            ExecutorConfig::Rayon {
                threads,
                nice,
                express,
                scheduling,
            } => {
                let mut builder = RayonPool::builder().scheduling(*scheduling);
                if let Some(threads) = threads {
                    builder = builder.threads(*threads);
                }
                if let Some(nice) = nice {
                    builder = builder.nice(*nice);
                }
                if let Some(express) = express {
                    builder = builder.express(*express);
                }
                Executor::new(builder.build()?)
            }
            ExecutorConfig::Subprocess(settings) => {
                let mut builder = SubprocessPool::builder()
                    .timeout(settings.timeout)
                    .recycle_after(settings.recycle_after)
                    .scheduling(settings.scheduling);
                if let Some(express) = settings.express {
                    builder = builder.express(express);
                }
                if let Some(nice) = settings.nice {
                    builder = builder.nice(nice);
                }
                if let Some(workers) = settings.workers {
                    builder = builder.workers(workers);
                }
                if let Some(spin) = settings.spin {
                    builder = builder.spin(spin);
                }
                builder = builder.memory(settings.memory);
                if let Some(max) = settings.max_payload {
                    builder = builder.max_payload(max);
                }
                if let Some(copy) = settings.copy {
                    builder = builder.copy(copy);
                }
                Executor::new(builder.build()?)
            }
            #[cfg(feature = "nats")]
            ExecutorConfig::Nats(settings) => {
                let registry = crate::role::registry().ok_or_else(|| {
                    Error::start(
                        "the nats strategy needs the task registry: call \
                         ythread_executors::init(registry) first in main",
                    )
                })?;
                Executor::new(crate::NatsExecutor::connect(settings.clone(), registry)?)
            }
        })
    }

    /// How many pieces of work the strategy runs at once: 1 for `exclusive`, its threads or
    /// workers for `rayon` and `subprocess` (express workers left out: they take short work
    /// only), and the cores for `inline`, which runs on its callers' threads. A worker node
    /// takes at most this many jobs at once. For `nats`, the count of its own callers' cores.
    pub fn parallelism(&self) -> usize {
        match self {
            ExecutorConfig::Inline => default_parallelism(),
            ExecutorConfig::Exclusive { .. } => 1,
            ExecutorConfig::Rayon { threads, .. } => threads.unwrap_or_else(default_parallelism),
            ExecutorConfig::Subprocess(settings) => {
                settings.workers.unwrap_or_else(default_parallelism)
            }
            #[cfg(feature = "nats")]
            ExecutorConfig::Nats(_) => default_parallelism(),
        }
    }
}

impl FromStr for ExecutorConfig {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        parse(text.trim()).map_err(|why| {
            Error::config(format!(
                "invalid executor `{text}`: {why}; {}",
                form_help(text.trim())
            ))
        })
    }
}

fn parse(text: &str) -> Result<ExecutorConfig, String> {
    if let Some(rest) = text.strip_prefix("nats://") {
        #[cfg(feature = "nats")]
        return crate::NatsConfig::parse(rest).map(ExecutorConfig::Nats);
        #[cfg(not(feature = "nats"))]
        return Err(format!(
            "`nats://{rest}` needs the nats feature: {NATS_DISABLED}"
        ));
    }
    let mut parts = text.split(',');
    let head = parts.next().unwrap_or_default().trim();
    let (name, count) = match head.split_once(':') {
        Some((name, count)) => (name.trim(), Some(parse_count(count.trim(), name.trim())?)),
        None => (head, None),
    };
    let options = parts
        .map(|part| {
            part.split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("option `{}` is not KEY=VALUE", part.trim()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(key) = first_repeated_key(&options) {
        return Err(format!("option `{key}` is given twice"));
    }
    let unknown = |key: &str| Err(format!("`{name}` has no option `{key}`"));
    match name {
        "inline" | "exclusive" if count.is_some() => Err(format!("`{name}` takes no count")),
        "inline" if !options.is_empty() => unknown(options[0].0),
        "inline" => Ok(ExecutorConfig::Inline),
        "exclusive" => {
            let mut scheduling = Scheduling::default();
            for (key, value) in options {
                if !scheduling.set(key, value)? {
                    return unknown(key);
                }
            }
            Ok(ExecutorConfig::Exclusive { scheduling })
        }
        "rayon" => {
            let (mut nice, mut express, mut scheduling) = (None, None, Scheduling::default());
            for (key, value) in options {
                match key {
                    "nice" => nice = Some(parse_nice(value)?),
                    "express" => express = Some(parse_express(value)?),
                    _ if scheduling.set(key, value)? => {}
                    _ => return unknown(key),
                }
            }
            Ok(ExecutorConfig::Rayon {
                threads: count,
                nice,
                express,
                scheduling,
            })
        }
        "subprocess" => {
            let mut settings = SubprocessConfig {
                workers: count,
                ..SubprocessConfig::default()
            };
            for (key, value) in options {
                if !settings.set(key, value)? {
                    return unknown(key);
                }
            }
            Ok(ExecutorConfig::Subprocess(settings))
        }
        "" => Err("the strategy name is empty".to_owned()),
        other => Err(format!("unknown strategy `{other}`")),
    }
}

fn first_repeated_key<'t>(options: &[(&'t str, &'t str)]) -> Option<&'t str> {
    options
        .iter()
        .enumerate()
        .find(|(i, (key, _))| options[..*i].iter().any(|(seen, _)| seen == key))
        .map(|(_, (key, _))| *key)
}

fn parse_nice(text: &str) -> Result<i32, String> {
    match text.parse::<i32>() {
        Ok(n) if (-20..=19).contains(&n) => Ok(n),
        _ => Err(format!(
            "nice `{text}` is not a whole number from -20 to 19"
        )),
    }
}

impl fmt::Display for ExecutorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutorConfig::Inline => f.write_str("inline"),
            ExecutorConfig::Exclusive { scheduling } => exclusive::write_spec(f, scheduling),
            ExecutorConfig::Rayon {
                threads,
                nice,
                express,
                scheduling,
            } => rayon_pool::write_spec(f, *threads, *nice, *express, scheduling),
            ExecutorConfig::Subprocess(settings) => settings.write_spec(f),
            #[cfg(feature = "nats")]
            ExecutorConfig::Nats(settings) => settings.fmt(f),
        }
    }
}

impl TryFrom<String> for ExecutorConfig {
    type Error = Error;
    fn try_from(text: String) -> Result<Self, Error> {
        text.parse()
    }
}

impl From<ExecutorConfig> for String {
    fn from(config: ExecutorConfig) -> String {
        config.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_in_their_largest_whole_unit() {
        for text in ["2s", "1500ms", "50us", "7ns"] {
            let config: ExecutorConfig = format!("subprocess,timeout={text}").parse().unwrap();
            assert_eq!(config.to_string(), format!("subprocess,timeout={text}"));
        }
        let config: ExecutorConfig = "subprocess,timeout=2000ms".parse().unwrap();
        assert_eq!(config.to_string(), "subprocess,timeout=2s");
    }

    #[test]
    fn sizes_round_trip_in_their_largest_whole_unit() {
        for (text, canonical) in [
            ("512MiB", "512MiB"),
            ("1024MiB", "1GiB"),
            ("1536MiB", "1536MiB"),
            ("16777216B", "16MiB"),
            ("20480KiB", "20MiB"),
        ] {
            let config: ExecutorConfig = format!("subprocess,memory={text}").parse().unwrap();
            assert_eq!(config.to_string(), format!("subprocess,memory={canonical}"));
        }
    }

    #[cfg(not(feature = "nats"))]
    #[test]
    fn the_nats_form_says_to_enable_the_feature() {
        let err = "nats://127.0.0.1:4222"
            .parse::<ExecutorConfig>()
            .unwrap_err();
        assert!(err.is_config());
        assert!(
            err.to_string().contains("enable the `nats` feature"),
            "{err}"
        );
    }

    #[cfg(feature = "nats")]
    #[test]
    fn the_nats_form_round_trips() {
        let text = "nats://10.0.0.2:4222,timeout=500ms,subject=jobs.cpu";
        let config: ExecutorConfig = text.parse().unwrap();
        assert!(matches!(config, ExecutorConfig::Nats(_)));
        assert_eq!(config.to_string(), text);
        assert_eq!(config.parallelism(), default_parallelism());
        let err = "nats://10.0.0.2".parse::<ExecutorConfig>().unwrap_err();
        assert!(err.to_string().contains("has no port"), "{err}");
    }
}
