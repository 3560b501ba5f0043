//! The worker side: [`init`] and the loop that serves jobs.
//!
//! A worker is the program itself, started again with [`MARKER_ENV`] set. `init` sees the
//! marker and never returns: it ties the process's life to its parent, connects back, sends
//! its [`Hello`] and then answers jobs one at a time on its socket until the parent closes it.
//!
//! Dying with the parent takes two mechanisms, because each has a gap:
//! - `PR_SET_PDEATHSIG(SIGKILL)`: the kernel kills the worker when the parent *thread* that
//!   started it exits (the pool starts every worker from its long-lived supervisor thread for
//!   this reason). If the parent died before `prctl` ran, the worker has already been
//!   reparented, so `getppid` no longer names the parent and the worker exits at once.
//! - End-of-file on the socket: the parent holds the only other end, so an idle worker wakes up
//!   and exits as soon as the parent is gone, for any reason.

use std::sync::atomic::{AtomicBool, Ordering};

use ipc_channel::IpcError;
use ipc_channel::ipc::IpcSender;
use parking_lot::Mutex;
use ythread::TaskRegistry;

use super::answer::Answerer;
use super::direct;
use super::frame::{self, FrameError, FrameReceiver, Side};
use super::protocol::{EXIT_NO_LIMIT, Hello, MARKER_ENV, Marker, Regions, TRANSPORT_VERSION};
use super::receive::Receiver;
use super::shm::Region;
use super::socket::{Socket, SocketError};

/// The registry given to [`init`] in this process, the default for pools built here.
static REGISTRY: Mutex<Option<TaskRegistry>> = Mutex::new(None);

/// Whether this process is serving as a worker (set before the first job).
static SERVING: AtomicBool = AtomicBool::new(false);

/// Exit statuses of a worker that cannot serve; the parent reports them in its start error.
const EXIT_BAD_MARKER: i32 = 90;
const EXIT_ORPHANED: i32 = 91;
const EXIT_NO_CHANNEL: i32 = 92;

/// Exit status of a program asked to be a worker node without the `nats` feature.
#[cfg(not(feature = "nats"))]
const EXIT_NO_NATS: i32 = 95;

/// The environment variable that makes [`init`] serve as a worker node of the `nats`
/// strategy: `YTHREAD_WORKER=nats://HOST:PORT[,subject=PREFIX]`.
pub const WORKER_ENV: &str = "YTHREAD_WORKER";

/// Reply buffers above this size are not kept between jobs.
const KEPT_BUFFER: usize = 4 << 20;

/// Call first in `main`. In a worker process it serves tasks from `registry` and never
/// returns; in any other process it records `registry` as the default for subprocess pools
/// and returns at once.
///
/// With [`WORKER_ENV`] set (`YTHREAD_WORKER=nats://HOST:PORT`), the process is a worker node
/// of the `nats` strategy instead: it serves `registry`'s tasks from that broker through its
/// own local strategy (`YTHREAD_EXECUTOR`) until SIGTERM, then drains and exits 0, without
/// returning.
///
/// Workers are this program started again, so everything `main` does before `init` also runs
/// in every worker: keep it to nothing, or to what workers need too (logging set-up).
///
/// ```no_run
/// ythread::task!(fn square(x: u64) -> u64 { x * x });
///
/// fn main() {
///     ythread_executors::init(ythread::TaskRegistry::new().with(square));
///     // ... only the parent gets here ...
/// }
/// ```
///
/// In the program's own process, `init` also turns on the check that reports work a worker
/// could not run (a task missing from `registry`, closure work) the first time it is yielded,
/// under every strategy, as a `tracing` warning (target `ythread::mistakes`); with
/// `YTHREAD_STRICT=1` such work fails at once instead (see [`init_strict`]). And it warns,
/// on stderr if no `tracing` subscriber listens, if other threads already run: a runtime
/// started before `init` (`#[tokio::main]`) is started again in every worker.
pub fn init(registry: TaskRegistry) {
    init_checked(registry, false);
}

/// [`init`] in strict mode, whatever `YTHREAD_STRICT` says: in the program's own process,
/// yielding a task that is not in `registry`, or closure work (`y.run`), fails at once under
/// every strategy, with [`ErrorKind::UnknownTask`](ythread::ErrorKind::UnknownTask) or
/// [`ErrorKind::NotPortable`](ythread::ErrorKind::NotPortable), instead of only once the
/// program runs under `subprocess` or `nats`. For tests and debug builds:
///
/// ```no_run
/// ythread::task!(fn square(x: u64) -> u64 { x * x });
///
/// fn main() {
///     let registry = ythread::TaskRegistry::new().with(square);
///     if cfg!(debug_assertions) {
///         ythread_executors::init_strict(registry);
///     } else {
///         ythread_executors::init(registry);
///     }
/// }
/// ```
pub fn init_strict(registry: TaskRegistry) {
    init_checked(registry, true);
}

fn init_checked(registry: TaskRegistry, strict: bool) {
    *REGISTRY.lock() = Some(registry.clone());
    let Some(value) = std::env::var_os(MARKER_ENV) else {
        if let Some(node) = std::env::var_os(WORKER_ENV) {
            std::process::exit(serve_node(&node.to_string_lossy(), &registry));
        }
        crate::mistakes::check_from_init(&registry, strict);
        return;
    };
    let code = match value.to_str().map(Marker::decode) {
        Some(Ok(marker)) => serve(&marker, &registry),
        Some(Err(why)) => complain(EXIT_BAD_MARKER, &why),
        None => complain(
            EXIT_BAD_MARKER,
            &format!("{MARKER_ENV} is not valid unicode"),
        ),
    };
    std::process::exit(code)
}

#[cfg(feature = "nats")]
fn serve_node(value: &str, registry: &TaskRegistry) -> i32 {
    crate::nats::node::serve(value, registry)
}

#[cfg(not(feature = "nats"))]
fn serve_node(_value: &str, _registry: &TaskRegistry) -> i32 {
    complain(
        EXIT_NO_NATS,
        &format!(
            "{WORKER_ENV} is set, but this program was built without the `nats` feature of \
             ythread-executors; rebuild with it, or unset {WORKER_ENV}"
        ),
    )
}

/// The registry given to [`init`] in this process, if any.
pub(crate) fn registry() -> Option<TaskRegistry> {
    REGISTRY.lock().clone()
}

/// Whether [`init`] ran in this process.
pub(super) fn init_called() -> bool {
    REGISTRY.lock().is_some()
}

/// Whether this process was started as a worker but is not serving: its `main` did not call
/// [`init`] first. Such a process must not start pools of its own (they would start more
/// such processes, without end).
pub(super) fn is_stray_worker() -> bool {
    std::env::var_os(MARKER_ENV).is_some() && !SERVING.load(Ordering::Relaxed)
}

fn serve(marker: &Marker, registry: &TaskRegistry) -> i32 {
    SERVING.store(true, Ordering::Relaxed);
    if !die_with_parent(marker.parent) {
        return complain(EXIT_ORPHANED, "the pool's process is already gone");
    }
    let regions = Region::adopt(marker.regions.0)
        .and_then(|args| Ok((args, Region::adopt(marker.regions.1)?)))
        .map(|(args, results)| Regions { args, results });
    let regions = match regions {
        Ok(regions) => regions,
        Err(e) => {
            return complain(
                EXIT_NO_CHANNEL,
                &format!("could not take its shared-memory regions: {e}"),
            );
        }
    };
    if marker.memory > 0
        && let Err(e) = limit_memory(marker.memory)
    {
        return complain(
            EXIT_NO_LIMIT,
            &format!(
                "could not set its memory limit of {} bytes: {e}",
                marker.memory
            ),
        );
    }
    let socket = match Socket::adopt(marker.socket) {
        Ok(socket) => socket,
        Err(e) => return complain(EXIT_NO_CHANNEL, &format!("could not take its socket: {e}")),
    };
    let hello = Hello {
        protocol: TRANSPORT_VERSION,
        pid: std::process::id(),
        digest: registry.digest(),
        probe: direct::probe_address(),
    };
    let sent = IpcSender::<Hello>::connect(marker.server.clone())
        .map_err(IpcError::from)
        .and_then(|greeting| greeting.send(hello));
    if let Err(e) = sent {
        return complain(EXIT_NO_CHANNEL, &format!("could not reach the pool: {e}"));
    }

    let max_payload = usize::try_from(marker.max_payload).unwrap_or(usize::MAX);
    let limit = max_payload.saturating_add(frame::HEADROOM);
    let mut jobs = FrameReceiver::new(
        Receiver::new(socket, None, marker.spin),
        Side::Worker,
        limit,
    );
    let mut reply = Vec::new();
    let memory = (marker.memory > 0).then_some(marker.memory);
    let mut answerer = Answerer::new(regions, max_payload, memory);
    loop {
        let answered = match jobs.recv_lending(answerer.next_message()) {
            Ok((message, wire)) => answerer.answer(registry, message, &mut reply, wire),
            // The pool closed the socket (shutdown, recycling) or its process is gone.
            Err(FrameError::Channel(SocketError::Closed)) => return 0,
            Err(e) => return complain(EXIT_NO_CHANNEL, &format!("could not read a job: {e}")),
        };
        if let Err(why) = answered {
            return complain(EXIT_NO_CHANNEL, &format!("the pool sent {why}"));
        }
        if jobs.wire().send(&mut reply).is_err() {
            return 0;
        }
        if reply.capacity() > KEPT_BUFFER {
            reply = Vec::new();
        }
    }
}

/// Asks the kernel to SIGKILL this process when its parent thread exits; returns whether the
/// parent is still the process `parent` after that (see the module docs).
fn die_with_parent(parent: u32) -> bool {
    // SAFETY: `prctl(PR_SET_PDEATHSIG, sig)` reads its integer arguments only and changes a
    // setting of the calling process; no memory is passed.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    // SAFETY: `getppid` has no preconditions and cannot fail.
    let ppid = unsafe { libc::getppid() };
    u32::try_from(ppid) == Ok(parent)
}

/// Caps this process's data segment (`RLIMIT_DATA`: heap, and private writable mappings since
/// Linux 4.7) at `bytes`, soft and hard limit alike, so a task cannot raise it again.
///
/// Why not `RLIMIT_AS`: the address space also counts code, mapped files, address space that
/// allocators reserve without using (glibc reserves 64 MiB per thread arena) and shared
/// mappings such as the payload region, so a cap on it fails tasks for memory they never used,
/// and a big payload would eat the task's budget. A data limit is what the task allocates.
fn limit_memory(bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: `setrlimit` reads the struct it is given, a valid initialised local that
    // outlives the call, and changes a limit of the calling process only.
    let result = unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn complain(code: i32, why: &str) -> i32 {
    eprintln!(
        "ythread worker process {}: {why}; exiting",
        std::process::id()
    );
    code
}
