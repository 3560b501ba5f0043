//! Connections rest between requests without a thread: after its first reply, a connection
//! waits for its next request in the accept loop, and a later request gets a handler again.
//! Alone in its test binary, so that the process's thread count is this test's.

use std::io::{Read, Write};
use std::net::TcpStream;

mod support;

use ythread::Executor;
use ythread_suite::server::{Server, ServerConfig};

use support::BOUND;

const CONNECTIONS: usize = 64;

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
