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

// Process and thread control: each function below is one system call (or two) behind a safe
// signature. What each needs from its arguments is plain integers, or a local this function
// owns for the length of the call; which pid is the right one to pass is the caller's concern
// and said in each function's docs, because a wrong pid is a wrong result, never unsoundness.

/// The calling thread's id.
pub(crate) fn gettid() -> u32 {
    // SAFETY: `gettid` has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    tid as u32
}

/// Sets the nice value of the thread `id` (a process id names its main thread); failure is
/// ignored (see `priority.rs`).
pub(crate) fn set_nice(id: u32, nice: i32) {
    // SAFETY: `setpriority` reads only its integer arguments; a thread or process id is a
    // valid `PRIO_PROCESS` target on Linux. The result is ignored on purpose.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, id as libc::id_t, nice);
    }
}

/// Puts the thread `id` in the idle scheduling class (`SCHED_IDLE`); failure is ignored (see
/// `priority.rs`).
pub(crate) fn set_idle(id: u32) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` that outlives the call, which only reads it;
    // the other arguments are integers. The result is ignored on purpose.
    unsafe {
        libc::sched_setscheduler(id as libc::pid_t, libc::SCHED_IDLE, &param);
    }
}

/// SIGKILLs the process group led by `pid`, then `pid` itself (a process that left its group
/// keeps the second signal). The caller passes a child of this process that has not been
/// reaped: neither its pid nor its group's id can then name an unrelated process, because a
/// group's id stays taken while its leader is unreaped. Values of 0 or less, which would
/// signal whole process groups of our choosing, are ignored.
pub(crate) fn kill_group_and_leader(pid: u32) {
    let Some(pid) = libc::pid_t::try_from(pid).ok().filter(|&p| p > 0) else {
        return;
    };
    // SAFETY: `kill` takes two integers and touches no memory of ours; `pid` is positive, so
    // `-pid` names one process group and `pid` one process.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

/// The CPU-time clock of process `pid` (the caller's unreaped child, so that the clock names
/// no other process later), if the kernel gives one.
pub(crate) fn cpu_clock(pid: u32) -> Option<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock_getcpuclockid` writes one clock id into `clock`, a live local.
    let found = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
    (found == 0).then_some(clock)
}

/// The time of `clock` now, if it can be read.
pub(crate) fn clock_now(clock: libc::clockid_t) -> Option<std::time::Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` into `now`, a live local; an invalid
    // clock id is an error return, not undefined behaviour.
    let read = unsafe { libc::clock_gettime(clock, &mut now) };
    (read == 0).then(|| std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

/// Whether the child `pid` has exited (or is no child of ours, so there is nothing to wait
/// for), without reaping it and without blocking.
pub(crate) fn child_exited(pid: u32) -> bool {
    // SAFETY: an all-zero `siginfo_t` is a valid value for `waitid` to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `waitid` writes into `info`, a live local; WNOWAIT leaves the child unreaped,
    // WNOHANG returns at once.
    let result = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
        )
    };
    // A failed `waitid` (no such child) has nothing to wait for either.
    // SAFETY: `si_pid` is set by a successful `waitid` (0 while the child runs), and `info`
    // was zeroed before, so the field is initialised either way.
    result != 0 || unsafe { info.si_pid() } != 0
}

/// Asks the kernel to SIGKILL this process when the thread that started it exits
/// (`PR_SET_PDEATHSIG`); then returns this process's parent id now.
pub(crate) fn die_with_parent_thread() -> libc::pid_t {
    // SAFETY: `prctl(PR_SET_PDEATHSIG, sig)` reads its integer arguments only and changes a
    // setting of the calling process; no memory is passed.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    // SAFETY: `getppid` has no preconditions and cannot fail.
    unsafe { libc::getppid() }
}

/// Caps this process's data segment (`RLIMIT_DATA`) at `bytes`, soft and hard limit alike.
pub(crate) fn limit_data(bytes: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: `setrlimit` reads the struct it is given, a valid initialised local that
    // outlives the call, and changes a limit of the calling process only.
    let result = unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub(crate) fn pipe_cloexec() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `pipe2` writes two descriptors into `fds`, a live local array of two.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created by `pipe2` and are owned by nothing else.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}
