//! The serving layer through its public API, with a small line protocol: silent and resting
//! connections hold no thread, pipelined requests are served in order by one turn at a time,
//! and the busy reply is the protocol's. Alone in its test binary, and the tests one at a
//! time, so that the process's thread count is each test's own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ythread::{Executor, Yielder};
use ythread_serve::{Connection, Protocol, RunningServer, ServeConfig, Server, Turn};

/// Longest any single wait may take before the test fails as hung.
const BOUND: Duration = Duration::from_secs(30);

const CONNECTIONS: usize = 200;

/// The most threads the layer may add for connections that have no request in progress:
/// acceptors waiting in `accept` or for a first byte, and threads parked for reuse.
const THREAD_ALLOWANCE: usize = 24;

/// The tests one at a time: each counts the whole process's threads.
static SERIAL: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This process's threads, as the kernel counts them (`Threads:` in `/proc/self/status`).
fn os_threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("a Threads: line in /proc/self/status")
}

/// Answers each line `n` with `n` and the number of turns that were running on this server
/// at the time, counting the turns.
#[derive(Default)]
struct Echo {
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    turns: AtomicUsize,
}

/// The protocol the server gets; the test keeps the other handle on the counts.
struct Shared(Arc<Echo>);

impl Protocol for Shared {
    fn turn(&self, _y: &Yielder<'_>, connection: &mut Connection<'_>) -> Turn {
        let running = self.0.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.most_at_once.fetch_max(running, Ordering::SeqCst);
        self.0.turns.fetch_add(1, Ordering::SeqCst);
        let turn = echo_one_line(connection);
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        turn
    }

    fn busy(&self, why: &str) -> Vec<u8> {
        format!("busy: {why}\n").into_bytes()
    }

    fn idle(&self, idle_for: Duration) -> Vec<u8> {
        format!("idle for {idle_for:?}\n").into_bytes()
    }
}

fn echo_one_line(connection: &mut Connection<'_>) -> Turn {
    loop {
        if let Some(end) = connection.buffered().iter().position(|&b| b == b'\n') {
            if !connection.begin_work() {
                return Turn::Close;
            }
            let mut reply = connection.buffered()[..=end].to_vec();
            connection.consume(end + 1);
            connection.end_work();
            if reply == b"bye\n" {
                reply = b"closing\n".to_vec();
                let _ = connection.write_all(&reply);
                return Turn::Close;
            }
            return match connection.write_all(&reply) {
                Ok(()) => Turn::Keep,
                Err(_) => Turn::Close,
            };
        }
        match connection.read_more(4096) {
            Ok(0) | Err(_) => return Turn::Close,
            Ok(_) => {}
        }
    }
}

fn start(config: ServeConfig) -> (RunningServer, Arc<Echo>) {
    let echo = Arc::new(Echo::default());
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind(addr, config, Executor::inline(), Shared(Arc::clone(&echo)))
        .unwrap()
        .spawn();
    (server, echo)
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    BufReader::new(stream)
}

fn ask(connection: &mut BufReader<TcpStream>, line: &str) -> String {
    connection
        .get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    read_line(connection)
}

fn read_line(connection: &mut BufReader<TcpStream>) -> String {
    let mut reply = String::new();
    connection.read_line(&mut reply).unwrap();
    assert!(reply.ends_with('\n'), "the server closed early: {reply:?}");
    reply.trim_end().to_owned()
}

#[test]
fn silent_connections_hold_no_thread() {
    let _alone = alone();
    let (server, echo) = start(ServeConfig::default());
    // The first connection starts the acceptors and the threads every server keeps.
    let mut first = connect(server.addr());
    assert_eq!(ask(&mut first, "warm"), "warm");
    let before = os_threads();
    let mut silent: Vec<_> = (0..CONNECTIONS).map(|_| connect(server.addr())).collect();
    // Each new connection may hold an acceptor for its first-byte wait; give those waits
    // time to end, bounded.
    let deadline = Instant::now() + BOUND;
    while os_threads() > before + THREAD_ALLOWANCE && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let grown = os_threads().saturating_sub(before);
    assert!(
        grown <= THREAD_ALLOWANCE,
        "{grown} more threads for {CONNECTIONS} connections that sent nothing"
    );
    // They were held all along: each is served when it speaks.
    for (i, connection) in silent.iter_mut().enumerate() {
        assert_eq!(ask(connection, &i.to_string()), i.to_string());
    }
    assert_eq!(echo.turns.load(Ordering::SeqCst), CONNECTIONS + 1);
    server.shutdown().unwrap();
}

#[test]
fn connections_resting_between_requests_hold_no_thread() {
    let _alone = alone();
    let (server, _echo) = start(ServeConfig::default());
    let mut first = connect(server.addr());
    assert_eq!(ask(&mut first, "warm"), "warm");
    let before = os_threads();
    let mut resting: Vec<_> = (0..CONNECTIONS).map(|_| connect(server.addr())).collect();
    for (i, connection) in resting.iter_mut().enumerate() {
        assert_eq!(ask(connection, &format!("a{i}")), format!("a{i}"));
        assert_eq!(ask(connection, &format!("b{i}")), format!("b{i}"));
    }
    let grown = os_threads().saturating_sub(before);
    assert!(
        grown <= THREAD_ALLOWANCE,
        "{grown} more threads for {CONNECTIONS} connections resting after two requests each"
    );
    for (i, connection) in resting.iter_mut().enumerate() {
        assert_eq!(ask(connection, &format!("c{i}")), format!("c{i}"));
    }
    server.shutdown().unwrap();
}

#[test]
fn pipelined_requests_are_answered_in_order_one_turn_at_a_time() {
    let _alone = alone();
    let (server, echo) = start(ServeConfig::default());
    const REQUESTS: usize = 500;
    let mut connection = connect(server.addr());
    // All at once, and the last one split across two writes.
    let mut burst = String::new();
    for i in 0..REQUESTS {
        burst.push_str(&format!("{i}\n"));
    }
    burst.push_str("la");
    connection.get_mut().write_all(burst.as_bytes()).unwrap();
    for i in 0..REQUESTS {
        assert_eq!(read_line(&mut connection), i.to_string());
    }
    connection.get_mut().write_all(b"st\n").unwrap();
    assert_eq!(read_line(&mut connection), "last");
    assert_eq!(echo.turns.load(Ordering::SeqCst), REQUESTS + 1);
    assert_eq!(
        echo.most_at_once.load(Ordering::SeqCst),
        1,
        "two turns ran at once on one connection"
    );
    // A turn that says close closes.
    assert_eq!(ask(&mut connection, "bye"), "closing");
    let mut rest = Vec::new();
    assert_eq!(connection.read_to_end(&mut rest).unwrap(), 0, "{rest:?}");
    server.shutdown().unwrap();
}

#[test]
fn the_refusal_and_the_idle_close_are_the_protocols() {
    let _alone = alone();
    let config = ServeConfig::default()
        .max_connections(1)
        .shed_idle_after(None)
        .idle_timeout(Duration::from_millis(300));
    let (server, _echo) = start(config);
    let mut held = connect(server.addr());
    assert_eq!(ask(&mut held, "mine"), "mine");
    let mut refused = connect(server.addr());
    assert_eq!(
        read_line(&mut refused),
        "busy: server busy: all 1 connections are in use; try again later"
    );
    // The held connection rests until its idle timeout, then gets the protocol's line.
    assert_eq!(read_line(&mut held), "idle for 300ms");
    server.shutdown().unwrap();
}

#[test]
fn a_request_trickled_past_the_turn_deadline_ends_its_turn() {
    let _alone = alone();
    let config = ServeConfig::default().turn_deadline(Duration::from_millis(300));
    let (server, _echo) = start(config);
    let mut connection = connect(server.addr());
    let started = Instant::now();
    // One byte at a time, far slower than the deadline allows; the server closes.
    let mut closed = false;
    while started.elapsed() < BOUND {
        if connection.get_mut().write_all(b"x").is_err() {
            closed = true;
            break;
        }
        let mut byte = [0u8];
        connection
            .get_mut()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match connection.get_mut().read(&mut byte) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => panic!("no reply was due"),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(closed, "a trickled request kept its turn for {BOUND:?}");
    server.shutdown().unwrap();
}

#[test]
fn a_request_past_the_thread_cap_is_refused_not_left_waiting() {
    let _alone = alone();
    // One thread in all: the acceptor. A connection's first turn may be the acceptor's; a
    // later one needs a thread of its own, and there is none.
    let (server, _echo) = start(ServeConfig::default().max_threads(1));
    let mut connection = connect(server.addr());
    let mut replies = Vec::new();
    for request in ["first", "second"] {
        let reply = ask(&mut connection, request);
        let refused = reply.starts_with("busy:");
        replies.push(reply);
        if refused {
            break;
        }
    }
    assert_eq!(
        replies.last().map(String::as_str),
        Some("busy: server busy: all 1 threads are serving requests; try again later"),
        "{replies:?}"
    );
    server.shutdown().unwrap();
}
