//! The serving layer's only `unsafe`: termination signals, the epoll instance over the
//! connections (the watcher's, which serving threads help with), a bounded wait for a new
//! connection's first byte, and reading resource limits.
//!
//! The signal handler does one async-signal-safe thing, a lock-free atomic store, and the
//! watcher looks at that flag between `epoll_wait(2)` waits of at most
//! [`super::POLL_INTERVAL`]. So a signal stops the server within that interval, and an idle
//! server wakes a few times a second. A
//! self-pipe would make the stop immediate; 50 ms is short enough for a stop and keeps the
//! handler to one store. Handlers are installed with `SA_RESETHAND`:
//! the first SIGINT or SIGTERM asks for a graceful stop, a second one kills the process the
//! default way, so an impatient Ctrl-C still works.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// The last termination signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn record_signal(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM ask for a graceful stop instead of killing the process: after
/// this, [`termination_signal`] reports them and a [`Server`](super::Server) told to
/// [`stop_on_signals`](super::Server::stop_on_signals) stops. A second signal of the same kind
/// kills the process as usual. Calling it again is harmless.
///
/// # Errors
/// If `sigaction` fails (it does not for these signals on Linux).
pub fn install_signal_handlers() -> io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `libc::sigaction` is a plain C struct of integers, a function pointer-sized
        // integer and a signal set, for which all-zero bytes are a valid value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = record_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
        // SAFETY: `sa_mask` is a valid, exclusively borrowed `sigset_t` inside `action`.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `signal` is a valid catchable signal number; `action` is a fully initialised
        // sigaction whose handler is an `extern "C" fn(c_int)` that only performs an atomic
        // store (async-signal-safe, no allocation, no locks) and lives for the whole program;
        // passing null for the old action is allowed.
        let status = unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
        if status != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The termination signal (SIGINT or SIGTERM) received since
/// [`install_signal_handlers`], if any.
pub fn termination_signal() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// The soft limit of `resource`, or `None` when unlimited or unreadable.
pub(crate) fn soft_rlimit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, exclusively borrowed rlimit for the kernel to fill.
    let status = unsafe { libc::getrlimit(resource, &mut limit) };
    (status == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Reads what `socket` has now into `into`, without waiting: `WouldBlock` if it has nothing.
pub(crate) fn read_now(socket: &impl AsFd, into: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `into` is valid for writes of `into.len()` bytes for the whole call (an
    // exclusive borrow), the kernel writes at most that many, and the descriptor is open
    // (borrowed from `socket`).
    let read = unsafe {
        libc::recv(
            socket.as_fd().as_raw_fd(),
            into.as_mut_ptr().cast(),
            into.len(),
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(read).map_err(|_| io::Error::last_os_error())
}

/// Waits up to `timeout` for `socket` to have input, end-of-stream or an error; whether it
/// has.
pub(crate) fn wait_readable(socket: &impl AsFd, timeout: Duration) -> bool {
    let mut watched = libc::pollfd {
        fd: socket.as_fd().as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `watched` is one valid, exclusively borrowed pollfd for the duration of the
    // call, and its descriptor is open (borrowed from `socket`).
    let ready = unsafe { libc::poll(&mut watched, 1, millis) };
    ready > 0
}

/// One epoll instance over the connections, waited on by the watcher and, without waiting,
/// by serving threads that help it; every event is reported to one of them. While a handler serves
/// a connection, only its hang-up is watched (edge-triggered: reported once, when the peer's
/// end-of-stream or reset arrives), so request bytes never wake the loop. While a connection
/// rests (no handler, see [`super::resting`]), its next input is watched once,
/// level-triggered, so that input which arrived before the watch is reported too. A
/// connection's registration goes away with its socket.
pub(crate) struct Poller {
    epoll: OwnedFd,
}

/// The most events one wait takes.
const BATCH: usize = 256;

/// A connection's hang-up, reported once (see [`Poller`]).
const HANG_UP: u32 = (libc::EPOLLRDHUP | libc::EPOLLET) as u32;

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: `epoll_create1` takes only flags and returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by `epoll_create1`, is open, and nothing else owns it.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Poller { epoll })
    }

    /// Reports `key` once when the peer of `socket` closes its side or resets.
    pub(crate) fn watch_hang_up(&self, socket: &impl AsFd, key: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, socket, HANG_UP, key)
    }

    /// Back to watching only the hang-up of a connection watched with
    /// [`Poller::watch_input_once`], for a handler that serves it again.
    pub(crate) fn rewatch_hang_up(&self, socket: &impl AsFd, key: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, socket, HANG_UP, key)
    }

    /// Reports `key` once when `socket` has input, end-of-stream or an error, including any
    /// that is already there (a connection watched with [`Poller::watch_hang_up`]).
    pub(crate) fn watch_input_once(&self, socket: &impl AsFd, key: u64) -> io::Result<()> {
        let events = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32;
        self.control(libc::EPOLL_CTL_MOD, socket, events, key)
    }

    fn control(
        &self,
        operation: libc::c_int,
        socket: &impl AsFd,
        events: u32,
        key: u64,
    ) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: key };
        // SAFETY: both descriptors are open for the call (the poller owns one, `socket` is
        // borrowed), and `event` is a valid epoll_event that the kernel only reads.
        let status = unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                operation,
                socket.as_fd().as_raw_fd(),
                &mut event,
            )
        };
        if status < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` for events and replaces `keys` with their keys; an interrupting
    /// signal returns with none.
    pub(crate) fn wait(&self, keys: &mut Vec<u64>, timeout: Duration) -> io::Result<()> {
        let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        self.wait_for(keys, millis, BATCH)
    }

    /// The key of one event ready now, without waiting.
    pub(crate) fn ready_one(&self) -> io::Result<Option<u64>> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `event` is one writable epoll_event that outlives the call, the kernel
        // writes at most one, and the epoll descriptor is open.
        let ready = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, 0) };
        match ready {
            1 => Ok(Some(event.u64)),
            0 => Ok(None),
            _ => match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::Interrupted => Ok(None),
                e => Err(e),
            },
        }
    }

    fn wait_for(&self, keys: &mut Vec<u64>, millis: libc::c_int, max: usize) -> io::Result<()> {
        let max = max.clamp(1, BATCH);
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
        // SAFETY: `events` is a writable array of `BATCH` epoll_events that outlives the call,
        // the kernel writes at most `max` <= `BATCH` of them, and the epoll descriptor is open.
        let ready = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                max as libc::c_int,
                millis,
            )
        };
        keys.clear();
        let Ok(ready) = usize::try_from(ready) else {
            return match io::Error::last_os_error() {
                e if e.kind() == io::ErrorKind::Interrupted => Ok(()),
                e => Err(e),
            };
        };
        keys.extend(events[..ready].iter().map(|event| event.u64));
        Ok(())
    }
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("epoll", &self.epoll)
            .finish()
    }
}
