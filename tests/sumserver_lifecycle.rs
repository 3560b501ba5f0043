//! Stopping the sum server, and failures of yielded work, through the library's `Server` in
//! this process. Strategies written for the test hold the work at a gate or fail it, so every
//! step happens in a known order without timing.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

mod support;

use support::gate;
use ythread::{CpuApply, Error, Executor, Termination, Work as WorkDescriptor};
use ythread_suite::client::{Connection, request_once};
use ythread_suite::server::{Server, ServerConfig};

use support::BOUND;

/// A strategy whose first piece of work fails as if its worker process had been killed.
#[derive(Default)]
struct FailFirst {
    failed: AtomicBool,
}

impl CpuApply for FailFirst {
    fn apply(&self, work: &mut dyn WorkDescriptor) {
        if self.failed.swap(true, Ordering::SeqCst) {
            work.run_here();
        } else {
            work.fail(Error::worker_died(4242, Termination::Signal(9), "sumn"));
        }
    }

    fn describe(&self) -> String {
        "fail-first".to_owned()
    }
}

/// Reads until the server closes the connection; returns what arrived.
fn read_to_close(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(BOUND))?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    Ok(rest)
}

#[test]
fn a_stop_lets_the_request_in_flight_finish_then_closes_its_connection() {
    let (executor, gate) = gate();
    let server = Server::bind(ServerConfig::default(), executor)
        .unwrap()
        .spawn();
    let addr = server.addr();
    let client = thread::spawn(move || {
        let mut raw = TcpStream::connect(addr)?;
        std::io::Write::write_all(&mut raw, b"25000")?;
        read_to_close(&mut raw)
    });
    gate.arrived
        .recv_timeout(BOUND)
        .expect("the request reaches the strategy");

    let stop = server.shutdown_handle();
    let stopping = thread::spawn(move || server.shutdown());
    stop.shutdown();
    gate.release.send(()).unwrap();

    let received = client
        .join()
        .unwrap()
        .expect("the connection closes cleanly");
    assert_eq!(
        String::from_utf8_lossy(&received),
        "312512500\n",
        "the request in flight is answered, then the connection is closed"
    );
    stopping.join().unwrap().expect("the server stops cleanly");
}

#[test]
fn a_stop_closes_idle_connections_and_refuses_new_ones() {
    let server = Server::bind(ServerConfig::default(), Executor::inline())
        .unwrap()
        .spawn();
    let addr = server.addr();
    // One answered request proves the connection was accepted: one still in the listen
    // backlog when the listener closes is reset by the kernel, as with any server.
    let mut idle = TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut idle, b"4").unwrap();
    let mut reply = [0u8; 3];
    idle.set_read_timeout(Some(BOUND)).unwrap();
    idle.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"10\n");
    server.shutdown().expect("the server stops cleanly");

    let rest = read_to_close(&mut idle).expect("the idle connection is closed, not reset");
    assert!(
        rest.is_empty(),
        "nothing more is sent to an idle connection: {rest:?}"
    );
    let refused = TcpStream::connect(addr).map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn a_stop_cancels_handlers_still_busy_after_the_grace_period() {
    let (executor, gate) = gate();
    let server = Server::bind(ServerConfig::default(), executor)
        .unwrap()
        .shutdown_grace(Duration::ZERO)
        .spawn();
    let addr = server.addr();
    let mut raw = TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut raw, b"25000").unwrap();
    gate.arrived
        .recv_timeout(BOUND)
        .expect("the request reaches the strategy");

    // The work is held at the gate for the whole stop: the server must not wait for it.
    server
        .shutdown()
        .expect("the stop is bounded even with a handler stuck in work");
    let rest = read_to_close(&mut raw).unwrap_or_default();
    assert!(
        rest.is_empty(),
        "a cancelled request gets no answer: {rest:?}"
    );
    gate.release.send(()).unwrap();
}

#[test]
fn dropping_a_running_server_stops_it() {
    let server = Server::bind(ServerConfig::default(), Executor::inline())
        .unwrap()
        .spawn();
    let addr = server.addr();
    assert_eq!(request_once(addr, b"4", BOUND).unwrap(), "10");
    drop(server);
    let refused = TcpStream::connect(addr).map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn run_returns_once_the_shutdown_handle_is_used_from_another_thread() {
    let server = Server::bind(ServerConfig::default(), Executor::inline()).unwrap();
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let bound = server.stop_bound() + BOUND;
    let (done, finished) = mpsc::channel();
    thread::spawn(move || done.send(server.run()));
    assert_eq!(request_once(addr, b"4", BOUND).unwrap(), "10");
    assert!(!stop.is_shutdown());
    stop.shutdown();
    assert!(stop.is_shutdown());
    finished
        .recv_timeout(bound)
        .expect("run returns after a stop")
        .expect("run returns Ok after a stop");
}

#[test]
fn failed_work_is_answered_with_an_error_and_the_connection_goes_on() {
    let server = Server::bind(ServerConfig::default(), Executor::new(FailFirst::default()))
        .unwrap()
        .spawn();
    let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
    let reply = connection.request(b"25000").unwrap();
    assert!(
        reply.starts_with("error: worker process 4242 killed by signal 9"),
        "{reply:?}"
    );
    assert_eq!(connection.request(b"25000").unwrap(), "312512500");
    server.shutdown().unwrap();
}

#[test]
fn requests_below_direct_below_never_reach_the_strategy() {
    // Every piece of work that reaches this strategy fails, so an answer proves the request
    // was computed directly on the handler's thread.
    struct FailAll;
    impl CpuApply for FailAll {
        fn apply(&self, work: &mut dyn WorkDescriptor) {
            work.fail(Error::unavailable("this strategy fails everything"));
        }
        fn describe(&self) -> String {
            "fail-all".to_owned()
        }
    }
    let config = ServerConfig {
        direct_below: 1000,
        ..ServerConfig::default()
    };
    let server = Server::bind(config, Executor::new(FailAll))
        .unwrap()
        .spawn();
    let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
    assert_eq!(connection.request(b"999").unwrap(), "499500");
    let reply = connection.request(b"1000").unwrap();
    assert_eq!(reply, "error: this strategy fails everything", "{reply:?}");
    assert_eq!(connection.request(b"10").unwrap(), "55");
    server.shutdown().unwrap();
}
