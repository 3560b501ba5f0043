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

use super::connection::Settings;
use super::connections::Connections;
use super::sys::Poller;

/// Who gets in: the cap, and how idle a connection must be to make room at it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admission {
    pub(crate) max_connections: usize,
    pub(crate) shed_idle_after: Option<Duration>,
}

pub(crate) struct Hub {
    pub(crate) listener: TcpListener,
    pub(crate) executor: Executor,
    pub(crate) settings: Settings,
    pub(crate) admission: Admission,
    pub(crate) connections: Mutex<Connections>,
    pub(crate) poller: Arc<Poller>,
    /// Acceptors waiting in `accept` right now.
    pub(crate) idle_acceptors: AtomicUsize,
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
        listener: TcpListener,
        executor: Executor,
        settings: Settings,
        admission: Admission,
    ) -> io::Result<Hub> {
        let poller = Arc::new(Poller::new()?);
        Ok(Hub {
            listener,
            executor,
            settings,
            admission,
            connections: Mutex::new(Connections::new(Arc::clone(&poller))),
            poller,
            idle_acceptors: AtomicUsize::new(0),
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

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("listener", &self.listener)
            .field("idle_acceptors", &self.idle_acceptors)
            .finish_non_exhaustive()
    }
}
