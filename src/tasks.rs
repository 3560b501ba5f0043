//! The tasks of the examples, tests and benchmarks: real CPU work, tiny work, and faults.

use serde_bytes::ByteBuf;
use std::hint::black_box;
use ythread::TaskRegistry;

ythread::task! {
    /// Sums 1..=n one step at a time (`black_box` keeps LLVM from using the closed form), so
    /// the cost grows linearly: about 1 ns per step, so n = 1,000,000 is about 1 ms.
    pub fn sumn(n: u64) -> u64 where cost_grows_with(n) {
        let mut total: u64 = 0;
        let mut i = n;
        while i > 0 {
            total = total.wrapping_add(black_box(i));
            i -= 1;
        }
        total
    }
}

ythread::task! {
    /// The naive doubly recursive Fibonacci number (fib(1) = fib(2) = 1).
    pub fn fib(n: u32) -> u64 where cost_grows_with(n) {
        fn go(n: u32) -> u64 {
            if n <= 2 { 1 } else { go(black_box(n - 1)) + go(n - 2) }
        }
        if n == 0 { 0 } else { go(n) }
    }
}

ythread::task! {
    /// Almost no work: measures the cost of the round trip itself.
    pub fn tiny(x: u64) -> u64 {
        black_box(x).wrapping_add(1)
    }
}

ythread::task! {
    /// Returns its payload: measures moving bytes to the work and back.
    pub fn echo_bytes(data: ByteBuf) -> ByteBuf {
        data
    }
}

ythread::task! {
    /// Makes the process that runs it undumpable (`PR_SET_DUMPABLE` 0) and returns its pid:
    /// a worker then declines direct copies.
    pub fn become_undumpable() -> u32 {
        // SAFETY: `prctl(PR_SET_DUMPABLE, 0)` changes a flag of this process; no memory is
        // passed.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        std::process::id()
    }
}

ythread::task! {
    /// The process id of whoever runs the task.
    pub fn pid() -> u32 {
        std::process::id()
    }
}

ythread::task! {
    /// Sleeps, then returns its argument: a slow task that uses no CPU.
    pub fn sleep_ms(ms: u64) -> u64 where cost_grows_with(ms) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        ms
    }
}

ythread::task! {
    /// Sleeps, then returns the process id: slow work whose runner the caller can see.
    pub fn pid_after_ms(ms: u64) -> u32 {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        std::process::id()
    }
}

ythread::task! {
    /// Panics with `message`.
    pub fn panic_with(message: String) -> u64 {
        panic!("{message}")
    }
}

ythread::task! {
    /// Aborts the process it runs in (SIGABRT): a crash no `catch_unwind` can stop.
    pub fn abort_process() -> u64 {
        std::process::abort()
    }
}

ythread::task! {
    /// Writes through a null pointer: a segmentation fault in the process it runs in.
    pub fn segfault() -> u64 {
        // SAFETY: none; this is deliberately undefined behaviour to crash the process with
        // SIGSEGV, the way a buggy native library would. It runs only in tests and demos
        // that expect the process running it to die.
        unsafe { std::ptr::null_mut::<u64>().write_volatile(1) };
        0
    }
}

ythread::task! {
    /// Exits the process it runs in with `code`.
    pub fn exit_with(code: i32) -> u64 {
        std::process::exit(code)
    }
}

ythread::task! {
    /// Never finishes: a runaway computation for deadline tests.
    pub fn spin_forever() -> u64 {
        loop {
            black_box(0u64);
        }
    }
}

ythread::task! {
    /// Blocks until someone writes to the named pipe at `path` and closes it, then returns
    /// the process id: keeps a worker busy for exactly as long as a test wants, with no
    /// timing involved.
    pub fn wait_for_pipe(path: String) -> u32 {
        let _ = std::fs::read(&path);
        std::process::id()
    }
}

ythread::task! {
    /// Returns the process id at once (`Fine`), or misbehaves as a short task gone wrong:
    /// aborts its process or never finishes. Its cost model learns it as short from the fine
    /// runs, so the misbehaving runs go where short work goes.
    pub fn short_unless(mode: Misbehave) -> u32 {
        match mode {
            Misbehave::Fine => std::process::id(),
            Misbehave::Abort => std::process::abort(),
            Misbehave::Spin => loop {
                black_box(0u64);
            },
        }
    }
}

ythread::task! {
    /// Allocates `mib` MiB, touches every page and returns the process id: a task whose memory
    /// use a test chooses, for memory limits.
    pub fn allocate_mib(mib: u64) -> u32 {
        let bytes = usize::try_from(mib << 20).unwrap_or(usize::MAX);
        let mut block = black_box(vec![0u8; bytes]);
        for page in block.iter_mut().step_by(4096) {
            *page = 1;
        }
        black_box(&block);
        std::process::id()
    }
}

ythread::task! {
    /// Returns its text: a `String` payload.
    pub fn echo_text(text: String) -> String {
        text
    }
}

ythread::task! {
    /// Returns its blob with the bytes reversed: a struct holding payloads.
    pub fn reverse_blob(blob: Blob) -> Blob {
        let mut blob = blob;
        blob.data.reverse();
        blob.plain.reverse();
        blob
    }
}

ythread::task! {
    /// Makes `len` bytes (`i % 251`): a small argument with a large result.
    pub fn make_bytes(len: u64) -> ByteBuf where cost_grows_with(len) {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        ByteBuf::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
    }
}

ythread::task! {
    /// The length and byte sum of `data`: a large argument with a small result.
    pub fn sum_bytes(data: ByteBuf) -> (u64, u64) {
        (data.len() as u64, data.iter().map(|&b| u64::from(b)).sum())
    }
}

ythread::task! {
    /// Creates the file `PATH.held` once it has `data`, then holds it until someone writes to
    /// the named pipe at `path`, and returns it: a worker busy with a large payload for as
    /// long as a test wants, and a sign that the payload arrived.
    pub fn hold_bytes(path: String, data: ByteBuf) -> ByteBuf {
        let _ = std::fs::write(format!("{path}.held"), data.len().to_string());
        let _ = std::fs::read(&path);
        data
    }
}

/// A struct holding payloads of every kind, for [`reverse_blob`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Blob {
    /// A name.
    pub name: String,
    /// Bytes encoded as one byte string.
    pub data: ByteBuf,
    /// Bytes encoded as a sequence.
    pub plain: Vec<u8>,
}

/// What [`short_unless`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Misbehave {
    /// Return the process id.
    Fine,
    /// Abort the process.
    Abort,
    /// Never finish.
    Spin,
}

/// The environment variable that asks a demo program to serve the fault-injection tasks
/// too (`YTHREAD_FAULT_TASKS=1`): see [`served_registry`].
pub const FAULT_TASKS_ENV: &str = "YTHREAD_FAULT_TASKS";

/// The tasks that only compute, each in time and memory that its arguments bound: what a
/// program serves to others when nothing asks for more.
pub fn work_registry() -> TaskRegistry {
    TaskRegistry::new()
        .with(sumn)
        .with(fib)
        .with(tiny)
        .with(echo_bytes)
        .with(echo_text)
        .with(reverse_blob)
        .with(sum_bytes)
        .with(pid)
}

/// What a demo program that may serve others (a worker node of the sum server, say)
/// registers: [`work_registry`], or, with [`FAULT_TASKS_ENV`] set to `1`, every task of
/// [`registry`], the fault-injection tasks (`exit_with`, `abort_process`, `spin_forever`,
/// tasks that read or write a path they are given, ...) included. A node that served those
/// to anyone who can publish on its subjects would let one message stop it. Callers and
/// nodes must agree: the registry's digest is in every job's subject.
pub fn served_registry() -> TaskRegistry {
    if std::env::var(FAULT_TASKS_ENV).as_deref() == Ok("1") {
        registry()
    } else {
        work_registry()
    }
}

/// Every task above, for `ythread_executors::init` and worker handshakes in tests.
pub fn registry() -> TaskRegistry {
    work_registry()
        .with(become_undumpable)
        .with(sleep_ms)
        .with(pid_after_ms)
        .with(panic_with)
        .with(abort_process)
        .with(segfault)
        .with(exit_with)
        .with(spin_forever)
        .with(wait_for_pipe)
        .with(short_unless)
        .with(allocate_mib)
        .with(make_bytes)
        .with(hold_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_tasks_compute_the_right_values() {
        assert_eq!(sumn.call(25_000), 312_512_500);
        assert_eq!(sumn.call(0), 0);
        assert_eq!(fib.call(20), 6765);
        assert_eq!(fib.call(1), 1);
        assert_eq!(fib.call(0), 0);
    }
}
