//! The worker side: the loop that serves jobs, entered from [`init`](crate::init()).
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

use ipc_channel::IpcError;
use ipc_channel::ipc::IpcSender;
use ythread::TaskRegistry;

use super::answer::Answerer;
use crate::subprocess::transport::direct;
use crate::subprocess::transport::frame::{self, FrameError, FrameReceiver, Side};
use crate::subprocess::transport::marker::{MARKER_ENV, Marker};
use crate::subprocess::transport::protocol::{EXIT_NO_LIMIT, Hello, Regions, TRANSPORT_VERSION};
use crate::subprocess::transport::receive::Receiver;
use crate::subprocess::transport::shm::Region;
use crate::subprocess::transport::socket::{Socket, SocketError};
use crate::{role, sys};

/// Exit statuses of a worker that cannot serve; the parent reports them in its start error.
/// (`crate::init` lists every exit status of the crate in one table.)
const EXIT_BAD_MARKER: i32 = 90;
const EXIT_ORPHANED: i32 = 91;
const EXIT_NO_CHANNEL: i32 = 92;

/// Reply buffers above this size are not kept between jobs.
const KEPT_BUFFER: usize = 4 << 20;

/// Serves as a subprocess worker if this process was started as one (its environment has
/// [`MARKER_ENV`]); returns the exit status then, or `None` in any other process.
pub(crate) fn serve_if_worker(registry: &TaskRegistry) -> Option<i32> {
    let value = std::env::var_os(MARKER_ENV)?;
    Some(match value.to_str().map(Marker::decode) {
        Some(Ok(marker)) => serve(&marker, registry),
        Some(Err(why)) => complain(EXIT_BAD_MARKER, &why),
        None => complain(
            EXIT_BAD_MARKER,
            &format!("{MARKER_ENV} is not valid unicode"),
        ),
    })
}

fn serve(marker: &Marker, registry: &TaskRegistry) -> i32 {
    role::start_serving();
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
    let ppid = sys::die_with_parent_thread();
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
    sys::limit_data(bytes)
}

fn complain(code: i32, why: &str) -> i32 {
    eprintln!(
        "ythread worker process {}: {why}; exiting",
        std::process::id()
    );
    code
}
