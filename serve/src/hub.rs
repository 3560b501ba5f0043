//! What the acceptors and the watcher of one server share: the listening socket, the table of
//! connections (one lock, held for a few table operations at a time, never across I/O or
//! work), the poller, and the counts that keep one acceptor waiting for the next connection.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::lock::Mutex;
use ythread::Executor;

use super::connection::Timeouts;
use super::connections::Connections;
use super::protocol::Protocol;
use super::sys::Poller;

/// Who gets in: the caps, and how idle a connection must be to make room at the cap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admission {
    pub(crate) max_connections: usize,
    /// The most threads for turns (acceptors and handlers) at once.
    pub(crate) max_threads: usize,
    pub(crate) shed_idle_after: Option<Duration>,
}

pub(crate) struct Hub {
    /// How the server names itself on stderr.
    pub(crate) name: String,
    pub(crate) listener: TcpListener,
    pub(crate) executor: Executor,
    pub(crate) protocol: Arc<dyn Protocol>,
    pub(crate) timeouts: Timeouts,
    pub(crate) admission: Admission,
    pub(crate) connections: Mutex<Connections>,
    pub(crate) poller: Arc<Poller>,
    /// Acceptors waiting in `accept` right now.
    pub(crate) idle_acceptors: AtomicUsize,
    /// Acceptors waiting for a new connection's first byte right now.
    pub(crate) first_byte_waiters: AtomicUsize,
    /// Acceptors serving turns right now.
    pub(crate) acceptor_turns: AtomicUsize,
    /// Handlers of woken connections' turns running right now.
    pub(crate) handlers: AtomicUsize,
    /// Acceptors handling events for the watcher right now (see [`Hub::begin_helping`]).
    helping: AtomicUsize,
    stopping: AtomicBool,
    /// The first error of the listening socket that is not a shortage, for the watcher to
    /// return: the server cannot accept any more.
    failure: Mutex<Option<io::Error>>,
    /// Whether a shortage has been said and not yet its end.
    pub(crate) out_of_fds: AtomicBool,
    pub(crate) out_of_threads: AtomicBool,
}

impl Hub {
    pub(crate) fn new(
        name: String,
        listener: TcpListener,
        executor: Executor,
        protocol: Arc<dyn Protocol>,
        timeouts: Timeouts,
        admission: Admission,
    ) -> io::Result<Hub> {
        let poller = Arc::new(Poller::new()?);
        Ok(Hub {
            name,
            listener,
            executor,
            protocol,
            timeouts,
            admission,
            connections: Mutex::new(Connections::new(Arc::clone(&poller))),
            poller,
            idle_acceptors: AtomicUsize::new(0),
            first_byte_waiters: AtomicUsize::new(0),
            acceptor_turns: AtomicUsize::new(0),
            handlers: AtomicUsize::new(0),
            helping: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            failure: Mutex::new(None),
            out_of_fds: AtomicBool::new(false),
            out_of_threads: AtomicBool::new(false),
        })
    }

    /// Stops accepting: acceptors waiting in `accept` return, and no connection is admitted
    /// from now on (admission checks this under the table's lock, so a stop that drains the
    /// table after this misses none).
    pub(crate) fn stop_accepting(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes every thread blocked in `accept` on Linux (they get `EINVAL`).
        let _ = socket2::SockRef::from(&self.listener).shutdown(std::net::Shutdown::Read);
    }

    /// Lets an acceptor handle events for the watcher until the guard drops; `None` once the
    /// server is stopping. Either the stop sees the helper in [`Hub::wait_for_helpers`], or the
    /// helper sees the stop here: the count goes up before the flag is read, and the flag is
    /// set before the count is read.
    pub(crate) fn begin_helping(&self) -> Option<Helping<'_>> {
        self.helping.fetch_add(1, Ordering::SeqCst);
        let helping = Helping(self);
        (!self.is_stopping()).then_some(helping)
    }

    /// After [`Hub::stop_accepting`]: waits for acceptors that are handling events to finish,
    /// so that none starts a handler once the stop has drained the table. Each handles a few
    /// events without blocking, so this takes microseconds; the bound only keeps a bug from
    /// turning into a hung stop.
    pub(crate) fn wait_for_helpers(&self) {
        let deadline = std::time::Instant::now() + HELPERS_BOUND;
        while self.helping.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// The protocol's busy line for `why`.
    pub(crate) fn busy(&self, why: std::fmt::Arguments<'_>) -> Vec<u8> {
        self.protocol.busy(&why.to_string())
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn fail(&self, error: io::Error) {
        self.failure.lock().get_or_insert(error);
    }

    pub(crate) fn take_failure(&self) -> Option<io::Error> {
        self.failure.lock().take()
    }
}

/// How long a stop waits for helping threads: see [`Hub::wait_for_helpers`].
const HELPERS_BOUND: Duration = Duration::from_secs(1);

/// An acceptor handling events for the watcher: see [`Hub::begin_helping`].
pub(crate) struct Helping<'a>(&'a Hub);

impl Drop for Helping<'_> {
    fn drop(&mut self) {
        self.0.helping.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("listener", &self.listener)
            .field("idle_acceptors", &self.idle_acceptors)
            .finish_non_exhaustive()
    }
}
