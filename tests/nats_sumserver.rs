//! The showcase end to end: `YTHREAD_WORKER=nats://... sumserver` is a node, and
//! `sumserver --executor nats://...` serves clients through it; SIGTERM drains the node. A
//! sum server node serves no fault-injection task unless `YTHREAD_FAULT_TASKS=1` asks.

mod nats_support;
mod subprocess_support;
mod sumserver_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use nats_support::Node;
use nats_support::raw::{Answer, Failure, Raw, job_body};
use sumserver_support::{BOUND, ServerProcess, sumserver_binary};
use ythread::Task;
use ythread_suite::client::Connection;
use ythread_suite::nats_broker::Broker;
use ythread_suite::server::Work;
use ythread_suite::tasks::{self, FAULT_TASKS_ENV};

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

#[test]
fn a_sumserver_node_serves_no_fault_task_unless_asked() {
    let Some(broker) = nats_support::Broker::start() else {
        return;
    };
    let sumserver = |fault_tasks: Option<&str>| {
        let mut command = Command::new(sumserver_binary());
        command.env_remove(FAULT_TASKS_ENV);
        let env: Vec<_> = fault_tasks
            .map(|on| (FAULT_TASKS_ENV, on))
            .into_iter()
            .collect();
        Node::spawn(command, &broker.url(), "inline", &env)
    };
    let publisher = Raw::connect(&broker);
    let exit_with = <tasks::exit_with as Task>::NAME;
    let sumn = <tasks::sumn as Task>::NAME;

    let mut node = sumserver(None);
    let answers = publisher.ask(
        &node.job_subject(exit_with),
        job_body(exit_with, &3i32),
        None,
    );
    assert!(
        matches!(
            answers.last(),
            Some(Answer::Failed {
                kind: Failure::UnknownTask,
                ..
            })
        ),
        "{answers:?}"
    );
    assert!(node.is_running(), "{}", node.stderr.text());
    let answers = publisher.ask(&node.job_subject(sumn), job_body(sumn, &10u64), Some("10"));
    let Some(Answer::Done { result, .. }) = answers.last() else {
        panic!("{answers:?}")
    };
    assert_eq!(postcard::from_bytes::<u64>(result).unwrap(), 55);

    // Asked for, the fault tasks are there: one message stops the node.
    let mut faulty = sumserver(Some("1"));
    publisher.send(
        &faulty.job_subject(exit_with),
        job_body(exit_with, &3i32),
        None,
        true,
    );
    assert_eq!(faulty.wait().code(), Some(3), "{}", faulty.stderr.text());
}
