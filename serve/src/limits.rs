//! What the OS allows the server: the connection cap, the thread cap and the listen backlog.
//!
//! A connection costs one file descriptor (its socket), and no thread unless a turn is in
//! progress on it; a thread costs about [`MAPS_PER_THREAD`] memory maps (its stack and guard
//! page, its coroutine stack and guard, the thread's own allocations), and the kernel refuses
//! new maps past `vm.max_map_count` (65,530 by default): past that, thread starts and
//! allocations fail, and a server that counted only descriptors and threads stops answering.
//! So two caps are derived, each from what its unit costs:
//!
//! - connections: the fd limit after [`RESERVED_FDS`] for everything else (the listening
//!   socket, the epoll instance, stdio, the descriptors acceptors waiting in `accept` have
//!   been allotted, a strategy's pipes and worker processes);
//! - threads serving turns at once: the smallest of half the system's and the process's
//!   thread limits (threads are shared with the rest of the machine) and what the map limit
//!   leaves after [`RESERVED_MAPS`] for the rest of the process, at [`MAPS_PER_THREAD`] each.
//!
//! Past either, the server refuses with the protocol's busy reply instead of hanging. A
//! thread per connection would make the thread cap the connection cap (about 10,900 at the
//! default map limit); with threads per turn, a connection's cost is its descriptor.

use std::fs;

use super::sys::soft_rlimit;

/// Descriptors kept back from the connection cap for the rest of the process.
pub const RESERVED_FDS: u64 = 64;

/// Memory maps a serving thread costs, counted in `/proc/PID/maps` on Linux: thread stack and
/// guard, coroutine stack and guard, and the thread's share of allocator arenas.
pub const MAPS_PER_THREAD: u64 = 6;

/// Memory maps kept back from the thread cap for the rest of the process (libraries, heap,
/// a strategy's buffers).
pub const RESERVED_MAPS: u64 = 2_048;

/// Where the default caps come from, for the start-up line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The process's soft limit on open file descriptors.
    pub fd_limit: u64,
    /// The threads this server counts on: half the smallest of the process's and the
    /// system's thread limits.
    pub thread_limit: u64,
    /// The system's limit on a process's memory maps (`vm.max_map_count`).
    pub map_limit: u64,
}

/// Which limit a cap came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitSource {
    /// The fd limit.
    Fds,
    /// The thread limit.
    Threads,
    /// The memory-map limit.
    Maps,
}

impl std::fmt::Display for LimitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitSource::Fds => "the fd limit",
            LimitSource::Threads => "the thread limit",
            LimitSource::Maps => "the memory-map limit (vm.max_map_count)",
        })
    }
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
            map_limit: read_number("/proc/sys/vm/max_map_count").unwrap_or(65_530),
        }
    }

    /// The connection cap these limits allow: at least 1.
    pub fn max_connections(self) -> usize {
        let fds = self.fd_limit.saturating_sub(RESERVED_FDS);
        usize::try_from(fds.max(1)).unwrap_or(usize::MAX)
    }

    /// The most threads serving turns at once, and the limit it came from: at least 1.
    pub fn max_threads(self) -> (usize, LimitSource) {
        let by_maps = self.map_limit.saturating_sub(RESERVED_MAPS) / MAPS_PER_THREAD;
        let (max, source) = if by_maps < self.thread_limit {
            (by_maps, LimitSource::Maps)
        } else {
            (self.thread_limit, LimitSource::Threads)
        };
        (usize::try_from(max.max(1)).unwrap_or(usize::MAX), source)
    }

    /// The binding limit among the fd, thread and memory-map limits: the smallest number of
    /// connections that could all be in a turn at once, and where it comes from.
    pub fn tightest(self) -> (usize, LimitSource) {
        let connections = self.max_connections();
        let (threads, source) = self.max_threads();
        if connections <= threads {
            (connections, LimitSource::Fds)
        } else {
            (threads, source)
        }
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

    const MAPS_FOR_10K: u64 = RESERVED_MAPS + 10_000 * MAPS_PER_THREAD;

    #[test]
    fn the_connection_cap_is_the_fd_limit_after_the_reserve() {
        let limits = ConnectionLimits {
            fd_limit: 20_000,
            thread_limit: 500,
            map_limit: 65_530,
        };
        assert_eq!(limits.max_connections(), 20_000 - RESERVED_FDS as usize);
        let tiny = ConnectionLimits {
            fd_limit: 10,
            ..limits
        };
        assert_eq!(tiny.max_connections(), 1);
    }

    #[test]
    fn the_thread_cap_is_the_smaller_of_the_thread_and_map_limits() {
        let by_maps = ConnectionLimits {
            fd_limit: 20_000,
            thread_limit: 16_384,
            map_limit: MAPS_FOR_10K,
        };
        assert_eq!(by_maps.max_threads(), (10_000, LimitSource::Maps));
        let by_threads = ConnectionLimits {
            thread_limit: 500,
            ..by_maps
        };
        assert_eq!(by_threads.max_threads(), (500, LimitSource::Threads));
        let no_maps_left = ConnectionLimits {
            map_limit: 100,
            ..by_maps
        };
        assert_eq!(no_maps_left.max_threads(), (1, LimitSource::Maps));
    }

    #[test]
    fn the_tightest_limit_is_the_smallest_of_the_three() {
        let cases = [
            (
                1_000 + RESERVED_FDS,
                16_384,
                MAPS_FOR_10K,
                1_000,
                LimitSource::Fds,
            ),
            (20_000, 700, MAPS_FOR_10K, 700, LimitSource::Threads),
            (20_000, 16_384, MAPS_FOR_10K, 10_000, LimitSource::Maps),
        ];
        for (fd_limit, thread_limit, map_limit, max, source) in cases {
            let limits = ConnectionLimits {
                fd_limit,
                thread_limit,
                map_limit,
            };
            assert_eq!(limits.tightest(), (max, source), "{limits:?}");
        }
    }

    #[test]
    fn this_process_has_caps_and_a_backlog() {
        let limits = ConnectionLimits::of_this_process();
        assert!(limits.max_connections() >= 1);
        assert!(limits.max_threads().0 >= 1);
        assert!(max_backlog() >= 1);
    }
}
