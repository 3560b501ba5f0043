//! Tasks that play a compromised worker, for the isolation tests: code that took over a
//! subprocess worker can write anything to the worker's socket and shared-memory regions, fork,
//! and reply when it likes. These tasks do exactly that, through the same descriptors a real
//! exploit would find, named in the worker's environment (`YTHREAD_SUBPROCESS_WORKER`). They
//! know the wire format (`executors/src/subprocess/protocol.rs`) the way an attacker would.
//!
//! They run only in `ythread-hostile-worker`, never in the examples' registry.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use ythread::TaskRegistry;

use crate::tasks::{self, Misbehave};

/// One packet a hostile task writes to its socket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawPacket {
    /// The frame header's body length; `None` writes the true length of `body`.
    pub declared: Option<u64>,
    /// The frame header's sequence number.
    pub seq: u64,
    /// The body after the 16-byte header; with `no_header`, the whole packet.
    pub body: ByteBuf,
    /// Send `body` as it is, without a frame header.
    pub no_header: bool,
    /// How many descriptors (copies of the socket itself) to attach.
    pub descriptors: u32,
}

/// The body of a successful reply whose result is `value` inline, as a worker sends it.
pub fn reply_body(value: u64) -> ByteBuf {
    reply_body_ran(value, 1_000)
}

/// [`reply_body`] saying the task ran `ran_nanos`.
pub fn reply_body_ran(value: u64, ran_nanos: u64) -> ByteBuf {
    let mut body = vec![0u8]; // REPLY_OK
    body.extend_from_slice(&ran_nanos.to_le_bytes());
    body.extend_from_slice(&postcard::to_stdvec(&value).expect("a u64 encodes"));
    ByteBuf::from(body)
}

/// The body of a successful reply that says the result is the first `len` bytes of the
/// results region.
pub fn shared_reply_body(len: u64) -> ByteBuf {
    let mut body = vec![2u8]; // REPLY_OK_SHARED
    body.extend_from_slice(&1_000u64.to_le_bytes());
    body.extend_from_slice(&len.to_le_bytes());
    ByteBuf::from(body)
}

/// The body of an offer of `len` result bytes at `address`.
pub fn offer_body(address: u64, len: u64) -> ByteBuf {
    let mut body = vec![0x42u8];
    body.extend_from_slice(&address.to_le_bytes());
    body.extend_from_slice(&len.to_le_bytes());
    ByteBuf::from(body)
}

/// The descriptor numbers of this worker's args region, results region and socket.
fn descriptors() -> (i32, i32, i32) {
    let marker = std::env::var("YTHREAD_SUBPROCESS_WORKER").expect("runs in a worker");
    let fields: Vec<i32> = marker
        .split(';')
        .skip(5)
        .take(3)
        .map(|f| f.parse().expect("a descriptor number"))
        .collect();
    (fields[0], fields[1], fields[2])
}

fn send_packet(socket: i32, packet: &RawPacket) -> bool {
    let mut bytes = Vec::new();
    if !packet.no_header {
        let declared = packet.declared.unwrap_or(packet.body.len() as u64);
        bytes.extend_from_slice(&declared.to_le_bytes());
        bytes.extend_from_slice(&packet.seq.to_le_bytes());
    }
    bytes.extend_from_slice(&packet.body);
    let fds = vec![socket; packet.descriptors as usize];
    let mut iov = libc::iovec {
        iov_base: bytes.as_mut_ptr().cast(),
        iov_len: bytes.len(),
    };
    let space = if fds.is_empty() {
        0
    } else {
        // SAFETY: CMSG_SPACE computes a size from an integer.
        unsafe { libc::CMSG_SPACE((fds.len() * size_of::<i32>()) as u32) as usize }
    };
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: an all-zero `msghdr` is a valid empty one.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    if !fds.is_empty() {
        header.msg_control = control.as_mut_ptr().cast();
        header.msg_controllen = space as _;
        // SAFETY: `control` holds `space` bytes, room for one cmsghdr and `fds.len()`
        // descriptors; CMSG_FIRSTHDR and CMSG_DATA point inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&header);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN((fds.len() * size_of::<i32>()) as u32) as _;
            let data = libc::CMSG_DATA(cmsg).cast::<i32>();
            for (index, fd) in fds.iter().enumerate() {
                data.add(index).write_unaligned(*fd);
            }
        }
    }
    // SAFETY: `header` describes live locals (`bytes` through `iov`, `control`).
    unsafe { libc::sendmsg(socket, &header, libc::MSG_NOSIGNAL) >= 0 }
}

ythread::task! {
    /// Writes `packets` to the worker's socket as they are described, then returns `value`
    /// (the worker's own reply follows them).
    pub fn send_raw(packets: Vec<RawPacket>, value: u64) -> u64 {
        let (_, _, socket) = descriptors();
        for packet in &packets {
            if !send_packet(socket, packet) {
                break;
            }
        }
        value
    }
}

ythread::task! {
    /// Computes for `ms` milliseconds of CPU time, then replies (to job `seq`) that it ran for
    /// 1 ns: heavy work made to look cheap.
    pub fn claim_no_time(ms: u64, seq: u64) -> u64 {
        let until = thread_cpu_time() + std::time::Duration::from_millis(ms);
        while thread_cpu_time() < until {
            std::hint::black_box(0u64);
        }
        let (_, _, socket) = descriptors();
        let reply = RawPacket { seq, body: reply_body_ran(ms, 1), ..RawPacket::default() };
        send_packet(socket, &reply);
        ms
    }
}

/// The calling thread's CPU time.
fn thread_cpu_time() -> std::time::Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` into `now`, a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

ythread::task! {
    /// Grows the results region to `size` bytes, then replies that the result is its first
    /// byte (job `seq`): a parent that maps the whole region maps `size` bytes.
    pub fn inflate_results(seq: u64, size: u64) -> u64 {
        let (_, results, socket) = descriptors();
        // SAFETY: `ftruncate` on a descriptor this process holds; a shrink is refused by the
        // region's seal.
        unsafe { libc::ftruncate(results, size as libc::off_t) };
        let reply = RawPacket { seq, body: shared_reply_body(1), ..RawPacket::default() };
        send_packet(socket, &reply);
        0
    }
}

ythread::task! {
    /// Tries to seal the args region against writing and growing: true if it worked.
    pub fn seal_args_region() -> bool {
        let (args, _, _) = descriptors();
        let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW;
        // SAFETY: `fcntl(F_ADD_SEALS)` on a descriptor this process holds.
        unsafe { libc::fcntl(args, libc::F_ADD_SEALS, seals) == 0 }
    }
}

ythread::task! {
    /// Forks a child that holds every descriptor of the worker (its socket included) and waits
    /// for ever, writes the child's pid to `path`, then does what `then` says.
    pub fn fork_then(path: String, then: Misbehave) -> u32 {
        // SAFETY: after `fork` the child calls only `pause`, which is async-signal-safe, in a
        // loop: it never returns into Rust code that could touch locks held by other threads.
        let child = unsafe { libc::fork() };
        if child == 0 {
            loop {
                // SAFETY: `pause` takes no arguments.
                unsafe { libc::pause() };
            }
        }
        let _ = std::fs::write(&path, child.to_string());
        match then {
            Misbehave::Fine => child as u32,
            Misbehave::Abort => std::process::abort(),
            Misbehave::Spin => loop {
                std::hint::spin_loop();
            },
        }
    }
}

/// The test tasks and the hostile ones, for `ythread-hostile-worker` and the pools that use it.
pub fn registry() -> TaskRegistry {
    tasks::registry()
        .with(send_raw)
        .with(inflate_results)
        .with(seal_args_region)
        .with(fork_then)
        .with(claim_no_time)
}
