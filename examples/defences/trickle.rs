//! A request trickled one byte a second in line framing: closed within the idle timeout of
//! its first byte (bar: idle timeout + 1 s).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ythread_suite::server::Framing;

use crate::child::{ChildServer, Setup};
use crate::{Bar, ms};

const IDLE: Duration = Duration::from_secs(3);
const CLIENTS: usize = 5;

pub(crate) fn run() -> Vec<Bar> {
    let server = ChildServer::start(&Setup {
        framing: Framing::Line,
        idle_timeout: IDLE,
        ..Setup::default()
    });
    let closed: Vec<Option<Duration>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| scope.spawn(|| trickle(&server)))
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().ok().flatten())
            .collect()
    });
    let slowest = closed.iter().flatten().max().copied();
    println!("## Trickled requests (line framing, idle timeout {IDLE:?}, one byte a second)\n");
    println!(
        "{CLIENTS} clients; closed after their first byte within: {}\n",
        closed
            .iter()
            .map(|c| c.map_or("not closed".to_owned(), ms))
            .collect::<Vec<_>>()
            .join(", ")
    );
    vec![Bar {
        what: "a request trickled 1 byte/s is closed within idle timeout + 1 s of its first byte",
        measured: format!(
            "slowest close {} after the first byte (idle timeout {IDLE:?})",
            slowest.map_or("never".to_owned(), ms)
        ),
        met: closed.iter().all(Option::is_some)
            && slowest.is_some_and(|s| s <= IDLE + Duration::from_secs(1)),
    }]
}

/// Sends a digit a second until the server closes; how long after the first digit it closed.
fn trickle(server: &ChildServer) -> Option<Duration> {
    let mut stream = TcpStream::connect(server.addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let first = Instant::now();
    let mut buffer = [0u8; 256];
    while first.elapsed() < IDLE * 4 {
        let _ = stream.write_all(b"1");
        match stream.read(&mut buffer) {
            Ok(0) => return Some(first.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return Some(first.elapsed()),
        }
    }
    None
}
