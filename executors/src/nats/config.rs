//! `NatsConfig`: where the broker is, how long a job may take, and the subjects' prefix.
//!
//! ```text
//! nats://HOST:PORT[,timeout=DURATION][,subject=PREFIX]
//! ```
//!
//! The same form serves callers (`YTHREAD_EXECUTOR`, `--executor`) and worker nodes
//! (`YTHREAD_WORKER`), so a node and its callers agree on the prefix by copying one string.

use std::fmt;
use std::time::Duration;

use crate::units::{parse_timeout, write_duration};

/// The subject prefix unless configured.
pub const DEFAULT_SUBJECT: &str = "ythread";

/// The per-job deadline unless configured: long enough for real CPU work, short enough that a
/// job lost with a dead node fails within a human's patience.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the `nats` strategy.
///
/// ```
/// use ythread_executors::{ExecutorConfig, NatsConfig};
///
/// let config: ExecutorConfig = "nats://127.0.0.1:4222,timeout=5s,subject=jobs".parse().unwrap();
/// let ExecutorConfig::Nats(nats) = &config else { unreachable!() };
/// assert_eq!(nats.url(), "nats://127.0.0.1:4222");
/// assert_eq!(config.to_string(), "nats://127.0.0.1:4222,timeout=5s,subject=jobs");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsConfig {
    /// The broker's host name or address.
    pub host: String,
    /// The broker's client port.
    pub port: u16,
    /// Per-job deadline, waiting for a node with room included; `None`: [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// The first subject token of every message; `None`: [`DEFAULT_SUBJECT`].
    pub subject: Option<String>,
}

impl NatsConfig {
    /// The broker at `host:port`, with the defaults.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        NatsConfig {
            host: host.into(),
            port,
            timeout: None,
            subject: None,
        }
    }

    /// `nats://HOST:PORT`, as the client connects and as messages name it.
    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    /// The per-job deadline in force.
    pub fn job_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The subject prefix in force.
    pub fn subject_prefix(&self) -> &str {
        self.subject.as_deref().unwrap_or(DEFAULT_SUBJECT)
    }

    /// Parses what follows `nats://`; the error says what is wrong.
    pub(crate) fn parse(rest: &str) -> Result<Self, String> {
        let mut parts = rest.split(',');
        let address = parts.next().unwrap_or_default().trim();
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("`nats://{address}` has no port; write nats://HOST:PORT"))?;
        if host.is_empty() {
            return Err("the nats server's host is empty; write nats://HOST:PORT".to_owned());
        }
        let port = match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("`{port}` is not a port from 1 to 65535")),
        };
        let mut config = NatsConfig::new(host, port);
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("option `{}` is not KEY=VALUE", part.trim()))?;
            match key {
                "timeout" if config.timeout.is_none() => {
                    config.timeout = Some(parse_timeout(value)?)
                }
                "subject" if config.subject.is_none() => {
                    config.subject = Some(parse_subject(value)?)
                }
                "timeout" | "subject" => return Err(format!("option `{key}` is given twice")),
                _ => return Err(format!("`nats` has no option `{key}`")),
            }
        }
        Ok(config)
    }
}

/// A subject prefix: tokens of letters, digits, `_` and `-`, separated by single dots.
fn parse_subject(text: &str) -> Result<String, String> {
    let valid_token = |token: &str| {
        !token.is_empty()
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if text.split('.').all(valid_token) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "subject `{text}` is not a prefix of dot-separated tokens of letters, digits, _ and -"
        ))
    }
}

impl fmt::Display for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())?;
        if let Some(timeout) = self.timeout {
            f.write_str(",timeout=")?;
            write_duration(f, timeout)?;
        }
        if let Some(subject) = &self.subject {
            write!(f, ",subject={subject}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_back_every_option() {
        for text in [
            "127.0.0.1:4222",
            "broker.example:1,timeout=250ms",
            "h:2,subject=a.b-c_d",
            "h:3,timeout=2s,subject=x",
        ] {
            let config = NatsConfig::parse(text).unwrap();
            assert_eq!(config.to_string(), format!("nats://{text}"));
        }
    }

    #[test]
    fn refuses_what_would_not_work() {
        for (text, why) in [
            ("localhost", "no port"),
            (":4222", "host is empty"),
            ("h:0", "not a port"),
            ("h:99999", "not a port"),
            ("h:1,timeout=0s", "would fail every job"),
            ("h:1,subject=a..b", "subject `a..b`"),
            ("h:1,subject=a.*", "subject `a.*`"),
            ("h:1,subject=x,subject=y", "given twice"),
            ("h:1,workers=2", "no option `workers`"),
        ] {
            let err = NatsConfig::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
