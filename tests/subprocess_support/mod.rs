//! Shared helpers of the `subprocess_*` test binaries: a pool of the test worker program,
//! bounded waits, and a look at processes through `/proc`.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ythread_executors::{SubprocessBuilder, SubprocessPool};
use ythread_suite::tasks;

/// The bound on every wait: long enough for a loaded 2-core machine, short enough that a hang
/// fails the test instead of stalling the run.
pub const BOUND: Duration = Duration::from_secs(60);

/// A builder for a pool of exactly `workers` test worker processes serving the demo tasks:
/// no express worker, so that the tests of the regular lane know every worker's job. The
/// express lane has tests of its own (`subprocess_scheduling.rs`).
pub fn pool(workers: usize) -> SubprocessBuilder {
    SubprocessPool::builder()
        .program(env!("CARGO_BIN_EXE_ythread-test-worker"))
        .registry(tasks::registry())
        .workers(workers)
        .express(0)
}

/// Runs `f` on its own thread and returns its result, failing the test if it takes longer
/// than [`BOUND`].
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(f());
    });
    match result.recv_timeout(BOUND) {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {BOUND:?}"),
    }
}

/// Polls `condition` until it holds, failing the test after [`BOUND`].
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    let mut pause = Duration::from_micros(100);
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{what}: still not true after {BOUND:?}"
        );
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A process as `/proc/PID/stat` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub ppid: u32,
}

/// The state and parent of `pid`, or `None` if there is no such process.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcStat { state, ppid })
}

/// Whether `pid` is a child of this process that has not been reaped (running or zombie).
pub fn is_our_child(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|stat| stat.ppid == std::process::id())
}

/// Every process whose parent is this process.
pub fn our_children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| proc_stat(pid).is_some_and(|stat| stat.ppid == me))
        .collect()
}

/// A named pipe in a fresh temporary directory, removed on drop: `wait_for_pipe` blocks on it
/// until the test [opens](Pipe::open) it, which keeps a worker busy with no timing involved.
pub struct Pipe {
    path: std::path::PathBuf,
}

impl Pipe {
    pub fn new(name: &str) -> Pipe {
        let dir = std::env::temp_dir().join(format!("ythread-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pipe");
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call; `mkfifo`
        // only reads it.
        let made = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
        assert_eq!(made, 0, "mkfifo {}", path.display());
        Pipe { path }
    }

    /// The pipe's path, as `wait_for_pipe` takes it.
    pub fn name(&self) -> String {
        self.path.to_str().unwrap().to_owned()
    }

    /// Lets whoever waits on the pipe go on. A plain open for writing would block until a
    /// reader opens the pipe, for ever if the worker never does: open without blocking, which
    /// fails while there is no reader, and retry within [`BOUND`].
    pub fn open(&self) {
        use std::io::Write;
        let mut writer = self.hold();
        writer.write_all(b"go").unwrap();
    }

    /// Waits until a `wait_for_pipe` job has the pipe open for reading, which proves it is
    /// running in a worker rather than merely assigned to one (a job whose worker dies before
    /// delivery is retried elsewhere), and returns the writing end: the job goes on waiting
    /// until it is dropped.
    pub fn hold(&self) -> std::fs::File {
        let mut writer = None;
        eventually("a worker to open the pipe", || {
            writer = self.writer();
            writer.is_some()
        });
        writer.expect("eventually returned, so the pipe opened")
    }

    /// Lets a job that waits on the pipe right now go on, if there is one; never blocks.
    pub fn release_any_reader(&self) {
        use std::io::Write;
        if let Some(mut writer) = self.writer() {
            // A reader that went away meanwhile leaves nobody to release.
            let _ = writer.write_all(b"go");
        }
    }

    /// The writing end, if a reader has the pipe open (opening without one fails at once).
    fn writer(&self) -> Option<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path)
            .ok()
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// How many of the pool's shared-memory regions process `pid` holds: open descriptors, and
/// mappings (from `/proc/PID/fd` and `/proc/PID/maps`).
pub fn regions_held(pid: u32) -> (usize, usize) {
    const NAME: &str = "memfd:ythread-";
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().contains(NAME))
                .count()
        })
        .unwrap_or(0);
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|maps| maps.lines().filter(|line| line.contains(NAME)).count())
        .unwrap_or(0);
    (fds, maps)
}

/// A link to the test worker under a name that makes it undumpable (so it declines direct
/// copies); the link goes with the value.
pub struct UndumpableWorker {
    dir: std::path::PathBuf,
}

impl UndumpableWorker {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ythread-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let worker = UndumpableWorker { dir };
        let _ = std::fs::remove_file(worker.program());
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ythread-test-worker"), worker.program())
            .unwrap();
        worker
    }

    pub fn program(&self) -> std::path::PathBuf {
        self.dir.join("ythread-test-worker-undumpable")
    }
}

impl Drop for UndumpableWorker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
