//! A worker program for the multi-process tests: the test harness owns its own `main`, so the
//! subprocess pool under test starts this binary instead of re-running the test binary.

fn main() {
    ythread_executors::init(ythread_suite::tasks::registry());
    eprintln!("ythread-test-worker: this program only runs as a worker of a subprocess pool");
    std::process::exit(2);
}
