//! The showcase end to end: `YTHREAD_WORKER=nats://... sumserver` is a node, and
//! `sumserver --executor nats://...` serves clients through it; SIGTERM drains the node.

mod sumserver_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use sumserver_support::{BOUND, ServerProcess, sumserver_binary};
use ythread_suite::client::Connection;
use ythread_suite::nats_broker::Broker;
use ythread_suite::server::Work;

#[test]
fn sumserver_serves_through_a_sumserver_node() {
    let Some(broker) = Broker::for_test() else {
        return;
    };
    let mut node = Command::new(sumserver_binary())
        .env("YTHREAD_WORKER", broker.url())
        .env_remove("YTHREAD_EXECUTOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, log) = mpsc::channel();
    let stderr = node.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    wait_for(&log, ": serving ");

    let mut server = ServerProcess::start(&["--executor", &broker.url()]);
    let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
    for n in [10, 25_000, 1_000_007] {
        let reply = connection.request(n.to_string().as_bytes()).unwrap();
        assert_eq!(reply, Work::Sumn.expected(n).to_string(), "sumn({n})");
    }
    drop(connection);
    server.signal(libc::SIGTERM);
    assert!(server.wait_for_exit(BOUND).is_some_and(|s| s.success()));

    // SAFETY: `kill` takes two integers and touches no memory; the pid is our unreaped child.
    let sent = unsafe { libc::kill(node.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let drained = wait_for(&log, "drained after");
    assert!(
        drained.contains("after 3 jobs"),
        "the node ran all 3: {drained}"
    );
    let (done, status) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(node.wait());
    });
    let status = status.recv_timeout(BOUND).unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// The first line from `log` that contains `marker`, within [`BOUND`].
fn wait_for(log: &mpsc::Receiver<String>, marker: &str) -> String {
    let deadline = std::time::Instant::now() + BOUND;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(marker) => return line,
            Ok(_) => continue,
            Err(_) => panic!("no `{marker}` line from the node within {BOUND:?}"),
        }
    }
}
