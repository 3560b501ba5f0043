//! Spinning briefly before sleeping, where the answer usually comes within microseconds.
//!
//! Handing a handler to a parked thread and waiting for its outcome are two cross-thread
//! wake-ups; through a futex each costs several microseconds on the waking side and more on
//! the woken one, the bulk of a spawn + join of a short handler. A waiter that first polls for
//! a few microseconds sees a quick answer without either. The price is a busy core for at
//! most the spin limit, and the spin yields the core between polls so that on a loaded
//! machine it does not keep the thread it waits for off the CPU.

use std::time::{Duration, Instant};

/// How long a parked handler thread polls for its next handler before it sleeps.
pub(crate) const PARKED_SPIN: Duration = Duration::from_micros(50);

/// How long `join` polls for the outcome before it sleeps.
pub(crate) const JOIN_SPIN: Duration = Duration::from_micros(20);

/// Polls `done` for up to `limit`; returns whether it turned true.
pub(crate) fn spin_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    const POLLS_PER_YIELD: u32 = 4;
    let start = Instant::now();
    loop {
        for _ in 0..POLLS_PER_YIELD {
            if done() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= limit {
            return done();
        }
        std::thread::yield_now();
    }
}
