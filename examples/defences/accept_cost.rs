//! The accept thread's CPU per new connection with few and with many connections open.
//! Bar: flat (within ±20%) from 1k to 8k live connections.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::child::{ChildServer, Setup};
use crate::{Bar, Scale};

const CLIENTS: usize = 4;

pub(crate) fn run(scale: Scale) -> Vec<Bar> {
    let server = ChildServer::start(&Setup::default());
    let mut rows = Vec::new();
    for live in [scale.live_low, scale.live_high] {
        let held: Vec<TcpStream> = (0..live).filter_map(|_| open_answered(&server)).collect();
        let before = server.accept_thread_cpu();
        let per_client = scale.cost_connections / CLIENTS;
        std::thread::scope(|scope| {
            for _ in 0..CLIENTS {
                scope.spawn(|| {
                    for _ in 0..per_client {
                        drop(open_answered(&server));
                    }
                });
            }
        });
        let used = server.accept_thread_cpu().saturating_sub(before);
        let per_connection = used / (per_client * CLIENTS).max(1) as u32;
        rows.push((held.len(), per_connection));
        drop(held);
        // Let the server see the held connections go before the next size.
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("## Accept-thread CPU per new connection, by connections open\n");
    println!("| open connections | accept-thread CPU per new connection |");
    println!("|--:|--:|");
    for (live, cost) in &rows {
        println!("| {live} | {:.1} µs |", cost.as_secs_f64() * 1e6);
    }
    println!();
    let ratio = rows[1].1.as_secs_f64() / rows[0].1.as_secs_f64().max(1e-9);
    vec![Bar {
        what: "accept-thread CPU per connection flat (±20%) from 1k to 8k live connections",
        measured: format!(
            "{:.1} µs at {} open, {:.1} µs at {} open ({ratio:.2}x)",
            rows[0].1.as_secs_f64() * 1e6,
            rows[0].0,
            rows[1].1.as_secs_f64() * 1e6,
            rows[1].0
        ),
        met: (0.8..=1.2).contains(&ratio),
    }]
}

/// A connection the server has admitted (it answered a request on it).
fn open_answered(server: &ChildServer) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(server.addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"1").ok()?;
    let mut reply = [0u8; 2];
    stream.read_exact(&mut reply).ok()?;
    Some(stream)
}
