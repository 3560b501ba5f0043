//! Naming a handler's coroutine-stack overflow instead of dying with a bare SIGSEGV.
//!
//! A handler that overflows its coroutine stack hits the stack's guard page. Rust's own
//! overflow report only knows OS thread stacks, so without help the process dies with a plain
//! "Segmentation fault". A SIGSEGV handler (installed once, on the alternate signal stack that
//! `std` gives every thread it starts) checks whether the faulting address lies in the guard
//! page of the coroutine stack running on this thread; if so it writes one line to stderr
//! naming the stack size and how to raise it. Either way it then puts the previous handler
//! back and returns, so the fault repeats and ends the process exactly as before: this module
//! only adds words, it never tries to recover.
//!
//! Trade-off: the handler is process-wide. A program that installs its own SIGSEGV handler
//! after the first yieldable thread starts replaces this one, and loses only the message.

use std::cell::Cell;
use std::sync::{Once, OnceLock};

/// The guard page of the coroutine stack this thread is running, if any.
#[derive(Clone, Copy)]
struct Guard {
    start: usize,
    end: usize,
    usable: usize,
}

impl Guard {
    const NONE: Guard = Guard {
        start: 0,
        end: 0,
        usable: 0,
    };
}

thread_local! {
    // Const-initialised and without a destructor: reading it needs no lazy initialisation and
    // cannot fail, which is what makes it usable from a signal handler.
    static GUARD: Cell<Guard> = const { Cell::new(Guard::NONE) };
}

static INSTALL: Once = Once::new();
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Marks `[limit, limit + page)` as this thread's coroutine guard page until the returned
/// value is dropped. `limit` is the lowest address of the stack mapping (corosensei's
/// `Stack::limit`, which includes the guard page).
pub(crate) fn watch(limit: usize, usable: usize) -> Watch {
    INSTALL.call_once(install);
    let page = page_size();
    GUARD.with(|g| {
        g.set(Guard {
            start: limit,
            end: limit + page,
            usable,
        })
    });
    Watch(())
}

/// Stops watching when dropped.
pub(crate) struct Watch(());

impl Drop for Watch {
    fn drop(&mut self) {
        GUARD.with(|g| g.set(Guard::NONE));
    }
}

fn page_size() -> usize {
    // SAFETY: `sysconf` only reads its integer argument.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

fn install() {
    // SAFETY: `sigaction` is plain data, all-zero is a valid value for it;
    // `sigemptyset` is given a pointer to that owned, writable mask; `sigaction(2)` is given
    // pointers to two owned, initialised structs that outlive the call. `on_fault` has the
    // three-argument signature that `SA_SIGINFO` requires.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_fault as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        let mut previous: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGSEGV, &action, &mut previous) == 0 {
            let _ = PREVIOUS.set(previous);
        }
    }
}

extern "C" fn on_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an `SA_SIGINFO` handler, and for
    // SIGSEGV `si_addr` is the faulting address.
    let address = unsafe { (*info).si_addr() } as usize;
    let guard = GUARD.with(Cell::get);
    if (guard.start..guard.end).contains(&address) {
        report(guard.usable);
    }
    let default = {
        // SAFETY: all-zero is a valid `sigaction`, and with `sa_sigaction` = 0 it is SIG_DFL.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = libc::SIG_DFL;
        action
    };
    let previous = PREVIOUS.get().unwrap_or(&default);
    // SAFETY: `sigaction(2)` is async-signal-safe; `previous` points to an initialised struct
    // that lives for the whole program (a static) or for this call (`default`).
    unsafe {
        libc::sigaction(signal, previous, std::ptr::null_mut());
    }
}

/// Writes the report with `write(2)` only: no allocation, no locks, as a signal handler must.
fn report(usable: usize) {
    let mut line = [0u8; 256];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(line.len() - len);
        line[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"\nythread: a handler overflowed its coroutine stack of ");
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut value = usable;
    loop {
        i -= 1;
        digits[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    put(&digits[i..]);
    put(b" bytes; give it a larger one with ythread::Builder::stack_size\n");
    // SAFETY: `write(2)` is async-signal-safe and reads `len` initialised bytes of `line`.
    unsafe {
        libc::write(2, line.as_ptr().cast(), len);
    }
}
