//! The load client of the sum server: one-off requests, kept connections, and the load
//! generator that the `sumclient` example and the strategy comparison drive; and, in
//! [`http`], the minimal HTTP client of the thumbnails service's tests and load.
//!
//! Trade-offs: a request is one write and a blocking read of one reply line, so a client
//! thread has one request in flight, like the article's client; N clients means N threads.
//! The default opens a new connection per request (the article's way), so every latency
//! includes a TCP connect and the server's thread start; `keepalive` measures the work and
//! the strategy without them. Latencies go to an HDR histogram (1 µs to 1 h, 3 significant
//! digits) per thread, merged at the end, so recording costs no lock. A [`RequestMix`] makes
//! every request draw its size, and [`LoadConfig::record_each`] keeps each request's size and
//! latency so that [`slowdown()`] can judge each against its own service time.
//! [`run_open_loop`] offers requests at a chosen rate instead, whether or not earlier ones
//! have been answered.

mod connection;
pub mod http;
mod load;
mod mix;
mod open_loop;
mod slowdown;

pub use connection::{Connection, request_once};
pub use load::{LoadConfig, LoadReport, run_load};
pub use mix::RequestMix;
pub use open_loop::{OpenLoopConfig, OpenLoopReport, run_open_loop};
pub use slowdown::{RequestSample, Slowdown, slowdown};
