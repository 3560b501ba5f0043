//! What the sum server computes and how it is limited: [`Work`] and [`ServerConfig`].

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use ythread_serve::ServeConfig;

/// Which task a request runs: the server answers `n` with `sumn(n)` or `fib(n)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Work {
    /// [`tasks::sumn`](crate::tasks::sumn): the article's sum of 1..=n, linear in `n`.
    #[default]
    Sumn,
    /// [`tasks::fib`](crate::tasks::fib): naive recursive Fibonacci, exponential in `n`.
    Fib,
}

impl Work {
    /// The largest `n` the server accepts unless told otherwise: about one second of work
    /// (sumn: 10^9 steps at about 1 ns; fib: fib(40) makes about 10^9 calls).
    pub fn default_max_n(self) -> u64 {
        match self {
            Work::Sumn => 1_000_000_000,
            Work::Fib => 40,
        }
    }

    /// The largest `n` whose answer is meaningful: fib(93) is the last Fibonacci number that
    /// fits in a `u64`; sumn wraps like the task does and has no limit of its own.
    pub fn max_supported_n(self) -> u64 {
        match self {
            Work::Sumn => u64::MAX,
            Work::Fib => 93,
        }
    }

    /// The right answer for `n`, computed the fast way (closed form or a loop), so that a
    /// client can check every reply without redoing the work.
    pub fn expected(self, n: u64) -> u64 {
        match self {
            // sumn adds with wrapping, so its answer is n(n+1)/2 modulo 2^64; in u128 the
            // product cannot overflow and the truncation is that modulo.
            Work::Sumn => (u128::from(n) * (u128::from(n) + 1) / 2) as u64,
            Work::Fib => {
                let (mut a, mut b) = (0u64, 1u64);
                for _ in 0..n {
                    (a, b) = (b, a.wrapping_add(b));
                }
                a
            }
        }
    }

    /// The task's name on the command line: `sumn` or `fib`.
    pub fn name(self) -> &'static str {
        match self {
            Work::Sumn => "sumn",
            Work::Fib => "fib",
        }
    }
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Work {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "sumn" => Ok(Work::Sumn),
            "fib" => Ok(Work::Fib),
            other => Err(format!("unknown task `{other}`; valid tasks: sumn, fib")),
        }
    }
}

/// How a [`Server`](super::Server) listens and what it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Where to listen. The default, `127.0.0.1:0`, lets the OS pick a free port; read the
    /// real one from [`ythread_serve::Server::local_addr`].
    pub addr: SocketAddr,
    /// The task each request runs.
    pub work: Work,
    /// Requests for a larger `n` get an `error:` reply instead of running.
    pub max_n: u64,
    /// A connection with no request for this long gets an `error:` reply and is closed; it
    /// also bounds how long the server waits to write a reply.
    pub idle_timeout: Duration,
    /// Requests with an `n` below this are computed directly on the handler's thread; the
    /// rest are yielded to the strategy. The seed article's "only offload if it takes long":
    /// a pool's queue then holds heavy work only, so short requests never wait behind it.
    /// 0 (the default) yields every request.
    pub direct_below: u64,
    /// How requests are delimited on the wire; see [`Framing`].
    pub framing: Framing,
    /// The most connections served at once; `None` (the default) derives it from the
    /// process's file-descriptor limit ([`ythread_serve::ConnectionLimits`]).
    /// A newcomer at the cap takes the place of the connection idle longest, or is refused
    /// with an `error: server busy` line if none has been idle long enough.
    pub max_connections: Option<usize>,
    /// At the cap, how long a connection must have been idle to be shed for a newcomer;
    /// `None` never sheds (newcomers at the cap are refused). Default
    /// [`ythread_serve::DEFAULT_SHED_IDLE_AFTER`].
    pub shed_idle_after: Option<Duration>,
    /// The listen backlog; `None` (the default) asks for the OS maximum
    /// (`/proc/sys/net/core/somaxconn`).
    pub backlog: Option<u32>,
}

/// How the server tells where one request ends and the next begins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Framing {
    /// The article's protocol: each read is one request, with no terminator. A client must
    /// wait for each reply before its next request; a request split across two reads is
    /// answered as two, and two requests that arrive together read as one number.
    #[default]
    ReadOnce,
    /// One request per `\n`-terminated line (a trailing `\r` is ignored), so clients may
    /// pipeline and a request may arrive in pieces. A request must arrive whole within the
    /// idle timeout counted from its first byte.
    Line,
}

impl Framing {
    /// The framing's name on the command line: `read-once` or `line`.
    pub fn name(self) -> &'static str {
        match self {
            Framing::ReadOnce => "read-once",
            Framing::Line => "line",
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Framing {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "read-once" => Ok(Framing::ReadOnce),
            "line" => Ok(Framing::Line),
            other => Err(format!(
                "unknown framing `{other}`; valid framings: read-once, line"
            )),
        }
    }
}

impl Default for ServerConfig {
    /// `127.0.0.1:0`, sumn, [`Work::default_max_n`], a 30 s idle timeout, read-once framing,
    /// the connection cap and backlog derived from the OS limits.
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            work: Work::Sumn,
            max_n: Work::Sumn.default_max_n(),
            idle_timeout: Duration::from_secs(30),
            direct_below: 0,
            framing: Framing::ReadOnce,
            max_connections: None,
            shed_idle_after: Some(ythread_serve::DEFAULT_SHED_IDLE_AFTER),
            backlog: None,
        }
    }
}

impl ServerConfig {
    /// The default configuration for `work`, with that task's [`Work::default_max_n`].
    pub fn for_work(work: Work) -> Self {
        ServerConfig {
            work,
            max_n: work.default_max_n(),
            ..ServerConfig::default()
        }
    }

    pub(crate) fn validate(&self) -> io::Result<()> {
        if self.max_n > self.work.max_supported_n() {
            return Err(invalid(format!(
                "max n {} is too large for {}: its answer overflows 64 bits above n = {}; \
                 choose a max n of at most {}",
                self.max_n,
                self.work,
                self.work.max_supported_n(),
                self.work.max_supported_n()
            )));
        }
        self.serve_config().validate()
    }

    /// The serving layer's part: the idle timeout is also the turn deadline (a request must
    /// arrive whole within it of its first byte) and the write timeout.
    pub fn serve_config(&self) -> ServeConfig {
        let mut serve = ServeConfig::default()
            .idle_timeout(self.idle_timeout)
            .turn_deadline(self.idle_timeout)
            .write_timeout(self.idle_timeout)
            .shed_idle_after(self.shed_idle_after);
        if let Some(max) = self.max_connections {
            serve = serve.max_connections(max);
        }
        if let Some(backlog) = self.backlog {
            serve = serve.backlog(backlog);
        }
        serve
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_answers_match_the_tasks() {
        use crate::tasks::{fib, sumn};
        for n in [0, 1, 2, 3, 10, 25_000, 1_000_003] {
            assert_eq!(Work::Sumn.expected(n), sumn.call(n), "sumn({n})");
        }
        for n in 0..=25u32 {
            assert_eq!(Work::Fib.expected(u64::from(n)), fib.call(n), "fib({n})");
        }
        assert_eq!(Work::Fib.expected(93), 12_200_160_415_121_876_738);
    }

    #[test]
    fn work_parses_its_names_and_rejects_others() {
        assert_eq!("sumn".parse::<Work>(), Ok(Work::Sumn));
        assert_eq!(" fib ".parse::<Work>(), Ok(Work::Fib));
        let err = "fibonacci".parse::<Work>().unwrap_err();
        assert!(
            err.contains("fibonacci") && err.contains("sumn, fib"),
            "{err}"
        );
    }

    #[test]
    fn framings_parse_their_names_and_display_them_back() {
        for framing in [Framing::ReadOnce, Framing::Line] {
            assert_eq!(framing.to_string().parse::<Framing>(), Ok(framing));
        }
        let err = "lines".parse::<Framing>().unwrap_err();
        assert!(
            err.contains("`lines`") && err.contains("read-once, line"),
            "{err}"
        );
    }

    #[test]
    fn a_zero_cap_or_backlog_is_refused() {
        let zero_cap = ServerConfig {
            max_connections: Some(0),
            ..ServerConfig::default()
        };
        assert!(
            zero_cap
                .validate()
                .unwrap_err()
                .to_string()
                .contains("max connections")
        );
        let zero_backlog = ServerConfig {
            backlog: Some(0),
            ..ServerConfig::default()
        };
        assert!(
            zero_backlog
                .validate()
                .unwrap_err()
                .to_string()
                .contains("backlog")
        );
    }

    #[test]
    fn fib_limits_above_93_are_refused() {
        let mut config = ServerConfig::for_work(Work::Fib);
        assert!(config.validate().is_ok());
        config.max_n = 94;
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("at most 93"), "{err}");
    }
}
