//! Noticing workers that die while idle: one thread per pool waits on every worker's pidfd.
//!
//! Without it, a worker killed while it waits for a job stays a zombie and a listed member
//! until a caller happens to send it a job, and, because idle workers are reused last-in
//! first-out, a pool can run short of its size for a long time without anyone noticing.
//!
//! A pidfd (Linux 5.3+) becomes readable when its process exits, so a thread blocked in `poll`
//! on all of them costs nothing until something dies, and hears of a death at once. The
//! supervisor opens each worker's pidfd when it admits the worker (the process is its unreaped
//! child then, so the pid cannot name another process) and hands it over; the watch reports
//! each exit once, by pid, and closes the pidfd. The supervisor then takes the worker out of
//! the idle set if it is there: a worker that died busy is its caller's to report.
//!
//! Why not SIGCHLD: it is process-wide, so a library must not take it from the application,
//! and a handler can do little more than this thread does. Where `pidfd_open` is missing (old
//! kernels, some sandboxes) nothing is watched: an idle death is then found by the next job
//! sent to the worker, which the pool retries on another worker (see `mod.rs`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::thread;

/// What the watch thread is told.
enum Order {
    /// Watch worker `pid` through this pidfd.
    Watch(u32, OwnedFd),
    /// Stop.
    Stop,
}

/// The handle of a pool's death watch. Dropping it stops the thread.
pub(super) struct DeathWatch {
    orders: mpsc::Sender<Order>,
    /// An eventfd that wakes the thread to read its orders.
    wake: OwnedFd,
    thread: Option<thread::JoinHandle<()>>,
}

impl DeathWatch {
    /// Starts the watch; `died` is called on its thread with the pid of each watched worker
    /// that exits.
    pub(super) fn start(died: impl FnMut(u32) + Send + 'static) -> io::Result<Self> {
        // SAFETY: `eventfd` takes two integers and returns a new descriptor or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(raw) };
        let thread_wake = wake.try_clone()?;
        let (orders, inbox) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("ythread-deaths".to_owned())
            .spawn(move || watch(&thread_wake, &inbox, died))?;
        Ok(DeathWatch {
            orders,
            wake,
            thread: Some(thread),
        })
    }

    /// Watches worker `pid`, which must be an unreaped child of this process. Returns whether
    /// it is watched (false where pidfds are not available).
    pub(super) fn watch(&self, pid: u32) -> bool {
        let Some(pidfd) = pidfd_open(pid) else {
            return false;
        };
        self.orders.send(Order::Watch(pid, pidfd)).is_ok() && self.poke()
    }

    fn poke(&self) -> bool {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of `one`, a live local, to the eventfd this handle owns.
        let written = unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                (&raw const one).cast(),
                size_of::<u64>(),
            )
        };
        written == size_of::<u64>() as isize
    }
}

impl Drop for DeathWatch {
    fn drop(&mut self) {
        let _ = self.orders.send(Order::Stop);
        self.poke();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The pidfd of `pid`, if the kernel has pidfds. `pid` must be an unreaped child of this
/// process, so that it names that process and no other.
pub(super) fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).ok().filter(|&p| p > 0)?;
    // SAFETY: `pidfd_open(pid, flags)` takes two integers and returns a new descriptor or -1.
    // The pid is an unreaped child of this process (see `DeathWatch::watch`), so it names
    // that worker and no other process.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let raw = RawFd::try_from(raw).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: `raw` is a fresh descriptor that nothing else owns (pidfds are close-on-exec).
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The thread's body: polls the eventfd and every pidfd until told to stop.
fn watch(wake: &OwnedFd, orders: &mpsc::Receiver<Order>, mut died: impl FnMut(u32)) {
    let mut watched: Vec<(u32, OwnedFd)> = Vec::new();
    loop {
        let mut fds: Vec<libc::pollfd> = std::iter::once(wake.as_raw_fd())
            .chain(watched.iter().map(|(_, fd)| fd.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a live, initialised array of `fds.len()` pollfds; the descriptors
        // stay open for the call (they are owned by `wake` and `watched`).
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if ready < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        // Exits first, then orders: a pid reported and a new pidfd for a reused pid never mix.
        let mut index = watched.len();
        while index > 0 {
            index -= 1;
            if fds[index + 1].revents != 0 {
                let (pid, _pidfd) = watched.swap_remove(index);
                died(pid);
            }
        }
        if fds[0].revents != 0 {
            let mut count: u64 = 0;
            // SAFETY: reads 8 bytes into `count`, a live local, from the eventfd (non-blocking).
            unsafe {
                libc::read(wake.as_raw_fd(), (&raw mut count).cast(), size_of::<u64>());
            }
        }
        loop {
            match orders.try_recv() {
                Ok(Order::Watch(pid, pidfd)) => watched.push((pid, pidfd)),
                Ok(Order::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_exit_is_reported_once_by_pid() {
        let (tell, told) = mpsc::channel();
        let watch = DeathWatch::start(move |pid| {
            let _ = tell.send(pid);
        })
        .unwrap();
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        let pid = child.id();
        assert!(watch.watch(pid), "pidfds are available on the test machine");
        child.kill().unwrap();
        assert_eq!(told.recv_timeout(Duration::from_secs(60)), Ok(pid));
        child.wait().unwrap();
        drop(watch);
        assert!(told.try_recv().is_err(), "reported once");
    }
}
