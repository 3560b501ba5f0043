//! Spinning briefly before sleeping, where the answer usually comes within microseconds.
//!
//! Waiting for a handler's outcome is a cross-thread wake-up; through a futex it costs several
//! microseconds on the waking side and more on the woken one. A joiner that first polls for a
//! few microseconds sees a quick answer without it. The price is a busy core for at most the
//! spin limit, and the spin yields the core between polls so that on a loaded machine it does
//! not keep the thread it waits for off the CPU.
//!
//! Parked handler threads do not spin for their next handler. They did, once: it halved the
//! spawn + join of a microbenchmark (2.3 µs against 3.8 µs, both far under `std::thread`'s
//! 55 µs), but a server keeps several threads parked at once, only the one that gets the next
//! connection gains from its spin, and the others burned up to the spin limit each: on 2
//! cores, measurably more CPU per connection than the wake-ups they saved.

use std::time::{Duration, Instant};

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
