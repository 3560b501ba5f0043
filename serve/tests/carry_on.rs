//! A thread whose connection's turns are over goes on to serve other resting connections with
//! input (see the crate docs). What must hold whatever thread serves what: a departure cancels
//! the work of its own connection only, never the turn its former thread serves next; a
//! connection is never in two turns at once; every request is answered. Every wait is bounded
//! by [`BOUND`]; no timing is asserted.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ythread::{Executor, Yielder};
use ythread_serve::{Connection, Protocol, ServeConfig, Server, Turn};

/// Longest any single wait may take before the test fails as hung.
const BOUND: Duration = Duration::from_secs(30);

/// Answers each line `id n` with `id 2n`, the doubling yielded to the executor (a point where a
/// cancellation lands); counts turns found already running for the same connection.
#[derive(Default)]
struct Double {
    in_turn: Mutex<std::collections::HashSet<String>>,
    overlaps: AtomicUsize,
    failed_work: AtomicUsize,
}

struct Shared(Arc<Double>);

impl Protocol for Shared {
    fn turn(&self, y: &Yielder<'_>, connection: &mut Connection<'_>) -> Turn {
        loop {
            if let Some(end) = connection.buffered().iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&connection.buffered()[..end]).into_owned();
                connection.consume(end + 1);
                let Some((id, n)) = line.split_once(' ') else {
                    return Turn::Close;
                };
                // The turn ends the connection: its client's hang-up may then be seen after
                // the thread has gone on to another connection.
                if n == "bye" {
                    let _ = connection.write_all(format!("{id} bye\n").as_bytes());
                    return Turn::Close;
                }
                let n: u64 = n.parse().unwrap_or(0);
                if !connection.begin_work() {
                    return Turn::Close;
                }
                if !self.0.in_turn.lock().unwrap().insert(id.to_owned()) {
                    self.0.overlaps.fetch_add(1, Ordering::SeqCst);
                }
                let doubled = y.run(move || n * 2);
                self.0.in_turn.lock().unwrap().remove(id);
                connection.end_work();
                let Ok(doubled) = doubled else {
                    self.0.failed_work.fetch_add(1, Ordering::SeqCst);
                    return Turn::Close;
                };
                return match connection.write_all(format!("{id} {doubled}\n").as_bytes()) {
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

    fn busy(&self, why: &str) -> Vec<u8> {
        format!("busy: {why}\n").into_bytes()
    }
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.set_write_timeout(Some(BOUND)).unwrap();
    BufReader::new(stream)
}

fn ask(connection: &mut BufReader<TcpStream>, id: &str, n: impl std::fmt::Display) -> String {
    connection
        .get_mut()
        .write_all(format!("{id} {n}\n").as_bytes())
        .unwrap();
    let mut reply = String::new();
    connection.read_line(&mut reply).unwrap();
    reply.trim_end().to_owned()
}

/// Keep-alive clients ask again and again while other clients each ask twice and leave at once,
/// half of them after a request that ends the connection (their hang-ups reach the server after
/// their turns, when the thread that served them may be serving a keep-alive connection): every keep-alive request is answered, no work fails, and
/// no connection is in two turns at once.
#[test]
fn departures_cancel_only_their_own_turns_while_threads_carry_on() {
    const KEEP_ALIVE: usize = 16;
    const REQUESTS_EACH: u64 = 1_000;
    const LEAVERS: usize = 4;
    const LEAVES_EACH: u64 = 500;
    let double = Arc::new(Double::default());
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind(
        addr,
        ServeConfig::default(),
        Executor::inline(),
        Shared(Arc::clone(&double)),
    )
    .unwrap()
    .spawn();
    let addr = server.addr();
    std::thread::scope(|scope| {
        for client in 0..KEEP_ALIVE {
            scope.spawn(move || {
                let mut connection = connect(addr);
                let id = format!("k{client}");
                for n in 0..REQUESTS_EACH {
                    assert_eq!(ask(&mut connection, &id, n), format!("{id} {}", 2 * n));
                }
            });
        }
        for client in 0..LEAVERS {
            scope.spawn(move || {
                for n in 0..LEAVES_EACH {
                    let id = format!("l{client}-{n}");
                    let mut connection = connect(addr);
                    // Its first request, then a second one: the second is a woken
                    // connection's, served by whichever thread takes it.
                    assert_eq!(ask(&mut connection, &id, n), format!("{id} {}", 2 * n));
                    assert_eq!(
                        ask(&mut connection, &id, n + 1),
                        format!("{id} {}", 2 * n + 2)
                    );
                    // Odd ones are ended by the server, even ones by the client.
                    if n % 2 == 1 {
                        assert_eq!(ask(&mut connection, &id, "bye"), format!("{id} bye"));
                    }
                    drop(connection);
                }
            });
        }
    });
    assert_eq!(double.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(double.failed_work.load(Ordering::SeqCst), 0);
    server.shutdown().unwrap();
}
