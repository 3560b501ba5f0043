//! The listen backlog: 3,000 back-to-back connects, held open, against the default backlog
//! (the OS maximum) and against std's old fixed 128. A connect the full backlog dropped shows
//! as a SYN retransmit: about a second late.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::child::{ChildServer, Setup};
use crate::{Bar, Scale};

const CONNECTS: usize = 3_000;
const CLIENTS: usize = 16;
const LATE: Duration = Duration::from_millis(500);

pub(crate) fn run(_scale: Scale) -> Vec<Bar> {
    println!(
        "## Listen backlog ({CONNECTS} back-to-back connects from {CLIENTS} threads, held open)\n"
    );
    println!("| backlog | connects later than {LATE:?} | failed |");
    println!("|---|--:|--:|");
    let mut rows = Vec::new();
    for backlog in [None, Some(128)] {
        let server = ChildServer::start(&Setup {
            backlog,
            ..Setup::default()
        });
        let (late, failed) = burst(&server);
        let name = backlog.map_or("default (OS maximum)".to_owned(), |n| n.to_string());
        println!("| {name} | {late} | {failed} |");
        rows.push((late, failed));
    }
    println!();
    let (late, failed) = rows[0];
    vec![Bar {
        what: "3,000 back-to-back connects with the default backlog: no SYN drops",
        measured: format!(
            "{late} late, {failed} failed (backlog 128: {} late, {} failed)",
            rows[1].0, rows[1].1
        ),
        met: late == 0 && failed == 0,
    }]
}

/// How many connects were late and how many failed.
fn burst(server: &ChildServer) -> (usize, usize) {
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    let mut held = Vec::new();
                    let (mut late, mut failed) = (0, 0);
                    for _ in 0..CONNECTS / CLIENTS {
                        let started = Instant::now();
                        match TcpStream::connect_timeout(&server.addr, Duration::from_secs(5)) {
                            Ok(stream) => held.push(stream),
                            Err(_) => failed += 1,
                        }
                        if started.elapsed() > LATE {
                            late += 1;
                        }
                    }
                    (late, failed)
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().unwrap_or((0, CONNECTS / CLIENTS)))
            .fold((0, 0), |(l, f), (dl, df)| (l + dl, f + df))
    })
}
