//! Workers die with their parent: a program that owns a pool is SIGKILLed (no destructor, no
//! shutdown runs) and its workers must go too, by the parent-death signal and by end-of-file
//! on their job channel.
//!
//! This test makes its own process a child subreaper, so that the orphaned workers are
//! reparented here and can be reaped and inspected; that is process-wide state, hence a test
//! binary of its own.

mod subprocess_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use subprocess_support::{BOUND, proc_stat};

#[test]
fn workers_die_when_their_parent_is_killed() {
    // SAFETY: `prctl(PR_SET_CHILD_SUBREAPER, 1)` takes integers only and changes a setting of
    // this process; no memory is passed.
    let result = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(result, 0, "become a subreaper");

    let mut parent = Command::new(env!("CARGO_BIN_EXE_ythread-test-worker"))
        .args(["parent", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = parent.stdout.take().unwrap();
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = line_tx.send(line);
    });
    let line = match line_rx.recv_timeout(BOUND) {
        Ok(line) => line,
        Err(_) => {
            let _ = parent.kill();
            let _ = parent.wait();
            panic!("the parent program did not report its workers within {BOUND:?}");
        }
    };
    let workers: Vec<u32> = line
        .split_whitespace()
        .map(|pid| pid.parse().unwrap())
        .collect();
    assert_eq!(workers.len(), 3, "2 workers and the express one: {line:?}");
    for &worker in &workers {
        let stat = proc_stat(worker).expect("the worker runs");
        assert_eq!(
            stat.ppid,
            parent.id(),
            "worker {worker} is the parent's child"
        );
    }

    parent.kill().unwrap();
    parent.wait().unwrap();

    // The orphans are reparented to this subreaper; reap each and see how it ended.
    let deadline = Instant::now() + BOUND;
    let mut endings = Vec::new();
    for worker in workers {
        loop {
            let mut status = 0;
            // SAFETY: `waitpid` writes the status into `status`, a valid `c_int` that outlives
            // the call; WNOHANG keeps it from blocking.
            let reaped =
                unsafe { libc::waitpid(worker as libc::pid_t, &mut status, libc::WNOHANG) };
            if reaped == worker as libc::pid_t {
                endings.push((worker, status));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "worker {worker} still exists {BOUND:?} after its parent was killed: {:?}",
                proc_stat(worker)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for (worker, status) in endings {
        let killed = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL;
        let exited = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        assert!(
            killed || exited,
            "worker {worker} ended with raw status {status:#x}, not by the parent-death \
             SIGKILL or a clean exit on end-of-file"
        );
        assert_eq!(proc_stat(worker), None);
    }
}
