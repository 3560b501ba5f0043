//! Close lag: how long after the server's last line its end-of-stream reaches the client,
//! when the server closes the connection (here at the idle timeout). Bar: p50 < 1 ms.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::child::{ChildServer, Setup};
use crate::{Bar, Scale, ms, percentile};

const IDLE: Duration = Duration::from_millis(50);
const CONCURRENT: usize = 8;

pub(crate) fn run(scale: Scale) -> Vec<Bar> {
    let server = ChildServer::start(&Setup {
        idle_timeout: IDLE,
        ..Setup::default()
    });
    let per_client = scale.lag_samples.div_ceil(CONCURRENT);
    let mut lags: Vec<Duration> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CONCURRENT)
            .map(|_| {
                scope.spawn(|| {
                    (0..per_client)
                        .filter_map(|_| one(&server))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    let samples = lags.len();
    let p50 = percentile(&mut lags, 50.0);
    let p99 = percentile(&mut lags, 99.0);
    println!("## Close lag (the server closes at its {IDLE:?} idle timeout)\n");
    println!(
        "{samples} closes: from the server's last line to end-of-stream, p50 {}, p99 {}\n",
        ms(p50),
        ms(p99)
    );
    vec![Bar {
        what: "close lag p50 < 1 ms",
        measured: format!("p50 {}, p99 {} ({samples} closes)", ms(p50), ms(p99)),
        met: samples > 0 && p50 < Duration::from_millis(1),
    }]
}

/// Connects, waits for the idle timeout's line, then for end-of-stream.
fn one(server: &ChildServer) -> Option<Duration> {
    let mut stream = TcpStream::connect(server.addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buffer = [0u8; 512];
    let mut line = Vec::new();
    while !line.contains(&b'\n') {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(len) => line.extend_from_slice(&buffer[..len]),
        }
    }
    let lined = Instant::now();
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(lined.elapsed()),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}
