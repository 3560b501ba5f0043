//! Work for clients that left is dropped: the server notices a connection closed while its
//! request waits or runs, and cancels that handler, which takes its work out of the
//! strategy's line or kills the worker process running it. Through the library's `Server` in
//! this process; the test strategy and the worker's state tell each step, never timing.
//! (That cancellation leaves every strategy's line without running the work is tested in
//! `cancel_work.rs`.)

mod subprocess_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, mpsc};

use subprocess_support::{BOUND, eventually, our_children, pool};
use ythread::{Cancellation, CpuApply, Executor, Work as WorkDescriptor};
use ythread_suite::client::request_once;
use ythread_suite::server::{RunningServer, Server, ServerConfig};

/// A strategy that holds each piece of work until released, and reports a cancellation of
/// the handler while it holds it.
struct Watchful {
    arrived: mpsc::Sender<()>,
    cancelled: mpsc::Sender<()>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl CpuApply for Watchful {
    fn apply(&self, work: &mut dyn WorkDescriptor) {
        let cancelled = self.cancelled.clone();
        let _armed = Cancellation::current().map(|c| {
            c.on_cancel(move || {
                let _ = cancelled.send(());
            })
        });
        let _ = self.arrived.send(());
        let _ = self.release.lock().unwrap().recv_timeout(BOUND);
        work.run_here();
    }

    fn describe(&self) -> String {
        "watchful".to_owned()
    }
}

fn start(executor: Executor) -> RunningServer {
    let config = ServerConfig {
        max_n: u64::MAX,
        ..ServerConfig::default()
    };
    Server::bind(config, executor).unwrap().spawn()
}

fn send(server: &RunningServer, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    stream.write_all(request).unwrap();
    stream
}

#[test]
fn a_client_that_leaves_during_its_request_has_its_handler_cancelled() {
    let (arrived_tx, arrived) = mpsc::channel();
    let (cancelled_tx, cancelled) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let server = start(Executor::new(Watchful {
        arrived: arrived_tx,
        cancelled: cancelled_tx,
        release: Mutex::new(release_rx),
    }));
    let leaving = send(&server, b"100");
    arrived
        .recv_timeout(BOUND)
        .expect("the request reaches the strategy");
    drop(leaving);
    cancelled
        .recv_timeout(BOUND)
        .expect("the departed client's handler is cancelled");
    release.send(()).unwrap();

    // A client that stays is not cancelled.
    let mut staying = send(&server, b"4");
    arrived.recv_timeout(BOUND).unwrap();
    release.send(()).unwrap();
    let mut reply = [0u8; 3];
    staying.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"10\n");
    assert!(
        cancelled.try_recv().is_err(),
        "a client that stayed was cancelled"
    );
}

/// Taken by the tests that count this process's worker processes, so that they count their
/// own.
static WORKER_COUNT: Mutex<()> = Mutex::new(());

/// A server on a pool of one worker, the executor (for its metrics), and that worker's pid,
/// with the worker count to this test alone while the guard lives.
struct OneWorker {
    server: RunningServer,
    metrics_of: Executor,
    workers: Vec<u32>,
    _alone: std::sync::MutexGuard<'static, ()>,
}

fn one_worker() -> OneWorker {
    let alone = WORKER_COUNT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let executor = Executor::new(pool(1).build().unwrap());
    let metrics_of = executor.clone();
    let server = start(executor);
    let workers = our_children();
    assert_eq!(workers.len(), 1, "one worker: {workers:?}");
    OneWorker {
        server,
        metrics_of,
        workers,
        _alone: alone,
    }
}

impl OneWorker {
    /// The worker has been killed and replaced, and the server answers on.
    fn assert_worker_replaced(&self) {
        eventually("the worker is replaced", || {
            let now = our_children();
            now.len() == 1 && now != self.workers
        });
        assert_eq!(
            request_once(self.server.addr(), b"25000", BOUND).unwrap(),
            "312512500"
        );
    }
}

#[test]
fn a_worker_running_work_for_a_client_that_left_is_killed_and_replaced() {
    let held = one_worker();
    let (server, metrics_of, workers) = (&held.server, &held.metrics_of, &held.workers);

    // Work that runs for hours holds the worker; a second request waits in line behind it.
    let running = send(server, b"1000000000000000");
    eventually("the first request runs", || {
        metrics_of.metrics().in_flight == 1
    });
    let queued = send(server, b"1000000000000001");
    eventually("the second request waits", || {
        metrics_of.metrics().waiting == 1
    });

    // The queued client leaves: its work leaves the line, and the worker is untouched.
    drop(queued);
    eventually("the departed client's work leaves the line", || {
        metrics_of.metrics().waiting == 0
    });
    assert_eq!(
        &our_children(),
        workers,
        "a queued departure killed a worker"
    );

    // The running client leaves: its worker is killed and the pool heals.
    drop(running);
    held.assert_worker_replaced();
}

/// A keep-alive connection's later request is a turn on a thread woken for it from rest:
/// its client leaving mid-turn cancels that turn too, and the worker running it is replaced.
#[test]
fn a_departure_during_a_later_turn_kills_its_worker() {
    let held = one_worker();
    let mut client = send(&held.server, b"4");
    let mut reply = [0u8; 3];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"10\n");
    // The connection rests now; its next request wakes it into a turn of its own.
    client.write_all(b"1000000000000000").unwrap();
    eventually("the later request runs", || {
        held.metrics_of.metrics().in_flight == 1
    });
    drop(client);
    held.assert_worker_replaced();
}
