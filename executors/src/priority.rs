//! CPU priority (nice values) for the threads and processes that run heavy work, so that the
//! handlers' I/O and short work preempt them.
//!
//! On Linux `setpriority(PRIO_PROCESS, id)` applies to one thread: the calling thread for a
//! rayon pool thread, the main thread of a worker process (which runs its serve loop).
//! Failure (a lower value than allowed without privileges) leaves the priority as it was: a
//! slower pool is better than none.

/// Sets the nice value of the calling thread.
pub(crate) fn set_own_nice(nice: i32) {
    // SAFETY: `gettid` has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    set_nice(tid as u32, nice);
}

/// Sets the nice value of the thread `id` (a process id names its main thread).
pub(crate) fn set_nice(id: u32, nice: i32) {
    // SAFETY: `setpriority` reads only its integer arguments; a thread or process id is a
    // valid `PRIO_PROCESS` target on Linux. The result is ignored on purpose (module docs).
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, id as libc::id_t, nice);
    }
}
