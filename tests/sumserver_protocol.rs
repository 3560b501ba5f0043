//! The sum server's wire protocol and its answers to bad input, through the library's
//! `Server` in this process: every bad request gets one `error:` line and the connection (or,
//! for an over-long request, a new one) is served again; idle clients are closed.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ythread::Executor;
use ythread_suite::client::{Connection, request_once};
use ythread_suite::server::{RunningServer, Server, ServerConfig, Work};

const BOUND: Duration = Duration::from_secs(30);

fn start(config: ServerConfig) -> RunningServer {
    Server::bind(config, Executor::inline())
        .expect("binding 127.0.0.1:0 works")
        .spawn()
}

fn sumn_server(max_n: u64) -> RunningServer {
    start(ServerConfig {
        max_n,
        ..ServerConfig::default()
    })
}

#[test]
fn the_article_request_gets_the_article_answer() {
    let server = sumn_server(1_000_000);
    assert_eq!(
        request_once(server.addr(), b"25000", BOUND).unwrap(),
        "312512500"
    );
    server.shutdown().unwrap();
}

#[test]
fn a_connection_serves_requests_until_the_client_closes() {
    let server = sumn_server(1_000_000);
    let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
    for n in [0u64, 1, 2, 100, 25_000, 999_999, 1_000_000] {
        let reply = connection.request(n.to_string().as_bytes()).unwrap();
        assert_eq!(reply, Work::Sumn.expected(n).to_string(), "n = {n}");
    }
    server.shutdown().unwrap();
}

#[test]
fn every_bad_request_gets_an_error_line_and_the_next_request_is_answered() {
    let server = sumn_server(1_000_000);
    let corpus: &[(&[u8], &str)] = &[
        (b" ", "empty request"),
        (b"\r\n", "empty request"),
        (b"abc", "is not a whole number"),
        (b"12 34", "is not a whole number"),
        (b"1e3", "is not a whole number"),
        (b"0x10", "is not a whole number"),
        (b"3.5", "is not a whole number"),
        (b"+", "is not a whole number"),
        (b"\xff\xfe\x00", "is not a whole number"),
        (b"-5", "is negative"),
        (b"-000000000000001", "is negative"),
        (b"1000001", "above this server's limit of 1000000"),
        (b"9999999999999999", "above this server's limit"),
    ];
    let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
    for &(request, expected) in corpus {
        let reply = connection.request(request).unwrap();
        assert!(
            reply.starts_with("error: ") && reply.contains(expected),
            "`{}` got {reply:?}, wanted an error about {expected:?}",
            request.escape_ascii()
        );
        let after = connection.request(b"25000").unwrap();
        assert_eq!(
            after,
            "312512500",
            "the request after `{}`",
            request.escape_ascii()
        );
    }
    server.shutdown().unwrap();
}

#[test]
fn error_replies_are_single_lines_ending_in_a_line_break() {
    let server = sumn_server(10);
    let mut raw = TcpStream::connect(server.addr()).unwrap();
    raw.set_read_timeout(Some(BOUND)).unwrap();
    raw.write_all(b"bad\ninput").unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\n") {
        assert_eq!(
            raw.read(&mut byte).unwrap(),
            1,
            "the reply ended early: {reply:?}"
        );
        reply.push(byte[0]);
    }
    let text = String::from_utf8(reply).unwrap();
    assert!(
        text.starts_with("error: `bad\\ninput` is not a whole number"),
        "{text:?}"
    );
    server.shutdown().unwrap();
}

#[test]
fn an_over_long_request_gets_an_error_and_its_connection_is_closed() {
    let server = sumn_server(1_000_000);
    let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
    let reply = connection.request(b"12345678901234567890").unwrap();
    assert!(
        reply.starts_with("error: request longer than 16 bytes"),
        "{reply:?}"
    );
    let after = connection.request(b"10");
    assert!(
        after.is_err(),
        "the connection should be closed, got {after:?}"
    );
    // Everyone else, and this client on a new connection, is still served.
    assert_eq!(request_once(server.addr(), b"10", BOUND).unwrap(), "55");
    server.shutdown().unwrap();
}

#[test]
fn a_request_of_exactly_sixteen_bytes_is_served() {
    let server = sumn_server(u64::MAX);
    let reply = request_once(server.addr(), b"0000000000025000", BOUND).unwrap();
    assert_eq!(reply, "312512500");
    server.shutdown().unwrap();
}

#[test]
fn an_idle_client_gets_an_error_line_and_is_closed() {
    let server = start(ServerConfig {
        idle_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    });
    let mut raw = TcpStream::connect(server.addr()).unwrap();
    raw.set_read_timeout(Some(BOUND)).unwrap();
    let mut reply = String::new();
    raw.read_to_string(&mut reply)
        .expect("the server closes the idle connection cleanly");
    assert!(
        reply.starts_with("error: no request within 100ms; closing the connection"),
        "{reply:?}"
    );
    assert_eq!(request_once(server.addr(), b"3", BOUND).unwrap(), "6");
    server.shutdown().unwrap();
}

#[test]
fn a_client_that_leaves_without_reading_does_not_disturb_the_others() {
    let server = sumn_server(1_000_000);
    for _ in 0..5 {
        let mut raw = TcpStream::connect(server.addr()).unwrap();
        raw.write_all(b"25000").unwrap();
        drop(raw);
    }
    let mut raw = TcpStream::connect(server.addr()).unwrap();
    drop(raw.write_all(b"1"));
    drop(raw.shutdown(std::net::Shutdown::Both));
    assert_eq!(
        request_once(server.addr(), b"25000", BOUND).unwrap(),
        "312512500"
    );
    server.shutdown().unwrap();
}

#[test]
fn the_fib_server_answers_fib_and_keeps_to_its_limit() {
    let server = start(ServerConfig::for_work(Work::Fib));
    let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
    for n in [0u64, 1, 2, 20, 25] {
        let reply = connection.request(n.to_string().as_bytes()).unwrap();
        assert_eq!(reply, Work::Fib.expected(n).to_string(), "fib({n})");
    }
    let reply = connection.request(b"41").unwrap();
    assert!(
        reply.contains("above this server's limit of 40"),
        "{reply:?}"
    );
    server.shutdown().unwrap();
}

#[test]
fn configurations_that_cannot_work_are_refused_at_bind() {
    let too_big = ServerConfig {
        max_n: 94,
        ..ServerConfig::for_work(Work::Fib)
    };
    let err = Server::bind(too_big, Executor::inline()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("at most 93"), "{err}");

    let no_timeout = ServerConfig {
        idle_timeout: Duration::ZERO,
        ..ServerConfig::default()
    };
    let err = Server::bind(no_timeout, Executor::inline()).unwrap_err();
    assert!(err.to_string().contains("idle timeout is zero"), "{err}");
}

#[test]
fn binding_an_address_in_use_says_which() {
    let server = sumn_server(10);
    let taken = ServerConfig {
        addr: server.addr(),
        ..ServerConfig::default()
    };
    let err = Server::bind(taken, Executor::inline()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(
        err.to_string().contains(&server.addr().to_string()),
        "{err}"
    );
    server.shutdown().unwrap();
}
