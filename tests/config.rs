//! `ExecutorConfig`: every valid form parses to the value it names, `Display` writes a form that
//! parses back to the same value, serde carries the same string, and every invalid form is an
//! error that says what is wrong and quotes the form to write instead, on one line that `main`
//! prints readably. Every duration option reads the one duration grammar. The environment has
//! its own test binary (`config_env.rs`) because it is process-global.

mod support;

use std::time::Duration;

use support::{is_child, run_child_test};
use ythread_executors::schedule::{InlineBelow, Order, Scheduling};
use ythread_executors::{
    CopyMode, ExecutorConfig, SubprocessConfig, WorkerPriority, parse_duration,
};

fn rayon(threads: Option<usize>, nice: Option<i32>) -> ExecutorConfig {
    scheduled_rayon(threads, nice, Scheduling::new())
}

fn scheduled_rayon(
    threads: Option<usize>,
    nice: Option<i32>,
    scheduling: Scheduling,
) -> ExecutorConfig {
    ExecutorConfig::Rayon {
        threads,
        nice,
        express: None,
        scheduling,
    }
}

fn exclusive(scheduling: Scheduling) -> ExecutorConfig {
    ExecutorConfig::Exclusive { scheduling }
}

fn scheduled_subprocess(
    workers: Option<usize>,
    express: Option<usize>,
    scheduling: Scheduling,
) -> ExecutorConfig {
    let mut settings = SubprocessConfig::default();
    settings.workers = workers;
    settings.express = express;
    settings.scheduling = scheduling;
    ExecutorConfig::Subprocess(settings)
}

/// Every combination of the scheduling options, unset included.
fn schedulings() -> Vec<Scheduling> {
    let orders = [None, Some(Order::Shortest), Some(Order::Fifo)];
    let inlines = [
        None,
        Some(InlineBelow::Off),
        Some(InlineBelow::Auto),
        Some(InlineBelow::Below(Duration::from_micros(20))),
        Some(InlineBelow::Below(Duration::from_nanos(1_500))),
    ];
    let mut all = Vec::new();
    for order in orders {
        for inline_below in inlines {
            let mut scheduling = Scheduling::new();
            scheduling.order = order;
            scheduling.inline_below = inline_below;
            all.push(scheduling);
        }
    }
    all
}

fn subprocess(
    workers: Option<usize>,
    timeout: Option<Duration>,
    recycle_after: Option<u64>,
    spin: Option<Duration>,
) -> ExecutorConfig {
    let mut settings = SubprocessConfig::default();
    settings.workers = workers;
    settings.timeout = timeout;
    settings.recycle_after = recycle_after;
    settings.spin = spin;
    ExecutorConfig::Subprocess(settings)
}

fn parse(text: &str) -> ExecutorConfig {
    text.parse()
        .unwrap_or_else(|e| panic!("`{text}` should parse: {e}"))
}

#[test]
fn every_valid_form_parses_to_what_it_names() {
    let ms = Duration::from_millis;
    let cases = [
        ("inline", ExecutorConfig::Inline),
        ("exclusive", exclusive(Scheduling::new())),
        (
            "exclusive,order=fifo",
            exclusive(Scheduling::new().order(Order::Fifo)),
        ),
        (
            "exclusive,inline_below=auto,order=shortest",
            exclusive(
                Scheduling::new()
                    .order(Order::Shortest)
                    .inline_below(InlineBelow::Auto),
            ),
        ),
        (
            "rayon:2,order=fifo,inline_below=off",
            scheduled_rayon(
                Some(2),
                None,
                Scheduling::new()
                    .order(Order::Fifo)
                    .inline_below(InlineBelow::Off),
            ),
        ),
        (
            "rayon:2,express=0,order=fifo",
            ExecutorConfig::Rayon {
                threads: Some(2),
                nice: None,
                express: Some(0),
                scheduling: Scheduling::new().order(Order::Fifo),
            },
        ),
        (
            "rayon,nice=10,inline_below=50us",
            scheduled_rayon(
                None,
                Some(10),
                Scheduling::new().inline_below(InlineBelow::Below(Duration::from_micros(50))),
            ),
        ),
        (
            "subprocess:2,order=fifo,express=0",
            scheduled_subprocess(Some(2), Some(0), Scheduling::new().order(Order::Fifo)),
        ),
        ("subprocess,nice=idle", {
            let mut settings = SubprocessConfig::default();
            settings.nice = Some(WorkerPriority::Idle);
            ExecutorConfig::Subprocess(settings)
        }),
        ("subprocess,memory=512MiB", {
            let mut settings = SubprocessConfig::default();
            settings.memory = Some(512 << 20);
            ExecutorConfig::Subprocess(settings)
        }),
        ("subprocess:2,memory=2GiB,timeout=2s", {
            let mut settings = SubprocessConfig::default();
            settings.workers = Some(2);
            settings.memory = Some(2 << 30);
            settings.timeout = Some(Duration::from_secs(2));
            ExecutorConfig::Subprocess(settings)
        }),
        ("subprocess,max_payload=64MiB", {
            let mut settings = SubprocessConfig::default();
            settings.max_payload = Some(64 << 20);
            ExecutorConfig::Subprocess(settings)
        }),
        ("subprocess,copy=shared", {
            let mut settings = SubprocessConfig::default();
            settings.copy = Some(CopyMode::Shared);
            ExecutorConfig::Subprocess(settings)
        }),
        ("subprocess,express=1,nice=5", {
            let mut settings = SubprocessConfig::default();
            settings.express = Some(1);
            settings.nice = Some(WorkerPriority::Nice(5));
            ExecutorConfig::Subprocess(settings)
        }),
        (
            "subprocess,express=3,inline_below=auto",
            scheduled_subprocess(
                None,
                Some(3),
                Scheduling::new().inline_below(InlineBelow::Auto),
            ),
        ),
        ("rayon", rayon(None, None)),
        ("rayon:4", rayon(Some(4), None)),
        ("rayon,nice=10", rayon(None, Some(10))),
        ("rayon:2,nice=10", rayon(Some(2), Some(10))),
        ("rayon:1,nice=-20", rayon(Some(1), Some(-20))),
        ("rayon:3,nice=19", rayon(Some(3), Some(19))),
        (" rayon : 2 , nice = 5 ", rayon(Some(2), Some(5))),
        ("subprocess", subprocess(None, None, None, None)),
        ("subprocess:4", subprocess(Some(4), None, None, None)),
        (
            "subprocess,timeout=2s",
            subprocess(None, Some(ms(2000)), None, None),
        ),
        (
            "subprocess:2,timeout=500ms",
            subprocess(Some(2), Some(ms(500)), None, None),
        ),
        (
            "subprocess,recycle=100",
            subprocess(None, None, Some(100), None),
        ),
        (
            "subprocess,spin=50us",
            subprocess(None, None, None, Some(Duration::from_micros(50))),
        ),
        (
            "subprocess:8,timeout=3s,recycle=1000,spin=100ns",
            subprocess(
                Some(8),
                Some(ms(3000)),
                Some(1000),
                Some(Duration::from_nanos(100)),
            ),
        ),
        // Options in any order.
        (
            "subprocess,spin=1ms,recycle=2,timeout=1s",
            subprocess(None, Some(ms(1000)), Some(2), Some(ms(1))),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text), expected, "`{text}`");
    }
    assert_eq!(ExecutorConfig::default(), ExecutorConfig::Inline);
}

/// Many values of every variant, including edge values of each field.
fn many_configs() -> Vec<ExecutorConfig> {
    let mut all = vec![ExecutorConfig::Inline];
    for scheduling in schedulings() {
        all.push(exclusive(scheduling));
        all.push(scheduled_rayon(Some(2), Some(5), scheduling));
        for express in [Some(0), Some(1), Some(64)] {
            all.push(ExecutorConfig::Rayon {
                threads: Some(2),
                nice: None,
                express,
                scheduling,
            });
        }
        for express in [None, Some(0), Some(1), Some(4)] {
            all.push(scheduled_subprocess(Some(3), express, scheduling));
        }
    }
    for threads in [None, Some(1), Some(2), Some(7), Some(64), Some(10_000)] {
        for nice in [None, Some(-20), Some(-1), Some(0), Some(10), Some(19)] {
            all.push(rayon(threads, nice));
        }
    }
    let durations = [
        None,
        Some(Duration::from_nanos(1)),
        Some(Duration::from_nanos(999)),
        Some(Duration::from_micros(1)),
        Some(Duration::from_micros(1_500)),
        Some(Duration::from_millis(1)),
        Some(Duration::from_millis(1_500)),
        Some(Duration::from_secs(2)),
        Some(Duration::from_secs(86_400)),
        Some(Duration::new(3, 7)),
    ];
    for memory in [
        None,
        Some(16 << 20),
        Some(512 << 20),
        Some((1 << 30) + (1 << 10)),
        Some(3 << 40),
    ] {
        let mut settings = SubprocessConfig::default();
        settings.memory = memory;
        settings.max_payload = memory.map(|bytes| bytes * 2);
        settings.workers = Some(2);
        all.push(ExecutorConfig::Subprocess(settings));
    }
    for workers in [None, Some(1), Some(16)] {
        for recycle in [None, Some(1), Some(u64::from(u32::MAX) + 1)] {
            for timeout in durations {
                for spin in [durations[0], durations[1], durations[4], durations[7]] {
                    all.push(subprocess(workers, timeout, recycle, spin));
                }
            }
        }
    }
    all
}

#[test]
fn display_round_trips_for_many_values() {
    let all = many_configs();
    assert!(all.len() > 300, "{}", all.len());
    for config in all {
        let text = config.to_string();
        let back: ExecutorConfig = text
            .parse()
            .unwrap_or_else(|e| panic!("`{text}` (from {config:?}) does not parse: {e}"));
        assert_eq!(back, config, "`{text}`");
        // And the written form is canonical: writing the parsed value gives the same text.
        assert_eq!(back.to_string(), text);
    }
}

#[test]
fn display_writes_the_canonical_form() {
    let cases = [
        ("inline", "inline"),
        ("  exclusive ", "exclusive"),
        ("rayon:02", "rayon:2"),
        ("rayon , nice=+3", "rayon,nice=3"),
        ("subprocess,timeout=2000ms", "subprocess,timeout=2s"),
        ("subprocess,timeout=1000000us", "subprocess,timeout=1s"),
        ("subprocess,spin=1500000ns", "subprocess,spin=1500us"),
        (
            "subprocess,spin=5us,recycle=3,timeout=60s",
            "subprocess,timeout=60s,recycle=3,spin=5us",
        ),
        (
            "subprocess:2,inline_below=20000ns,express=0,order=fifo",
            "subprocess:2,express=0,order=fifo,inline_below=20us",
        ),
        (
            "subprocess,memory=1024MiB,timeout=2s",
            "subprocess,timeout=2s,memory=1GiB",
        ),
        ("subprocess,memory=16384KiB", "subprocess,memory=16MiB"),
        ("subprocess,timeout=2m", "subprocess,timeout=120s"),
        ("rayon,inline_below=1m", "rayon,inline_below=60s"),
        (
            "subprocess,max_payload=1024MiB,memory=1GiB",
            "subprocess,memory=1GiB,max_payload=1GiB",
        ),
        (
            "subprocess,copy=direct,max_payload=2GiB",
            "subprocess,max_payload=2GiB,copy=direct",
        ),
        (
            "rayon,inline_below=auto,nice=3,order=shortest",
            "rayon,nice=3,order=shortest,inline_below=auto",
        ),
    ];
    for (input, canonical) in cases {
        assert_eq!(parse(input).to_string(), canonical, "`{input}`");
    }
}

#[test]
fn serde_carries_the_string_form() {
    for config in many_configs() {
        let bytes = postcard::to_stdvec(&config).unwrap();
        // On the wire it is exactly the `Display` string.
        let as_string: String = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(as_string, config.to_string());
        let back: ExecutorConfig = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, config);
        // The conversions serde uses.
        let string: String = config.clone().into();
        assert_eq!(ExecutorConfig::try_from(string).unwrap(), config);
    }
    // An invalid string fails to deserialise instead of becoming some default.
    for bad in ["rayon:0", "bogus", ""] {
        let bytes = postcard::to_stdvec(bad).unwrap();
        assert!(
            postcard::from_bytes::<ExecutorConfig>(&bytes).is_err(),
            "`{bad}`"
        );
        assert!(ExecutorConfig::try_from(bad.to_owned()).is_err(), "`{bad}`");
    }
}

/// Every invalid form, with a piece of text its error must contain to say what is wrong.
const INVALID: &[(&str, &str)] = &[
    ("", "empty"),
    ("   ", "empty"),
    ("bogus", "unknown strategy `bogus`"),
    ("Rayon", "unknown strategy `Rayon`"),
    ("thread-pool:4", "unknown strategy `thread-pool`"),
    ("rayon:0", "at least 1"),
    ("rayon:x", "`x` is not a whole number"),
    ("rayon:-1", "`-1` is not a whole number"),
    ("rayon:", "is not a whole number"),
    ("rayon:2:3", "is not a whole number"),
    ("rayon,nice=99", "-20 to 19"),
    ("rayon,nice=-21", "-20 to 19"),
    ("rayon,nice=low", "-20 to 19"),
    ("rayon,nice", "not KEY=VALUE"),
    ("rayon,", "not KEY=VALUE"),
    ("rayon,speed=3", "no option `speed`"),
    ("rayon,express=65", "from 0 (none) to 64"),
    (
        "rayon,express=x",
        "is not a whole number of express threads",
    ),
    ("rayon:2,timeout=1s", "no option `timeout`"),
    ("inline:2", "takes no count"),
    ("exclusive:1", "takes no count"),
    ("inline,nice=1", "no option `nice`"),
    ("exclusive,x=y", "no option `x`"),
    ("subprocess:0", "at least 1"),
    ("subprocess,timeout=2", "not a duration"),
    ("subprocess,spin=50", "not a duration"),
    ("subprocess,timeout=2M", "not a duration"),
    ("subprocess,timeout=2min", "not a duration"),
    ("subprocess,timeout=525601m", "longer than a year"),
    ("rayon,inline_below=20", "is not one of"),
    ("subprocess,timeout=2h", "not a duration"),
    ("subprocess,timeout=1.5s", "not a duration"),
    ("subprocess,timeout=s", "not a duration"),
    ("subprocess,spin=-1ms", "not a duration"),
    ("subprocess,recycle=0", "at least 1"),
    ("subprocess,recycle=many", "not a whole number"),
    ("subprocess,nice=20", "-20 to 19"),
    ("subprocess,nice=lowest", "is not `idle` nor a whole number"),
    ("subprocess,timeout=0s", "would fail every job"),
    (
        "subprocess,memory=512",
        "memory `512` is not a size like 512MiB",
    ),
    ("subprocess,memory=512MB", "memory `512MB` is not a size"),
    ("subprocess,memory=-1MiB", "is not a size"),
    ("subprocess,memory=1.5GiB", "is not a size"),
    ("subprocess,memory=", "is not a size"),
    ("subprocess,memory=1MiB", "below 16MiB"),
    ("subprocess,memory=0B", "below 16MiB"),
    ("subprocess,memory=99999999TiB", "larger than 1024TiB"),
    ("rayon,memory=1GiB", "no option `memory`"),
    (
        "subprocess,max_payload=1GB",
        "max_payload `1GB` is not a size",
    ),
    ("subprocess,max_payload=0B", "below 1KiB"),
    ("subprocess,max_payload=", "is not a size"),
    ("exclusive,max_payload=1GiB", "no option `max_payload`"),
    (
        "subprocess,copy=mmap",
        "`copy` takes `direct` or `shared`, not `mmap`",
    ),
    ("rayon,copy=direct", "no option `copy`"),
    (
        "subprocess,memory=1GiB,memory=2GiB",
        "option `memory` is given twice",
    ),
    ("subprocess,timeout=0ms", "would fail every job"),
    ("rayon,nice=1,nice=2", "option `nice` is given twice"),
    ("rayon,order=lifo", "order `lifo` is not one of: shortest"),
    ("exclusive,order=", "order `` is not one of"),
    (
        "rayon,inline_below=-1ms",
        "inline_below `-1ms` is not one of: auto, off",
    ),
    (
        "subprocess,inline_below=fast",
        "inline_below `fast` is not one of",
    ),
    ("subprocess,express=x", "express `x` is not a whole number"),
    (
        "subprocess,express=-1",
        "express `-1` is not a whole number",
    ),
    ("rayon,express=1,copy=direct", "no option `copy`"),
    ("exclusive,nice=1", "no option `nice`"),
    (
        "rayon,order=fifo,order=fifo",
        "option `order` is given twice",
    ),
    (
        "subprocess,timeout=9223372036854775807s",
        "longer than a year",
    ),
    ("subprocess,spin=31708800s", "longer than a year"),
    ("rayon,inline_below=400d", "is not one of"),
    (
        "subprocess,timeout=1s,recycle=2,timeout=1s",
        "option `timeout` is given twice",
    ),
];

/// The form an error about each strategy quotes; any other name gets the list of strategies.
const FORMS: &[(&str, &str)] = &[
    ("inline", "write it as inline"),
    (
        "exclusive",
        "write it as exclusive[,SCHEDULING], where SCHEDULING is",
    ),
    (
        "rayon",
        "write it as rayon[:THREADS][,nice=N][,express=N][,SCHEDULING], where SCHEDULING is \
         order=shortest|fifo and inline_below=auto|off|DURATION; durations are like 2s",
    ),
    (
        "subprocess",
        "write it as subprocess[:WORKERS][,timeout=DURATION][,recycle=TASKS]",
    ),
];

#[test]
fn every_invalid_form_is_an_error_that_quotes_the_form_to_write() {
    for &(text, why) in INVALID {
        let err = match text.parse::<ExecutorConfig>() {
            Ok(config) => panic!("`{text}` parsed as {config:?}"),
            Err(err) => err,
        };
        assert!(err.is_config(), "`{text}`: {err:?}");
        let message = err.to_string();
        assert!(message.contains(why), "`{text}`: {message}");
        assert!(
            message.contains(&format!("`{text}`")),
            "`{text}`: the message should quote the input: {message}"
        );
        let name = text.split([',', ':']).next().unwrap().trim();
        match FORMS.iter().find(|(known, _)| *known == name) {
            Some((_, form)) => assert!(message.contains(form), "`{text}`: {message}"),
            None => assert!(
                message.contains(
                    "valid strategies: inline, exclusive, rayon[:THREADS], \
                     subprocess[:WORKERS], nats://HOST:PORT"
                ),
                "`{text}`: {message}"
            ),
        }
        assert!(
            !message.starts_with(char::is_uppercase),
            "`{text}`: {message}"
        );
        assert!(!message.ends_with('.'), "`{text}`: {message}");
        // What `main` prints: the message and the kind on one line.
        assert_eq!(format!("{err:?}"), format!("{message} (kind: Config)"));
        assert!(!message.contains('\n'), "`{text}`: {message}");
    }
}

#[test]
fn a_config_error_quotes_only_its_own_strategys_form() {
    // The old messages listed every form of every strategy (about 700 characters through
    // `main`); an error about rayon has no business naming subprocess options.
    let message = "rayon:0".parse::<ExecutorConfig>().unwrap_err().to_string();
    assert!(!message.contains("max_payload"), "{message}");
    assert!(!message.contains("sizes are"), "{message}");
    let message = "subprocess,memory=1MiB"
        .parse::<ExecutorConfig>()
        .unwrap_err()
        .to_string();
    assert!(message.contains("sizes are like 512MiB"), "{message}");
    assert!(
        !message.contains("nice=N][,SCHEDULING], subprocess"),
        "{message}"
    );
}

/// The environment marker of the child run of the test below.
const MAIN_CHILD: &str = "YTHREAD_TEST_CONFIG_MAIN_CHILD";

/// In the child: fails the way `fn main() -> Result<(), Error>` does, through the standard
/// library's `Termination` report of a returned error (the test harness uses the same one).
#[test]
fn child_main_returns_a_config_error() -> Result<(), ythread_executors::Error> {
    if !is_child(MAIN_CHILD) {
        return Ok(());
    }
    let config: ExecutorConfig = "rayon:0".parse()?;
    config.build().map(drop)
}

#[test]
fn main_returning_a_config_error_prints_one_readable_line() {
    let run = run_child_test("child_main_returns_a_config_error", MAIN_CHILD);
    assert!(!run.status.success(), "{}", run.stdout);
    let output = format!("{}{}", run.stdout, run.stderr);
    let line = output
        .lines()
        .find(|line| line.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no `Error:` line in:\n{output}"));
    assert!(
        line.starts_with("Error: invalid executor `rayon:0`: `rayon` needs a count of at least 1; write it as rayon[:THREADS]")
            && line.ends_with(" (kind: Config)"),
        "{line}"
    );
    // No struct dump and no escaped quotes: the message as `Display` writes it.
    assert!(
        !line.contains("Error {") && !line.contains("\\\""),
        "{line}"
    );
}

#[test]
fn every_duration_option_reads_the_same_grammar() {
    let forms = [
        ("2m", Duration::from_secs(120)),
        ("90s", Duration::from_secs(90)),
        ("1500ms", Duration::from_millis(1500)),
        ("50us", Duration::from_micros(50)),
        ("7ns", Duration::from_nanos(7)),
    ];
    type Read = fn(&ExecutorConfig) -> Option<Duration>;
    fn subprocess(config: &ExecutorConfig) -> SubprocessConfig {
        match config {
            ExecutorConfig::Subprocess(settings) => settings.clone(),
            other => panic!("not subprocess: {other:?}"),
        }
    }
    let options: [(&str, Read); 4] = [
        ("subprocess,timeout=", |c| subprocess(c).timeout),
        ("subprocess,spin=", |c| subprocess(c).spin),
        ("subprocess,inline_below=", |c| {
            match subprocess(c).scheduling.inline_below {
                Some(InlineBelow::Below(d)) => Some(d),
                _ => None,
            }
        }),
        ("rayon,inline_below=", |c| match c {
            ExecutorConfig::Rayon { scheduling, .. } => match scheduling.inline_below {
                Some(InlineBelow::Below(d)) => Some(d),
                _ => None,
            },
            _ => None,
        }),
    ];
    for (prefix, read) in options {
        for (form, expected) in forms {
            let text = format!("{prefix}{form}");
            assert_eq!(parse_duration(form), Ok(expected), "{form}");
            let config = parse(&text);
            assert_eq!(read(&config), Some(expected), "`{text}`");
            // The written form is the same value, and reads back to itself.
            let written = config.to_string();
            assert_eq!(parse(&written), config, "`{text}` wrote `{written}`");
        }
        // A bare number has no unit: refused by every option alike.
        let text = format!("{prefix}30");
        assert!(text.parse::<ExecutorConfig>().is_err(), "`{text}` parsed");
    }
    assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
    for bad in ["", "30", "m", "2 m", "2h", "-1s", "1.5s", "2mins"] {
        let err = parse_duration(bad).unwrap_err();
        assert!(
            err.contains(&format!("`{bad}`")) && err.contains("like 2m"),
            "{err}"
        );
    }
}

#[test]
fn the_nats_timeout_reads_the_same_grammar() {
    for (form, expected) in [("2m", 120), ("90s", 90)] {
        let text = format!("nats://127.0.0.1:4222,timeout={form}");
        match parse(&text) {
            ExecutorConfig::Nats(nats) => {
                assert_eq!(
                    nats.job_timeout(),
                    Duration::from_secs(expected),
                    "`{text}`"
                )
            }
            other => panic!("`{text}` parsed as {other:?}"),
        }
    }
    assert!(
        "nats://127.0.0.1:4222,timeout=30"
            .parse::<ExecutorConfig>()
            .is_err()
    );
}

#[test]
fn in_process_configs_build_the_strategy_they_name() {
    for text in support::IN_PROCESS {
        assert_eq!(parse(text).build().unwrap().describe(), text);
    }
    assert_eq!(
        parse("inline").build().unwrap().run_closure(|| 3).unwrap(),
        3
    );
}

#[test]
fn a_config_built_in_code_is_checked_when_built() {
    // The enum can be written directly, bypassing the parser; `build` must still refuse
    // what `parse` refuses rather than run something else than it says.
    for config in [rayon(Some(0), None), rayon(Some(1), Some(42))] {
        let err = config
            .build()
            .err()
            .unwrap_or_else(|| panic!("{config:?} built"));
        assert!(err.is_config(), "{config:?}: {err}");
    }
}
