//! Direct copies: the parent copies a large byte string straight between its own memory and a
//! worker's, with `process_vm_writev` (arguments) and `process_vm_readv` (results).
//!
//! Through the shared regions a large payload is copied twice each way: into the region, then
//! out of it into the `Vec` the other side's value owns. A direct copy is one: the worker
//! allocates the `Vec` that its task's argument will own and tells the parent where it is, and
//! the parent writes the caller's bytes straight into it; for a result the worker says where
//! its bytes are and waits while the parent reads them into the `Vec` the caller's result will
//! own. The decoder (`ythread::Encoded`) then hands those `Vec`s over without copying. Each
//! byte string sent this way costs one more message exchange, so only those of at least
//! [`DIRECT_THRESHOLD`](super::payload::DIRECT_THRESHOLD) go this way; the rest of the payload takes the usual path.
//!
//! Why only the parent copies: the kernel allows a process to read and write another's memory
//! with the same rights as `ptrace`. A parent has them over its children (Yama's default scope
//! 1 allows an ancestor). Granting a worker the same over its parent would let a worker taken
//! over by hostile input take over the parent too, so a worker never touches the parent's
//! memory: it only names addresses in its own, which the parent copies to or from after
//! checking every length against `max_payload`. A worker that names a bad address gets its
//! own job garbled, nothing else.
//!
//! Where the kernel refuses (a stricter Yama scope, a seccomp profile), a probe at the
//! worker's start-up finds out, and the pool falls back to the shared regions for that worker.
//! A worker that made itself undumpable declines direct copies in its hello (root could
//! still reach it) and gets the regions too.

use std::cell::Cell;
use std::io;
use std::time::{Duration, Instant};

use ythread::{Apart, Encoded};

use crate::wire::Gap;

/// How long a worker polls for the parent's next message while the parent copies `len`
/// bytes into or out of it: the copy's time at a slow 4 GiB/s, so that the worker is still
/// awake when the copy ends (waking a process on an idle core costs tens of microseconds on
/// a VM). Nothing for a copy so long that one wake-up does not matter.
pub(crate) fn wait_while_copying(len: usize) -> Duration {
    const BYTES_PER_MICROSECOND: usize = 4 << 10;
    const LONGEST: Duration = Duration::from_micros(500);
    let expected = Duration::from_micros((len / BYTES_PER_MICROSECOND) as u64);
    if expected > LONGEST {
        Duration::ZERO
    } else {
        expected
    }
}

/// What the worker's probe holds; the parent reads it back at start-up.
const PROBE: [u8; 16] = *b"ythread direct 1";

/// Whether this process is dumpable: whether it allows others with the rights to reach its
/// memory. A program that made itself undumpable asked that its memory not be reached from
/// outside, which root could still do, so a worker that is not dumpable declines direct
/// copies.
pub(crate) fn dumpable() -> bool {
    // SAFETY: `prctl(PR_GET_DUMPABLE)` reads a flag of this process; no memory is passed.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 }
}

/// For the worker's hello: the address of a buffer holding [`PROBE`], which the parent reads
/// and writes back at start-up; 0 (declining direct copies) if the process is not dumpable.
/// The buffer's 16 bytes are leaked: one per worker process, never touched here again.
pub(crate) fn probe_address() -> u64 {
    if !dumpable() {
        return 0;
    }
    Box::into_raw(Box::new(PROBE)) as u64
}

/// Whether the parent can read and write worker `pid`'s memory: reads its probe at
/// `address`, then writes it back.
pub(crate) fn probe(pid: u32, address: u64) -> io::Result<()> {
    if address == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the worker is not dumpable, so it declines direct copies",
        ));
    }
    let mut seen = Vec::with_capacity(PROBE.len());
    read_into(pid, address, PROBE.len(), &mut seen)?;
    if seen != PROBE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the worker's probe reads back wrong",
        ));
    }
    write_to(pid, address, &PROBE)
}

thread_local! {
    /// How long this thread has spent copying to and from workers, in all.
    static COPYING: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// How long this thread has spent in [`write_to`] and [`read_into`], in all. A worker waits
/// (polls) while its parent copies, so the CPU time a worker uses during a job's round trip
/// includes this much that is the transfer's, not the task's.
pub(crate) fn time_copying() -> Duration {
    COPYING.get()
}

/// Runs `copy`, adding its time to [`time_copying`].
fn timed<R>(copy: impl FnOnce() -> R) -> R {
    let began = Instant::now();
    let result = copy();
    COPYING.set(COPYING.get() + began.elapsed());
    result
}

/// Copies `bytes` to `address` in process `pid`.
pub(crate) fn write_to(pid: u32, address: u64, bytes: &[u8]) -> io::Result<()> {
    timed(|| write_all(pid, address, bytes))
}

fn write_all(pid: u32, address: u64, bytes: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        let local = libc::iovec {
            iov_base: bytes[done..].as_ptr() as *mut libc::c_void,
            iov_len: bytes.len() - done,
        };
        let remote = libc::iovec {
            iov_base: (address as usize + done) as *mut libc::c_void,
            iov_len: bytes.len() - done,
        };
        // SAFETY: `local` describes `bytes[done..]`, memory of this process that is valid for
        // reads of its length for the whole call (it is borrowed); the kernel only reads it.
        // `remote` is memory of the other process, which the kernel checks and which this
        // process never dereferences. The iovec structs are valid locals.
        let written =
            unsafe { libc::process_vm_writev(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
        done += transferred(written)?;
    }
    Ok(())
}

/// Appends `len` bytes read from `address` in process `pid` to `out`.
pub(crate) fn read_into(pid: u32, address: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
    timed(|| read_all(pid, address, len, out))
}

fn read_all(pid: u32, address: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
    out.try_reserve_exact(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("no room for {len} bytes"),
        )
    })?;
    let start = out.len();
    let mut done = 0;
    while done < len {
        let spare = &mut out.spare_capacity_mut()[done..len];
        let local = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        let remote = libc::iovec {
            iov_base: (address as usize + done) as *mut libc::c_void,
            iov_len: len - done,
        };
        // SAFETY: `local` describes spare capacity of `out` (reserved above), memory this
        // process owns and lends mutably to the kernel for the call; nothing else refers to
        // it. `remote` is the other process's memory, checked by the kernel and never
        // dereferenced here. The iovec structs are valid locals.
        let read = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
        done += transferred(read)?;
    }
    // SAFETY: the kernel wrote `done == len` bytes into the spare capacity, starting at
    // `start`, in order (each call continues where the previous one stopped), so the first
    // `start + len` elements are initialised; `len` was reserved.
    unsafe { out.set_len(start + len) };
    Ok(())
}

/// The byte count of a `process_vm_*` call, or its error. A call that moves nothing cannot
/// make progress: the remote range is not mapped past that point.
fn transferred(result: isize) -> io::Result<usize> {
    match result {
        n if n > 0 => Ok(n as usize),
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the other process's memory ended before the copy did",
        )),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The result `rest` with the `offered` byte strings in its `gaps`.
pub(crate) fn with_offered<'a>(
    rest: &'a [u8],
    gaps: &[Gap],
    offered: Vec<Vec<u8>>,
) -> Result<Encoded<'a>, String> {
    if gaps.len() != offered.len() {
        return Err(format!(
            "a reply listing {} byte strings sent apart after {} offers",
            gaps.len(),
            offered.len()
        ));
    }
    let mut apart = Vec::with_capacity(gaps.len());
    for (gap, bytes) in gaps.iter().zip(offered) {
        if gap.len != bytes.len() as u64 {
            return Err("a reply whose gaps do not match its offers".to_owned());
        }
        let at = usize::try_from(gap.at).map_err(|_| "a gap past the end".to_owned())?;
        apart.push(Apart { at, bytes });
    }
    Encoded::with_apart(rest, apart).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_within_this_process_round_trip() {
        // A process may always read and write its own memory this way.
        let pid = std::process::id();
        probe(pid, probe_address()).unwrap();
        let source: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut target = vec![0u8; source.len()];
        write_to(pid, target.as_mut_ptr() as u64, &source).unwrap();
        assert!(target == source);
        let mut back = b"head".to_vec();
        read_into(pid, target.as_ptr() as u64, target.len(), &mut back).unwrap();
        assert!(back[4..] == source[..] && &back[..4] == b"head");
        let error = read_into(pid, 8, 16, &mut Vec::new()).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EFAULT), "{error}");
    }
}
