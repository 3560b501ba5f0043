//! The OS threads handlers run on: a new one only when none is parked, parked after each
//! handler for the next one, renamed for every handler.
//!
//! Starting an OS thread and joining it costs tens of microseconds, far more than the rest of
//! a spawn. So when a handler finishes, its thread *parks*: it waits up to an idle timeout
//! ([`DEFAULT_IDLE_TIMEOUT`], or [`Builder::idle_timeout`](crate::Builder::idle_timeout)) for
//! another handler, and exits if none comes. A spawn takes the most recently parked thread
//! (warm caches) and starts a new one only if none fits.
//!
//! Trade-offs:
//! - A thread serves only handlers with the same name and OS stack size as the one it was
//!   started for: the OS stack size cannot change after the start, and neither can the name
//!   `std::thread::current().name()` (and a panic message) reports. The kernel's name of the
//!   thread (`top -H`, debuggers, `/proc/*/task/*/comm`) is set again for every handler,
//!   truncated to the 15 bytes Linux allows; an unnamed handler's thread is called
//!   `ythread`, never after a previous handler. So naming every handler differently
//!   (`conn-1234`) gives up reuse.
//! - Thread-locals belong to the thread, not the handler: what a handler leaves in one is
//!   there for the next handler on that thread, and their destructors run only when the
//!   thread exits. Opt out per handler with
//!   [`Builder::reuse_thread(false)`](crate::Builder::reuse_thread): that handler gets a
//!   thread of its own, which exits after it, and `join` waits for the exit.
//! - At most [`MAX_PARKED_THREADS`] threads are parked; when a thread parks into a full
//!   pool, the longest-parked one exits, so the pool follows the current mix of names and
//!   stack sizes.

use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::spin;
use crate::unwind::drop_quietly;

/// How long a handler thread stays parked, waiting for the next handler, before it exits.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most handler threads parked at once. Each costs its OS stack's touched pages (a few
/// KiB) and a kernel task; 256 covers a burst of a few hundred connections.
pub const MAX_PARKED_THREADS: usize = 256;

/// The kernel's name for the thread of a handler that has none.
const DEFAULT_NAME: &str = "ythread";

/// Linux keeps 15 bytes of a thread's name (16 with the terminating NUL).
const MAX_OS_NAME: usize = 15;

/// What a handler thread runs: one handler, then the hand-over of its outcome.
pub(crate) trait Job: Send {
    /// Runs the handler to its end, dropping everything it owned.
    fn run(&mut self);
    /// Hands the outcome to the handler's `JoinHandle`. Called after the thread is ready for
    /// its next job, so a caller that joins and spawns again finds this thread parked.
    fn publish(self: Box<Self>);
}

/// Where a handler may run and what its thread does afterwards.
pub(crate) struct Placement {
    pub(crate) name: Option<String>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) reuse: bool,
    pub(crate) idle_timeout: Duration,
}

/// The thread a job was given to.
pub(crate) struct Started {
    pub(crate) thread: Thread,
    /// For a thread that exits after this job.
    pub(crate) exits: Option<std::thread::JoinHandle<()>>,
}

/// How many handler threads are parked right now, waiting for a handler.
///
/// For monitoring and tests; never more than [`MAX_PARKED_THREADS`].
pub fn parked_threads() -> usize {
    PARKED.lock().len()
}

/// What a thread serves: handlers with this name and OS stack size.
#[derive(PartialEq, Eq)]
struct Key {
    name: Option<String>,
    stack_size: Option<usize>,
}

struct Parked {
    key: Arc<Key>,
    thread: Thread,
    mailbox: Arc<Mailbox>,
}

/// Parked threads, longest-parked first.
static PARKED: Mutex<VecDeque<Parked>> = Mutex::new(VecDeque::new());

/// Where a parked thread waits for its next job.
#[derive(Default)]
struct Mailbox {
    letter: Mutex<Option<Letter>>,
    arrived: Condvar,
    /// Whether `letter` holds one: polled without the lock while the thread spins.
    full: AtomicBool,
}

enum Letter {
    Run(Box<dyn Job>, Duration),
    Retire,
}

impl Mailbox {
    fn post(&self, letter: Letter) {
        let mut slot = self.letter.lock();
        *slot = Some(letter);
        // Under the lock, so that it never claims a letter the reader has already taken.
        self.full.store(true, Ordering::Release);
        drop(slot);
        self.arrived.notify_one();
    }
}

/// Runs `job` on a parked thread that fits `placement`, or on a new one.
///
/// # Errors
/// When a new thread is needed and the OS cannot start it.
pub(crate) fn start(placement: Placement, job: Box<dyn Job>) -> io::Result<Started> {
    let key = Key {
        name: placement.name,
        stack_size: placement.stack_size,
    };
    if placement.reuse {
        let parked = {
            let mut parked = PARKED.lock();
            let newest = parked.iter().rposition(|p| *p.key == key);
            newest.and_then(|i| parked.remove(i))
        };
        if let Some(parked) = parked {
            // Posted after `PARKED` is unlocked: a retiring thread locks its mailbox first,
            // then `PARKED`, and nothing takes the two the other way round.
            parked
                .mailbox
                .post(Letter::Run(job, placement.idle_timeout));
            return Ok(Started {
                thread: parked.thread,
                exits: None,
            });
        }
    }
    let mut builder = std::thread::Builder::new();
    if let Some(name) = &key.name {
        builder = builder.name(name.clone());
    }
    if let Some(bytes) = key.stack_size {
        builder = builder.stack_size(bytes);
    }
    let (reuse, idle_timeout) = (placement.reuse, placement.idle_timeout);
    let exits = builder.spawn(move || serve(key, reuse, job, idle_timeout))?;
    let thread = exits.thread().clone();
    Ok(Started {
        thread,
        exits: (!reuse).then_some(exits),
    })
}

/// A handler thread's body: run jobs until there is none within the idle timeout.
fn serve(key: Key, reuse: bool, job: Box<dyn Job>, idle_timeout: Duration) {
    let (key, me) = (Arc::new(key), std::thread::current());
    let mailbox = Arc::new(Mailbox::default());
    set_os_name(key.name.as_deref());
    let mut next = Some((job, idle_timeout));
    while let Some((mut job, idle_timeout)) = next.take() {
        // The driver catches the handler's panics; a panic here is a bug in ythread, and the
        // job then publishes an error saying so. The thread goes on either way.
        contain(|| job.run());
        if reuse {
            park(&key, &me, &mailbox);
        }
        contain(|| job.publish());
        if !reuse {
            return;
        }
        // The handler may have renamed the thread. Every handler this thread serves has the
        // same name, so setting it now, after the outcome is out, names the next handler
        // without a system call on the way from spawn to handler or from handler to join.
        set_os_name(key.name.as_deref());
        next = wait_for_job(&mailbox, idle_timeout);
    }
}

/// Runs `f`; a panic out of it is dropped (quietly, the hook has printed it).
fn contain(f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        drop_quietly(payload);
    }
}

/// Lists this thread as parked, retiring the longest-parked thread if the pool is full.
fn park(key: &Arc<Key>, me: &Thread, mailbox: &Arc<Mailbox>) {
    let retired = {
        let mut parked = PARKED.lock();
        let retired = if parked.len() >= MAX_PARKED_THREADS {
            parked.pop_front()
        } else {
            None
        };
        parked.push_back(Parked {
            key: Arc::clone(key),
            thread: me.clone(),
            mailbox: Arc::clone(mailbox),
        });
        retired
    };
    if let Some(retired) = retired {
        retired.mailbox.post(Letter::Retire);
    }
}

/// Waits for the next job; `None` when the thread should exit.
fn wait_for_job(
    mailbox: &Arc<Mailbox>,
    idle_timeout: Duration,
) -> Option<(Box<dyn Job>, Duration)> {
    // An idle timeout too long to represent means waiting for good.
    let mut deadline = Instant::now().checked_add(idle_timeout);
    spin::parked_spin(spin::PARKED_SPIN.min(idle_timeout), || {
        mailbox.full.load(Ordering::Acquire)
    });
    let mut letter = mailbox.letter.lock();
    loop {
        mailbox.full.store(false, Ordering::Relaxed);
        match letter.take() {
            Some(Letter::Run(job, idle_timeout)) => return Some((job, idle_timeout)),
            Some(Letter::Retire) => return None,
            None => {}
        }
        let Some(by) = deadline else {
            mailbox.arrived.wait(&mut letter);
            continue;
        };
        if !mailbox.arrived.wait_until(&mut letter, by).timed_out() || letter.is_some() {
            continue;
        }
        // Idle for the whole timeout: leave, unless a spawn took this thread off the list
        // just now; then its job is on the way (posted right after), so wait for it.
        let mut parked = PARKED.lock();
        match parked.iter().position(|p| Arc::ptr_eq(&p.mailbox, mailbox)) {
            Some(i) => {
                parked.remove(i);
                return None;
            }
            None => deadline = None,
        }
    }
}

/// Sets the kernel's name of this thread to `name` (or [`DEFAULT_NAME`]), truncated to what
/// Linux keeps, at a character boundary.
#[cfg(target_os = "linux")]
fn set_os_name(name: Option<&str>) {
    let name = name.unwrap_or(DEFAULT_NAME);
    let mut len = name.len().min(MAX_OS_NAME);
    while !name.is_char_boundary(len) {
        len -= 1;
    }
    let mut bytes = [0u8; MAX_OS_NAME + 1];
    bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
    // SAFETY: `bytes` is a NUL-terminated string of at most 16 bytes with the NUL (the last
    // byte is never written), as `pthread_setname_np` requires on Linux; it outlives the
    // call, which copies it. `pthread_self()` is the calling thread, which is alive.
    unsafe {
        libc::pthread_setname_np(libc::pthread_self(), bytes.as_ptr().cast());
    }
}

#[cfg(not(target_os = "linux"))]
fn set_os_name(_name: Option<&str>) {}
