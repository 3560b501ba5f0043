//! A worker program for the multi-process tests: the test harness owns its own `main`, so the
//! subprocess pool under test starts this binary instead of re-running the test binary.
//!
//! With `YTHREAD_WORKER` set it is a worker node of the `nats` strategy, serving the
//! fault-injection tasks only with `YTHREAD_FAULT_TASKS=1`; with `YTHREAD_TEST_REGISTRY=other`
//! as well, a node built from a different set of tasks.
//!
//! Started under a name that ends in `-undumpable` (a link to this binary), it makes itself
//! undumpable first, so that its parent cannot copy into or out of its memory directly.
//!
//! Started with the argument `parent WORKERS`, it instead plays a server that owns a pool: it
//! starts one with itself as the worker program, prints the workers' pids on one line, and
//! waits until its stdin closes. The parent-death test SIGKILLs it there and checks that the
//! workers die with it.
//!
//! The tests of mistakes (`tests/mistakes.rs`) run it as a program of their own:
//! `thread-before-init` starts a thread before `init`, as `#[tokio::main]` starts a runtime's;
//! `init-only` calls `init` and ends; `bad-config` and `yield-unregistered` end with `main`
//! returning an error (the second only in strict mode, `YTHREAD_STRICT=1`).

use std::io::{Read, Write};

use ythread::Executor;
use ythread_executors::{ExecutorConfig, SubprocessPool};

ythread::task! {
    /// In no registry: yielded by `yield-unregistered`.
    pub fn not_registered() -> u32 {
        7
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args_os().next().unwrap_or_default();
    if name.to_string_lossy().ends_with("-undumpable") {
        // SAFETY: `prctl(PR_SET_DUMPABLE, 0)` changes a flag of this process; no memory is
        // passed.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    }
    let registry = match std::env::var("YTHREAD_TEST_REGISTRY").as_deref() {
        Ok("other") => ythread::TaskRegistry::new().with(ythread_suite::tasks::pid),
        // A node serves the fault-injection tasks only when YTHREAD_FAULT_TASKS=1 asks.
        _ if std::env::var_os(ythread_executors::WORKER_ENV).is_some() => {
            ythread_suite::tasks::served_registry()
        }
        _ => ythread_suite::tasks::registry(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if args == ["thread-before-init"] {
        std::thread::spawn(|| {
            loop {
                std::thread::park();
            }
        });
    }
    ythread_executors::init(registry);
    match args[..] {
        ["parent", workers] => match workers.parse() {
            Ok(workers) => play_parent(workers),
            Err(_) => fail(&format!("`{workers}` is not a worker count")),
        },
        ["thread-before-init" | "init-only"] => {}
        ["bad-config"] => {
            let _: ExecutorConfig = "rayon:0".parse()?;
        }
        ["yield-unregistered"] => {
            Executor::inline().run(not_registered, ())?;
        }
        _ => fail(
            "this program only runs as a worker of a subprocess pool, as `parent N`, or in one \
             of the modes of tests/mistakes.rs",
        ),
    }
    Ok(())
}

fn play_parent(workers: usize) {
    let pool = match SubprocessPool::builder().workers(workers).build() {
        Ok(pool) => pool,
        Err(e) => fail(&format!("could not start the pool: {e}")),
    };
    let pids: Vec<String> = pool.pids().iter().map(u32::to_string).collect();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", pids.join(" "));
    let _ = stdout.flush();
    // Whoever started us decides when we end: by closing stdin, or by killing us.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(pool);
}

fn fail(why: &str) -> ! {
    eprintln!("ythread-test-worker: {why}");
    std::process::exit(2);
}
