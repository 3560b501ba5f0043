//! The strategy comparison runs end to end: `strategies --quick` succeeds, prints its tables
//! and writes its report and charts, the tokio peer has its rows, and the crash section shows
//! what each strategy does with a task that aborts its process.
//!
//! The example is built first with the same cargo and profile: a plain `cargo test` builds
//! examples, but `cargo test --test strategies_quick` does not. Every wait is bounded: a
//! comparison that hangs is killed with everything it started, and the test fails.
//!
//! The strategies compared run at priorities the test controls: every one at the handlers'
//! priority (`subprocess:2,nice=0` rather than idle-class workers, no `nice=10` pool). Work
//! below the priority of whatever else keeps the machine busy may get no CPU for minutes,
//! and this test checks what the comparison writes, not what it measures.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long building the example may go without a line on stderr: a crate's compilation
/// on a loaded machine, or a wait for the shared target directory's lock.
const BUILD_SILENCE: Duration = Duration::from_secs(900);
/// How long the comparison may go without a line on stderr: it writes one per step, and a
/// `--quick` step takes at most a few seconds even with the machine's cores busy elsewhere.
/// A bound per step rather than on the whole run grows with the work the run is asked to do.
const STEP_SILENCE: Duration = Duration::from_secs(120);
/// How long output pipes may stay open after the command exits (workers shutting down).
const ORPHAN_BOUND: Duration = Duration::from_secs(30);

/// Every kind of strategy, none below the handlers' priority (module docs).
const STRATEGIES: [&str; 4] = ["inline", "exclusive", "rayon:2", SUBPROCESS];
const SUBPROCESS: &str = "subprocess:2,nice=0";
const IN_PROCESS: [&str; 3] = ["inline", "exclusive", "rayon:2"];
const TOKIO: [&str; 3] = [
    "tokio, work inline",
    "tokio + spawn_blocking",
    "tokio + rayon",
];

#[test]
fn quick_comparison_prints_and_writes_every_section() {
    let example = build_example();
    let out = scratch_dir();
    let run = run_bounded(
        Command::new(&example)
            .arg("--quick")
            .args(["--strategies", &STRATEGIES.join(",")])
            .arg("--out")
            .arg(&out),
        STEP_SILENCE,
    );
    assert!(
        run.status.success(),
        "strategies --quick failed ({}):\n{}",
        run.status,
        run.stderr
    );

    let markdown = std::fs::read_to_string(out.join("strategies.md")).expect("strategies.md");
    let svg = std::fs::read_to_string(out.join("strategies.svg")).expect("strategies.svg");
    let p99_svg =
        std::fs::read_to_string(out.join("strategies-p99.svg")).expect("strategies-p99.svg");
    let open_loop_svg = std::fs::read_to_string(out.join("strategies-open-loop.svg"))
        .expect("strategies-open-loop.svg");
    let _ = std::fs::remove_dir_all(&out);

    for section in [
        "## 1. Throughput",
        "## 2. Responsiveness",
        "## 3. Mixed heavy-tailed load",
        "## 4. What the scheduler learned",
        "## 5. Crash isolation",
        "## 6. Overhead",
        "## The thumbnails service",
        "## Payloads: big arguments and results",
        "## Open-loop arrivals",
        "## Reading the results",
    ] {
        assert!(markdown.contains(section), "no `{section}` in:\n{markdown}");
        assert!(run.stdout.contains(section), "stdout lacks `{section}`");
    }
    for strategy in STRATEGIES {
        assert!(
            markdown.contains(&format!("| `{strategy}` |")),
            "no row for {strategy} in:\n{markdown}"
        );
        assert!(
            svg.contains(&format!(">\n{strategy}\n</text>")),
            "no legend for {strategy}"
        );
        assert!(
            p99_svg.contains(&format!(">{strategy}</text>")),
            "no p99 bar for {strategy}"
        );
        assert!(
            open_loop_svg.contains(&format!(">{strategy}</text>")),
            "no open-loop line for {strategy}"
        );
    }
    for peer in TOKIO {
        let row = format!("| `{peer}` |");
        for section in [
            "## 1. Throughput",
            "## 2. Responsiveness",
            "## 3. Mixed",
            "## Open-loop arrivals",
        ] {
            let body = markdown
                .split(section)
                .nth(1)
                .and_then(|rest| rest.split("\n## ").next())
                .unwrap_or_default();
            assert!(body.contains(&row), "no {peer} row in `{section}`");
        }
    }
    assert!(
        !markdown.contains("failed ["),
        "requests failed in the comparison:\n{markdown}"
    );
    assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("<path"), "the chart has no line:\n{svg}");
    assert!(
        open_loop_svg.trim_end().ends_with("</svg>") && open_loop_svg.contains("<circle"),
        "the open-loop chart has no point:\n{open_loop_svg}"
    );

    let crash = crash_rows(&markdown);
    assert!(p99_svg.trim_start().starts_with("<svg") && p99_svg.trim_end().ends_with("</svg>"));
    for strategy in IN_PROCESS {
        let row = crash_row(&crash, strategy);
        assert!(
            row.contains("died (killed by SIGABRT)") && row.ends_with("| 0 of 3 |"),
            "an in-process server must die with its aborting task: {row}"
        );
    }
    let subprocess = crash_row(&crash, SUBPROCESS);
    assert!(
        subprocess.contains("kept serving") && subprocess.ends_with("| 3 of 3 |"),
        "the subprocess server must survive the crash and keep serving: {subprocess}"
    );
}

/// The rows of the crash-isolation table.
fn crash_rows(markdown: &str) -> Vec<&str> {
    let section = markdown
        .split("## 5. Crash isolation")
        .nth(1)
        .and_then(|rest| rest.split("## 6.").next())
        .expect("a crash-isolation section");
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .collect()
}

fn crash_row<'a>(rows: &[&'a str], strategy: &str) -> &'a str {
    let start = format!("| `{strategy}` |");
    rows.iter()
        .find(|row| row.starts_with(&start))
        .unwrap_or_else(|| panic!("no crash row for {strategy} in {rows:#?}"))
}

/// Builds the example with this test's profile and returns its path.
fn build_example() -> PathBuf {
    // This test runs as target/<profile>/deps/strategies_quick-<hash>.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .expect("a profile directory name");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    build
        .args(["build", "--example", "strategies", "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let built = run_bounded(&mut build, BUILD_SILENCE);
    assert!(
        built.status.success(),
        "could not build the strategies example:\n{}",
        built.stderr
    );
    let example = profile_dir.join("examples").join("strategies");
    assert!(example.exists(), "no example at {}", example.display());
    example
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ythread-strategies-quick-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `command` to its end, or kills it (with everything it started) once it has written
/// nothing to stderr for `silence`, and fails the test.
fn run_bounded(command: &mut Command, silence: Duration) -> Finished {
    // Its own process group: a command killed at its bound takes its children with it.
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {command:?}: {e}"));
    // Drain both pipes while waiting, so a chatty child cannot block on a full pipe.
    let (stdout, _) = drain(child.stdout.take().expect("piped stdout"));
    let (stderr, lines) = drain(child.stderr.take().expect("piped stderr"));
    let Some(status) = wait_while_talking(&mut child, &lines, silence) else {
        // Not waiting for the readers: a grandchild may still hold the pipes open.
        panic!("{command:?} wrote nothing to stderr for {silence:?}; killed it");
    };
    // The pipes close when the last process holding them exits: a process the command left
    // behind (an orphaned worker or server) keeps them open and fails the test here.
    let collect = |output: mpsc::Receiver<String>, name: &str| {
        output.recv_timeout(ORPHAN_BOUND).unwrap_or_else(|_| {
            panic!("{command:?} exited but its {name} stayed open for {ORPHAN_BOUND:?}: it left a process behind")
        })
    };
    Finished {
        status,
        stdout: collect(stdout, "stdout"),
        stderr: collect(stderr, "stderr"),
    }
}

/// Reads `pipe` to its end on a thread: the whole text once it closes, and a signal for each
/// line as it arrives.
fn drain(pipe: impl Read + Send + 'static) -> (mpsc::Receiver<String>, mpsc::Receiver<()>) {
    let (send_text, text) = mpsc::channel();
    let (send_line, lines) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut reader = std::io::BufReader::new(pipe);
        while std::io::BufRead::read_until(&mut reader, b'\n', &mut bytes).is_ok_and(|n| n > 0) {
            let _ = send_line.send(());
        }
        let _ = send_text.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    (text, lines)
}

/// The exit status, or `None` after killing a child (and its process group) that wrote no
/// line for `silence`.
fn wait_while_talking(
    child: &mut Child,
    lines: &mpsc::Receiver<()>,
    silence: Duration,
) -> Option<ExitStatus> {
    let mut last_line = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            return Some(status);
        }
        while lines.try_recv().is_ok() {
            last_line = Instant::now();
        }
        if last_line.elapsed() >= silence {
            // SAFETY: `kill` touches no memory; the child leads its own process group (see
            // `run_bounded`) and is not reaped yet, so the group id cannot have been reused.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
