//! What the crate asks of the operating system beyond std's portable surface.
//!
//! A leaf: the strategies and the configuration both read the machine's size from here rather
//! than from each other, so neither has to import the other for it.

/// The number of cores this process may use (at least 1): what `rayon`, `subprocess` and a
/// node's capacity default to. The affinity mask counts, so a process pinned to 2 of 8 cores
/// sizes itself for 2.
pub(crate) fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
