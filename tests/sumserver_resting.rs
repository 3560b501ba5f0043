//! Connections rest between requests without a thread: after its first reply, a connection
//! waits for its next request in the server's epoll, and a later request gets a handler again.
//! Alone in its test binary, and the tests one at a time, so that the process's thread and
//! socket counts are each test's own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

mod support;

use ythread::Executor;
use ythread_suite::server::{Server, ServerConfig};

use support::BOUND;

const CONNECTIONS: usize = 64;

/// Taken by each test for its whole run.
fn alone() -> MutexGuard<'static, ()> {
    static ALONE: Mutex<()> = Mutex::new(());
    ALONE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task lists this process's threads")
        .count()
}

fn ask(stream: &mut TcpStream, n: u64) -> String {
    stream.write_all(n.to_string().as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8];
    while !reply.ends_with(b"\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "the server closed early"
        );
        reply.push(byte[0]);
    }
    String::from_utf8(reply).unwrap()
}

#[test]
fn connections_resting_between_requests_hold_no_thread() {
    let _alone = alone();
    let server = Server::bind(ServerConfig::default(), Executor::inline())
        .unwrap()
        .spawn();
    let before = os_threads();
    let mut open = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream.set_read_timeout(Some(BOUND)).unwrap();
        assert_eq!(ask(&mut stream, 3), "6\n");
        open.push(stream);
    }
    // A handler waiting on each open connection would take a thread each; resting, they
    // share the few that their one request each needed in turn.
    let grown = os_threads().saturating_sub(before);
    assert!(
        grown < CONNECTIONS / 2,
        "{grown} more threads for {CONNECTIONS} open connections that each sent one request"
    );
    // Each wakes into a handler for its next requests.
    for stream in &mut open {
        assert_eq!(ask(stream, 4), "10\n");
        assert_eq!(ask(stream, 5), "15\n");
    }
    server.shutdown().unwrap();
}

/// Sockets this process has open (the server's and its clients', all in this process).
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd lists this process's descriptors")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Many one-request clients at once keep the watcher busy, so acceptors close connections for
/// it, while keep-alive clients' later requests wake their connections into handlers: every
/// request is answered, and once the clients have gone every connection is closed.
#[test]
fn under_load_every_connection_is_answered_and_closed() {
    let _alone = alone();
    const ONE_REQUEST_CLIENTS: u64 = 6;
    const CONNECTIONS_EACH: u64 = 150;
    const KEEP_ALIVE_CLIENTS: u64 = 2;
    const REQUESTS_EACH: u64 = 100;
    // An idle timeout far past the wait below, so that a connection whose close was lost is
    // not closed by the idle sweep in time to pass.
    let config = ServerConfig {
        idle_timeout: 10 * BOUND,
        ..ServerConfig::default()
    };
    let server = Server::bind(config, Executor::inline()).unwrap().spawn();
    let addr = server.addr();
    let before = open_sockets();
    std::thread::scope(|scope| {
        for client in 0..ONE_REQUEST_CLIENTS {
            scope.spawn(move || {
                for i in 0..CONNECTIONS_EACH {
                    let n = client * 1_000 + i;
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream.set_read_timeout(Some(BOUND)).unwrap();
                    assert_eq!(ask(&mut stream, n), format!("{}\n", n * (n + 1) / 2));
                }
            });
        }
        for client in 0..KEEP_ALIVE_CLIENTS {
            scope.spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(BOUND)).unwrap();
                for i in 0..REQUESTS_EACH {
                    let n = 100_000 + client * 1_000 + i;
                    assert_eq!(ask(&mut stream, n), format!("{}\n", n * (n + 1) / 2));
                }
            });
        }
    });
    // The clients have closed their ends; the server closes its own as it sees them go.
    let deadline = Instant::now() + BOUND;
    while open_sockets() > before && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let left = open_sockets().saturating_sub(before);
    assert_eq!(
        left, 0,
        "{left} connections still open {BOUND:?} after every client closed its end"
    );
    server.shutdown().unwrap();
}
