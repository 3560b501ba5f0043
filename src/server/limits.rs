//! What the OS allows the server: the default connection cap and the listen backlog.
//!
//! A connection costs one file descriptor (its socket) and, at worst, one thread (its
//! handler: a resting connection holds none, but one that keeps sending requests does), so
//! the default cap is what both limits leave after a reserve for everything else the process
//! holds: the listening socket, the epoll instance, stdio, the descriptor each acceptor
//! waiting in `accept` has already been allotted, a strategy's pipes and worker processes. Threads are shared with the rest of the machine, so the server counts on at most
//! half the system's thread limit. The cap keeps the server out of the fd crisis; the limits
//! themselves are the operator's to raise (`ulimit -n`).

use std::fs;

use super::sys::soft_rlimit;

/// Descriptors kept back from the connection cap for the rest of the process.
pub const RESERVED_FDS: u64 = 64;

/// Where the default cap comes from, for the start-up line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The process's soft limit on open file descriptors.
    pub fd_limit: u64,
    /// The threads this server counts on: half the smallest of the process's and the
    /// system's thread limits.
    pub thread_limit: u64,
}

impl ConnectionLimits {
    /// Reads the limits of this process and system.
    pub fn of_this_process() -> Self {
        let fd_limit = soft_rlimit(libc::RLIMIT_NOFILE).unwrap_or(1024);
        let system_threads = ["/proc/sys/kernel/threads-max", "/proc/sys/kernel/pid_max"]
            .iter()
            .filter_map(|path| read_number(path))
            .min()
            .unwrap_or(32_768);
        let process_threads = soft_rlimit(libc::RLIMIT_NPROC).unwrap_or(u64::MAX);
        ConnectionLimits {
            fd_limit,
            thread_limit: system_threads.min(process_threads) / 2,
        }
    }

    /// The cap these limits allow: at least 1.
    pub fn max_connections(self) -> usize {
        let fds = self.fd_limit.saturating_sub(RESERVED_FDS);
        usize::try_from(fds.min(self.thread_limit).max(1)).unwrap_or(usize::MAX)
    }
}

/// The default connection cap of this process: see [`ConnectionLimits`].
pub fn default_max_connections() -> usize {
    ConnectionLimits::of_this_process().max_connections()
}

/// The longest listen backlog the OS grants (`net.core.somaxconn`); Linux silently shortens
/// any longer request to it.
pub fn max_backlog() -> u32 {
    read_number("/proc/sys/net/core/somaxconn")
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(4096)
}

fn read_number(path: &str) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_the_smaller_limit_after_the_reserve() {
        let limits = ConnectionLimits {
            fd_limit: 20_000,
            thread_limit: 48_000,
        };
        assert_eq!(limits.max_connections(), 20_000 - RESERVED_FDS as usize);
        let few_threads = ConnectionLimits {
            fd_limit: 20_000,
            thread_limit: 500,
        };
        assert_eq!(few_threads.max_connections(), 500);
        let tiny = ConnectionLimits {
            fd_limit: 10,
            thread_limit: 500,
        };
        assert_eq!(tiny.max_connections(), 1);
    }

    #[test]
    fn this_process_has_a_cap_and_a_backlog() {
        assert!(default_max_connections() >= 1);
        assert!(max_backlog() >= 1);
    }
}
