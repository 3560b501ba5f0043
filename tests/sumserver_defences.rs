//! The sum server's defences, through the library's `Server` in this process: line framing
//! and its whole-request deadline, the bounded drain after an over-long request, and the
//! connection cap (refusing newcomers while every connection is busy, shedding the connection
//! idle longest otherwise).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

mod support;

use ythread::Executor;
use ythread_suite::client::request_once;
use ythread_suite::server::{
    Framing, RunningServer, Server, ServerConfig, default_max_connections, max_backlog,
};

use support::BOUND;

fn start(config: ServerConfig, executor: Executor) -> RunningServer {
    Server::bind(config, executor).unwrap().spawn()
}

fn line_server(idle_timeout: Duration) -> RunningServer {
    start(
        ServerConfig {
            framing: Framing::Line,
            idle_timeout,
            ..ServerConfig::default()
        },
        Executor::inline(),
    )
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.set_write_timeout(Some(BOUND)).unwrap();
    stream
}

/// Reads until the server closes; what arrived, as text.
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut text = String::new();
    match stream.read_to_string(&mut text) {
        Ok(_) => {}
        // A reset after the last line still counts as closed.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading until the server closes: {e}"),
    }
    text
}

#[test]
fn line_framing_answers_pipelined_and_split_requests() {
    let server = line_server(Duration::from_secs(30));
    let mut stream = connect(server.addr());
    let mut replies = BufReader::new(stream.try_clone().unwrap());
    let mut line = || {
        let mut line = String::new();
        replies.read_line(&mut line).unwrap();
        line
    };
    stream.write_all(b"1\n2\r\n3\n").unwrap();
    assert_eq!([line(), line(), line()], ["1\n", "3\n", "6\n"]);
    // A request in two writes is still one request.
    stream.write_all(b"250").unwrap();
    stream.flush().unwrap();
    stream.write_all(b"00\n").unwrap();
    assert_eq!(line(), "312512500\n");
    stream.write_all(b"x\n4\n").unwrap();
    let bad = line();
    assert!(bad.starts_with("error: `x` is not a whole number"), "{bad}");
    assert_eq!(line(), "10\n");
}

#[test]
fn a_line_trickled_past_its_deadline_is_closed() {
    let idle = Duration::from_millis(300);
    let server = line_server(idle);
    let mut stream = connect(server.addr());
    let mut trickle = stream.try_clone().unwrap();
    // One digit every 50 ms: a line longer than a request would take 0.9 s, so the reply
    // below can only be the deadline's.
    let trickler = thread::spawn(move || {
        for _ in 0..40 {
            if trickle.write_all(b"1").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let text = read_to_close(&mut stream);
    assert!(
        text.starts_with("error: the request did not arrive whole within 300ms of its first byte"),
        "{text:?}"
    );
    assert_eq!(text.lines().count(), 1, "{text:?}");
    trickler.join().unwrap();
    // The server goes on.
    assert_eq!(
        request_once(server.addr(), b"7\n", BOUND).unwrap(),
        "28",
        "a fresh request after the trickler"
    );
}

#[test]
fn a_silent_line_connection_is_closed_at_the_idle_timeout() {
    let server = line_server(Duration::from_millis(100));
    let mut stream = connect(server.addr());
    let text = read_to_close(&mut stream);
    assert!(
        text.starts_with("error: no request within 100ms; closing the connection"),
        "{text:?}"
    );
}

#[test]
fn a_connection_silent_after_its_first_reply_is_closed_at_the_idle_timeout() {
    // After its first reply a connection rests in the accept loop, which keeps the timeout.
    for framing in [Framing::ReadOnce, Framing::Line] {
        let server = start(
            ServerConfig {
                framing,
                idle_timeout: Duration::from_millis(100),
                ..ServerConfig::default()
            },
            Executor::inline(),
        );
        let mut stream = connect(server.addr());
        stream.write_all(b"3\n").unwrap();
        let text = read_to_close(&mut stream);
        assert_eq!(
            text, "6\nerror: no request within 100ms; closing the connection\n",
            "{framing:?}"
        );
    }
}

#[test]
fn an_over_long_line_gets_an_error_and_its_connection_is_closed() {
    let server = line_server(Duration::from_secs(30));
    let mut stream = connect(server.addr());
    stream.write_all(b"1234567890123456789\n").unwrap();
    let text = read_to_close(&mut stream);
    assert!(
        text.starts_with("error: line longer than 16 bytes"),
        "{text:?}"
    );
}

#[test]
fn the_drain_after_an_over_long_request_is_bounded_in_total() {
    let server = start(ServerConfig::default(), Executor::inline());
    let mut stream = connect(server.addr());
    stream.write_all(&[b'1'; 17]).unwrap();
    let mut reply = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut reply)
        .unwrap();
    assert!(
        reply.starts_with("error: request longer than 16 bytes"),
        "{reply}"
    );
    // Keep trickling: a drain bounded per read would never end, one bounded in total ends
    // and the server's close makes the writes fail.
    let deadline = Instant::now() + BOUND;
    loop {
        assert!(
            Instant::now() < deadline,
            "the server still drains a trickling client after {BOUND:?}"
        );
        if stream.write_all(b"1").is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn capped(max_connections: usize, shed_idle_after: Option<Duration>) -> ServerConfig {
    ServerConfig {
        max_connections: Some(max_connections),
        shed_idle_after,
        ..ServerConfig::default()
    }
}

/// Retries a fresh request until it is answered: a departed client's slot is free only once
/// its handler has noticed.
fn eventually_answered(addr: SocketAddr, request: &[u8]) -> String {
    let deadline = Instant::now() + BOUND;
    loop {
        match request_once(addr, request, BOUND) {
            Ok(reply) if !reply.starts_with("error: server busy") => return reply,
            _ => assert!(Instant::now() < deadline, "no answer within {BOUND:?}"),
        }
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_newcomer_at_the_cap_is_refused_while_every_connection_is_busy() {
    let (gate, control) = support::gate();
    let (arrived, release) = (control.arrived, control.release);
    // Shedding at once: a busy connection is still never shed.
    let server = start(capped(1, Some(Duration::ZERO)), gate);
    let mut busy = connect(server.addr());
    busy.write_all(b"10").unwrap();
    arrived
        .recv_timeout(BOUND)
        .expect("the request reaches the strategy");
    let mut newcomer = connect(server.addr());
    let text = read_to_close(&mut newcomer);
    assert_eq!(
        text, "error: server busy: all 1 connections are in use; try again later\n",
        "{text:?}"
    );
    release.send(()).unwrap();
    let mut reply = [0u8; 3];
    busy.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"55\n");
    drop(busy);
    // Requests after this one run at once.
    drop(release);
    assert_eq!(eventually_answered(server.addr(), b"4"), "10");
}

#[test]
fn at_the_cap_the_connection_idle_longest_makes_room() {
    let server = start(capped(1, Some(Duration::ZERO)), Executor::inline());
    let mut idle = connect(server.addr());
    idle.write_all(b"3").unwrap();
    let mut reply = [0u8; 2];
    idle.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"6\n");
    // The idle connection gives up its place.
    assert_eq!(request_once(server.addr(), b"4", BOUND).unwrap(), "10");
    let text = read_to_close(&mut idle);
    assert!(
        text.starts_with("error: server busy: closing this idle connection to make room"),
        "{text:?}"
    );
}

#[test]
fn a_connection_idle_for_less_than_the_threshold_keeps_its_place() {
    for shed_idle_after in [Some(Duration::from_secs(3600)), None] {
        let server = start(capped(1, shed_idle_after), Executor::inline());
        let mut first = connect(server.addr());
        first.write_all(b"3").unwrap();
        let mut reply = [0u8; 2];
        first.read_exact(&mut reply).unwrap();
        let mut newcomer = connect(server.addr());
        let text = read_to_close(&mut newcomer);
        assert!(
            text.starts_with("error: server busy: all 1 connections are in use"),
            "{shed_idle_after:?}: {text:?}"
        );
        first.write_all(b"4").unwrap();
        let mut reply = [0u8; 3];
        first.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"10\n", "{shed_idle_after:?}");
    }
}

#[test]
fn the_defaults_come_from_the_os_limits() {
    let server = Server::bind(ServerConfig::default(), Executor::inline()).unwrap();
    assert_eq!(server.max_connections(), default_max_connections());
    assert_eq!(server.backlog(), max_backlog());
    let chosen = Server::bind(
        ServerConfig {
            max_connections: Some(7),
            backlog: Some(9),
            ..ServerConfig::default()
        },
        Executor::inline(),
    )
    .unwrap();
    assert_eq!((chosen.max_connections(), chosen.backlog()), (7, 9));
}

#[test]
fn a_client_that_never_reads_its_replies_is_cut_off() {
    let server = line_server(Duration::from_millis(200));
    let mut stream = connect_with_small_buffers(server.addr());
    stream
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Requests whose replies nobody reads: once the buffers fill, the server's write waits for
    // its idle timeout and gives up on the connection, and then our writes fail.
    let requests = b"1\n".repeat(64 * 1024);
    let deadline = Instant::now() + BOUND;
    loop {
        assert!(
            Instant::now() < deadline,
            "a client that never reads is still connected after {BOUND:?}"
        );
        match stream.write(&requests) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => {
                assert!(
                    matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
                    "{e}"
                );
                break;
            }
        }
    }
}

/// A connection whose buffers fill after some thousands of replies rather than millions: a
/// small receive buffer, and a small segment size, which the server's send buffer is sized
/// from. Filling them then takes the server a fraction of a second of CPU, however little of
/// the machine it gets.
fn connect_with_small_buffers(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    // Before connecting: the window and the segment size are agreed in the handshake.
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.set_tcp_mss(536).unwrap();
    socket.connect_timeout(&addr.into(), BOUND).unwrap();
    TcpStream::from(socket)
}

#[test]
fn a_whole_line_too_long_for_a_request_gets_an_error_and_the_connection_goes_on() {
    let server = line_server(Duration::from_secs(30));
    let mut stream = connect(server.addr());
    let mut replies = BufReader::new(stream.try_clone().unwrap());
    stream.write_all(b"12345678901234567\n4\n").unwrap();
    let mut line = String::new();
    replies.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("error: line longer than 16 bytes"),
        "{line}"
    );
    assert!(!line.contains("closing"), "{line}");
    line.clear();
    replies.read_line(&mut line).unwrap();
    assert_eq!(line, "10\n");
}
