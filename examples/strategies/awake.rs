//! Keeps the other cores awake while an unloaded baseline is measured.
//!
//! On a VM an idle vCPU halts and the host deschedules it; waking it for the next request
//! costs tens to hundreds of microseconds. A tiny request ping-ponging between a client and a
//! server thread on an otherwise idle machine pays that wake-up on every hop, so it runs
//! *slower* alone than under load, and "kept N% of its unloaded rate" read 1482%. A spinning
//! thread at the lowest priority (nice 19) on each other core keeps those cores out of the
//! idle state; the scheduler preempts it at once for any normal thread, so the baseline
//! measures the server, not the wake-ups.
//!
//! Trade-offs: the spinners take a little CPU from the measured threads (a nice-19 thread
//! weighs 15 against a normal thread's 1024 under CFS, so about 1.5% when they share a core)
//! and burn power while they run; they run only during the unloaded phases.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// The spinners; dropping this stops and joins them.
pub(crate) struct KeepAwake {
    stop: Arc<AtomicBool>,
    spinners: Vec<JoinHandle<()>>,
}

/// The lowest priority there is, so that any real work preempts a spinner.
const SPINNER_NICE: libc::c_int = 19;

impl KeepAwake {
    /// One spinner per core but one (the one the measured threads wake up on first). A
    /// spinner that cannot start or lower its priority is left out: spinning at normal
    /// priority would compete with the measurement instead of keeping a core awake.
    pub(crate) fn other_cores(cores: usize) -> KeepAwake {
        let stop = Arc::new(AtomicBool::new(false));
        let spinners = (1..cores)
            .filter_map(|i| {
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name(format!("keep-awake-{i}"))
                    .spawn(move || {
                        if !lower_priority() {
                            return;
                        }
                        while !stop.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                    })
                    .ok()
            })
            .collect();
        KeepAwake { stop, spinners }
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for spinner in self.spinners.drain(..) {
            let _ = spinner.join();
        }
    }
}

/// Sets the calling thread's nice value to [`SPINNER_NICE`]; on Linux `setpriority` with a
/// thread id applies to that thread only.
fn lower_priority() -> bool {
    // SAFETY: `gettid` has no preconditions and only returns the caller's thread id.
    let tid = unsafe { libc::gettid() };
    // SAFETY: `setpriority` reads only its integer arguments; `tid` is this thread's id.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, SPINNER_NICE) == 0 }
}
