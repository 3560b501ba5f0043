//! The server's CPU per new connection with few and with many connections open.
//! Bar: flat (within ±20%) from 1k to 8k live connections.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::child::{ChildServer, Setup};
use crate::{Bar, Scale};

const CLIENTS: usize = 4;
const ROUNDS: usize = 3;

pub(crate) fn run(scale: Scale) -> Vec<Bar> {
    let server = ChildServer::start(&Setup::default());
    // Warm up: the handler threads the short connections need exist before anything counts.
    measure(&server, 0, scale.cost_connections / 4);
    let sizes = [scale.live_low, scale.live_high];
    let mut samples = [Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        for (size, samples) in sizes.iter().zip(&mut samples) {
            samples.push(measure(&server, *size, scale.cost_connections));
        }
    }
    let medians: Vec<Duration> = samples
        .iter_mut()
        .map(|samples| {
            samples.sort_unstable();
            samples[samples.len() / 2]
        })
        .collect();
    println!("## Server CPU per new connection, by connections open\n");
    println!(
        "{} new connections per measurement from {CLIENTS} clients, sizes alternating, \
         {ROUNDS} rounds; medians.\n",
        scale.cost_connections
    );
    println!("| open connections | server CPU per new connection (each round) | median |");
    println!("|--:|--:|--:|");
    for ((live, samples), median) in sizes.iter().zip(&samples).zip(&medians) {
        let each: Vec<String> = samples.iter().map(|s| micros(*s)).collect();
        println!("| {live} | {} | {} |", each.join(", "), micros(*median));
    }
    println!();
    let ratio = medians[1].as_secs_f64() / medians[0].as_secs_f64().max(1e-9);
    vec![Bar {
        what: "server CPU per new connection flat (±20%) from 1k to 8k live connections",
        measured: format!(
            "{} at {} open, {} at {} open ({ratio:.2}x), medians of {ROUNDS}",
            micros(medians[0]),
            sizes[0],
            micros(medians[1]),
            sizes[1]
        ),
        met: (0.8..=1.2).contains(&ratio),
    }]
}

/// Server CPU per connection of `connections` short connections while `live` others
/// are held open.
fn measure(server: &ChildServer, live: usize, connections: usize) -> Duration {
    // The last measurement's connections are all gone first: their ends would count here.
    server.wait_for_fds(server.baseline_fds());
    let held: Vec<TcpStream> = (0..live).filter_map(|_| open_answered(server)).collect();
    let before = server.server_cpu();
    let per_client = connections / CLIENTS;
    let served: usize = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    (0..per_client)
                        .filter(|_| open_answered(server).is_some())
                        .count()
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap_or(0)).sum()
    });
    let used = server.server_cpu().saturating_sub(before);
    drop(held);
    used / served.max(1) as u32
}

fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
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
