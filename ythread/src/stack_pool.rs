//! A process-wide pool of coroutine stacks.
//!
//! A fresh stack is an `mmap` plus an `mprotect` for its guard page (15-20 µs, more than the
//! rest of a spawn); a pooled one costs a lock and a `Vec::pop`. The trade-off: a returned
//! stack keeps the pages its last handler touched, so the pool holds at most
//! [`MAX_POOLED`] stacks per size and frees the rest.

use corosensei::stack::DefaultStack;
use parking_lot::Mutex;

/// How many idle stacks of one size the pool keeps.
const MAX_POOLED: usize = 256;

static POOL: Mutex<Vec<(usize, DefaultStack)>> = Mutex::new(Vec::new());

/// A stack with at least `size` usable bytes, from the pool if one of that size is idle.
pub(crate) fn take(size: usize) -> std::io::Result<DefaultStack> {
    // corosensei panics on sizes that overflow when it adds the guard page; no address space
    // holds half of `usize::MAX` anyway.
    if size > usize::MAX / 4 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "a coroutine stack of {size} bytes cannot be mapped; ask for less with \
                 Builder::stack_size"
            ),
        ));
    }
    let pooled = {
        let mut pool = POOL.lock();
        pool.iter()
            .rposition(|(s, _)| *s == size)
            .map(|i| pool.swap_remove(i).1)
    };
    match pooled {
        Some(stack) => Ok(stack),
        None => DefaultStack::new(size),
    }
}

/// Returns a stack that no coroutine uses any more.
pub(crate) fn give_back(size: usize, stack: DefaultStack) {
    let mut pool = POOL.lock();
    if pool.iter().filter(|(s, _)| *s == size).count() < MAX_POOLED {
        pool.push((size, stack));
    }
}
