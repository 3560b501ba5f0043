//! A handler that overflows its coroutine stack kills the process (there is no safe way to
//! continue), but first says which stack overflowed and how to raise it.
//!
//! The overflow must happen in a child process: the test re-runs this test binary, filtered to
//! the `overflowing_child` test, with an environment marker that makes that test overflow.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ythread::{Executor, YieldableThread};

const MARKER: &str = "YTHREAD_TEST_OVERFLOW_CHILD";
const STACK: usize = 128 * 1024;

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        0
    } else {
        frame[3] + recurse(depth + 1)
    }
}

#[test]
fn overflowing_child() {
    if std::env::var_os(MARKER).is_none() {
        return; // only meaningful as the child of `overflow_is_reported_with_the_stack_size`
    }
    let handle = YieldableThread::builder()
        .stack_size(STACK)
        .spawn(&Executor::inline(), |_| recurse(0))
        .unwrap();
    let _ = handle.join();
    unreachable!("the handler should have overflowed its stack");
}

#[test]
fn overflow_is_reported_with_the_stack_size() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "overflowing_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MARKER, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the overflowing child did not die within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGSEGV),
        "status {status:?}, stderr:\n{stderr}"
    );
    let expected = format!(
        "overflowed its coroutine stack of {STACK} bytes; give it a larger one with ythread::Builder::stack_size"
    );
    assert!(stderr.contains(&expected), "stderr:\n{stderr}");
}
