//! The server's only `unsafe`: termination signals and waiting on the listening socket.
//!
//! The signal handler does one async-signal-safe thing, a lock-free atomic store, and the
//! accept loop polls that flag between `poll(2)` waits of at most [`super::POLL_INTERVAL`]. So
//! a signal stops the server within that interval, a waiting connection is accepted at once,
//! and an idle server wakes a few times a second. Handlers are installed with `SA_RESETHAND`:
//! the first SIGINT or SIGTERM asks for a graceful stop, a second one kills the process the
//! default way, so an impatient Ctrl-C still works.

use std::io;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
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

/// Waits until `socket` is readable (for a listener: a connection is waiting) or `timeout`
/// passes. Returns whether it is readable; an interrupting signal counts as "not yet".
pub(crate) fn wait_readable(socket: &impl AsFd, timeout: Duration) -> io::Result<bool> {
    let mut entry = libc::pollfd {
        fd: socket.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `entry` is a valid, exclusively borrowed pollfd array of length 1; its fd is
    // open for the whole call because `socket` is borrowed for it.
    let ready = unsafe { libc::poll(&mut entry, 1, millis) };
    match ready {
        -1 => match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            e => Err(e),
        },
        0 => Ok(false),
        _ => Ok(true),
    }
}
