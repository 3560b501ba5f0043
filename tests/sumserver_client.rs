//! The load client against the sum server in this process: every answer is checked, and
//! everything that goes wrong (wrong answers, `error:` replies, a dead server, the time bound)
//! is counted rather than hidden or panicked on.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use ythread::Executor;
use ythread_suite::client::{LoadConfig, request_once, run_load};
use ythread_suite::server::{RunningServer, Server, ServerConfig, Work};

const BOUND: Duration = Duration::from_secs(30);

fn server() -> RunningServer {
    let config = ServerConfig {
        max_n: 100_000,
        ..ServerConfig::default()
    };
    Server::bind(config, Executor::inline()).unwrap().spawn()
}

fn load(addr: SocketAddr, keepalive: bool) -> LoadConfig {
    LoadConfig {
        clients: 3,
        requests: 30,
        n: 25_000,
        keepalive,
        timeout: BOUND,
        max_duration: BOUND,
        ..LoadConfig::new(addr)
    }
}

fn sumn(n: u64) -> Option<u64> {
    Some(Work::Sumn.expected(n))
}

#[test]
fn right_answers_are_counted_and_timed_with_and_without_keepalive() {
    let server = server();
    for keepalive in [false, true] {
        let report = run_load(&load(server.addr(), keepalive), sumn);
        assert_eq!(
            (report.ok, report.errors, report.not_sent),
            (30, 0, 0),
            "{report}"
        );
        assert_eq!(report.latency_us.len(), 30);
        assert!(report.first_error.is_none(), "{report}");
        assert!(report.percentile(50.0) <= report.percentile(99.0));
        assert!(report.percentile(50.0) > Duration::ZERO);
        assert!(report.requests_per_sec() > 0.0);
        let text = report.to_string();
        assert!(
            text.contains("30 ok, 0 errors") && text.contains("p99"),
            "{text}"
        );
    }
    server.shutdown().unwrap();
}

#[test]
fn wrong_answers_count_as_errors() {
    let server = server();
    let report = run_load(&load(server.addr(), true), |n| sumn(n).map(|v| v + 1));
    assert_eq!((report.ok, report.errors), (0, 30), "{report}");
    let first = report.first_error.unwrap();
    assert!(
        first.contains("wrong answer for n = 25000: got 312512500"),
        "{first}"
    );
    assert_eq!(
        report.latency_us.len(),
        0,
        "only answered requests are timed"
    );
    server.shutdown().unwrap();
}

#[test]
fn error_replies_count_as_errors() {
    let server = server();
    let config = LoadConfig {
        n: 100_001,
        ..load(server.addr(), false)
    };
    let report = run_load(&config, sumn);
    assert_eq!((report.ok, report.errors), (0, 30), "{report}");
    let first = report.first_error.unwrap();
    assert!(first.contains("`error: n = 100001 is above"), "{first}");
    server.shutdown().unwrap();
}

#[test]
fn no_expectation_accepts_any_number() {
    let server = server();
    let report = run_load(&load(server.addr(), true), |_| None);
    assert_eq!((report.ok, report.errors), (30, 0), "{report}");
    server.shutdown().unwrap();
}

#[test]
fn a_server_that_is_gone_counts_every_request_as_an_error() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    for keepalive in [false, true] {
        let report = run_load(&load(addr, keepalive), sumn);
        assert_eq!((report.ok, report.errors), (0, 30), "{report}");
        assert!(report.first_error.unwrap().contains(&addr.to_string()));
    }
    let err = request_once(addr, b"1", BOUND).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn a_server_that_closes_without_replying_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let closer = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        drop(stream);
    });
    assert!(request_once(addr, b"1", BOUND).is_err());
    closer.join().unwrap();
}

#[test]
fn the_time_bound_stops_the_run_and_says_how_many_were_not_sent() {
    let server = server();
    let config = LoadConfig {
        max_duration: Duration::ZERO,
        ..load(server.addr(), false)
    };
    let report = run_load(&config, sumn);
    assert_eq!(
        (report.ok, report.errors, report.not_sent),
        (0, 0, 30),
        "{report}"
    );
    assert!(report.to_string().contains("30 not sent"), "{report}");
    assert_eq!(report.percentile(99.0), Duration::ZERO);
    server.shutdown().unwrap();
}
