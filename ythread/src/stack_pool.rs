//! A process-wide pool of coroutine stacks, in a few size classes.
//!
//! A fresh stack is an `mmap` plus an `mprotect` for its guard page (15-20 µs, more than the
//! rest of a spawn); a pooled one costs a lock and a `Vec::pop`.
//!
//! Trade-offs:
//! - Sizes are rounded up to a power of two (at least [`MIN_CLASS`]), so handlers asking for
//!   300 slightly different sizes share a handful of pooled stacks instead of keeping 300
//!   kinds around. A handler may get up to twice the stack it asked for; that costs address
//!   space only, as pages are committed when touched.
//! - A returned stack keeps the pages its last handler touched, so the pool keeps at most
//!   [`MAX_POOLED`] stacks per class and [`MAX_POOLED_BYTES`] of stacks in all, and frees the
//!   rest.

use corosensei::stack::DefaultStack;
use parking_lot::Mutex;

/// The smallest stack class: four pages, room for a handler that does almost nothing.
const MIN_CLASS: usize = 16 << 10;

/// How many idle stacks of one class the pool keeps.
const MAX_POOLED: usize = 256;

/// How many bytes of idle stacks (address space) the pool keeps in all: 256 default stacks.
const MAX_POOLED_BYTES: usize = 256 << 20;

struct Pool {
    stacks: Vec<(usize, DefaultStack)>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    stacks: Vec::new(),
    bytes: 0,
});

/// The usable size of the stack a handler asking for `size` bytes gets: its size class.
pub(crate) fn class_of(size: usize) -> std::io::Result<usize> {
    // corosensei panics on sizes that overflow when it adds the guard page; no address space
    // holds a quarter of `usize::MAX` anyway.
    size.max(MIN_CLASS)
        .checked_next_power_of_two()
        .filter(|&class| class <= usize::MAX / 4)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "a coroutine stack of {size} bytes cannot be mapped; ask for less with \
                     Builder::stack_size"
                ),
            )
        })
}

/// A stack of `class` usable bytes (a value from [`class_of`]), from the pool if one is idle.
pub(crate) fn take(class: usize) -> std::io::Result<DefaultStack> {
    let pooled = {
        let mut pool = POOL.lock();
        let found = pool.stacks.iter().rposition(|(c, _)| *c == class);
        found.map(|i| {
            pool.bytes -= class;
            pool.stacks.swap_remove(i).1
        })
    };
    match pooled {
        Some(stack) => Ok(stack),
        None => DefaultStack::new(class),
    }
}

/// Returns a stack of `class` bytes that no coroutine uses any more; frees it if the pool is
/// full.
pub(crate) fn give_back(class: usize, stack: DefaultStack) {
    let mut pool = POOL.lock();
    let same_class = pool.stacks.iter().filter(|(c, _)| *c == class).count();
    if same_class < MAX_POOLED && pool.bytes + class <= MAX_POOLED_BYTES {
        pool.bytes += class;
        pool.stacks.push((class, stack));
    }
    // Otherwise `stack` is unmapped here, after the lock guard: both drop at the end.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_power_of_two_classes() {
        assert_eq!(class_of(0).unwrap(), MIN_CLASS);
        assert_eq!(class_of(MIN_CLASS + 1).unwrap(), 2 * MIN_CLASS);
        assert_eq!(class_of(1 << 20).unwrap(), 1 << 20);
        assert_eq!(class_of((1 << 20) + 4096).unwrap(), 2 << 20);
        assert!(class_of(usize::MAX / 4 + 1).is_err());
        assert!(class_of(usize::MAX).is_err());
    }
}
