//! Handing idle workers to callers: at most one job per worker, first come first served.
//!
//! A caller takes an idle worker if there is one. Otherwise it queues a [`Waiter`] and sleeps
//! on it; a worker coming back goes *directly* to the waiter at the head of the queue, never
//! back into the idle set while someone waits. So no caller can overtake a waiting one
//! (no barging), and a caller waits for at most the jobs of the callers ahead of it.
//!
//! Idle workers are reused last-in first-out: the worker that just answered is the one most
//! likely to still be spinning for its next job and to have warm caches.
//!
//! Waiting is bounded by more than the jobs ahead: when the pool is closed, or when it has no
//! worker at all and cannot start one, every waiter is woken with an `Unavailable` error.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use ythread::Error as WorkError;

/// The workers `W` of one pool that are not running a job, and the callers waiting for one.
/// Generic so that the queueing can be tested without processes.
pub(super) struct Dispatch<W> {
    state: Mutex<State<W>>,
}

struct State<W> {
    idle: Vec<W>,
    waiters: VecDeque<Arc<Waiter<W>>>,
    /// Pids of the live workers, idle or busy.
    members: Vec<u32>,
    /// Why no worker could be started, while the pool has none.
    starved: Option<String>,
    /// Why the pool takes no more work.
    closed: Option<String>,
}

/// A caller asleep until a worker (or an error) is handed to it.
struct Waiter<W> {
    slot: Mutex<Option<Result<W, WorkError>>>,
    ready: Condvar,
}

impl<W> Waiter<W> {
    fn new() -> Self {
        Waiter {
            slot: Mutex::new(None),
            ready: Condvar::new(),
        }
    }

    fn fulfil(&self, outcome: Result<W, WorkError>) {
        *self.slot.lock() = Some(outcome);
        self.ready.notify_one();
    }

    fn wait(&self) -> Result<W, WorkError> {
        let mut slot = self.slot.lock();
        loop {
            if let Some(outcome) = slot.take() {
                return outcome;
            }
            self.ready.wait(&mut slot);
        }
    }
}

impl<W> Dispatch<W> {
    pub(super) fn new() -> Self {
        Dispatch {
            state: Mutex::new(State {
                idle: Vec::new(),
                waiters: VecDeque::new(),
                members: Vec::new(),
                starved: None,
                closed: None,
            }),
        }
    }

    /// Takes an idle worker, waiting in line if there is none.
    pub(super) fn checkout(&self) -> Result<W, WorkError> {
        let waiter = {
            let mut state = self.state.lock();
            if let Some(reason) = &state.closed {
                return Err(WorkError::unavailable(reason.clone()));
            }
            if let Some(worker) = state.idle.pop() {
                return Ok(worker);
            }
            if let Some(why) = state.starvation() {
                return Err(WorkError::unavailable(why));
            }
            let waiter = Arc::new(Waiter::new());
            state.waiters.push_back(Arc::clone(&waiter));
            waiter
        };
        waiter.wait()
    }

    /// Gives back a worker that finished its job.
    pub(super) fn checkin(&self, worker: W) {
        let mut state = self.state.lock();
        match state.waiters.pop_front() {
            Some(waiter) => waiter.fulfil(Ok(worker)),
            None => state.idle.push(worker),
        }
    }

    /// Adds a newly started worker, process `pid`, to the pool.
    pub(super) fn admit(&self, pid: u32, worker: W) {
        {
            let mut state = self.state.lock();
            state.members.push(pid);
            state.starved = None;
        }
        self.checkin(worker);
    }

    /// Forgets a worker that is gone or retired. If it was the last one and starting workers
    /// has been failing, the waiting callers are told so now.
    pub(super) fn remove(&self, pid: u32) {
        let mut state = self.state.lock();
        state.members.retain(|&p| p != pid);
        state.fail_waiters_if_starving();
    }

    /// Records that no worker could be started. If the pool has none left, the waiting
    /// callers (and later ones, until a worker is admitted) get an error saying why.
    pub(super) fn starve(&self, why: String) {
        let mut state = self.state.lock();
        state.starved = Some(why);
        state.fail_waiters_if_starving();
    }

    /// Takes no more work: wakes every waiter with `reason` and returns the idle workers.
    pub(super) fn close(&self, reason: &str) -> Vec<W> {
        let mut state = self.state.lock();
        state.closed = Some(reason.to_owned());
        for waiter in state.waiters.drain(..) {
            waiter.fulfil(Err(WorkError::unavailable(reason)));
        }
        state.members.clear();
        std::mem::take(&mut state.idle)
    }

    /// The pids of the live workers.
    pub(super) fn members(&self) -> Vec<u32> {
        self.state.lock().members.clone()
    }

    /// How many workers are idle right now.
    pub(super) fn idle(&self) -> usize {
        self.state.lock().idle.len()
    }
}

impl<W> State<W> {
    fn fail_waiters_if_starving(&mut self) {
        if let Some(why) = self.starvation() {
            for waiter in self.waiters.drain(..) {
                waiter.fulfil(Err(WorkError::unavailable(why.clone())));
            }
        }
    }

    /// Why callers cannot be served at all: no live worker and starting one failed.
    fn starvation(&self) -> Option<String> {
        match (&self.starved, self.members.is_empty()) {
            (Some(why), true) => Some(format!(
                "the subprocess pool has no worker process and could not start one ({why}); \
                 it keeps retrying in the background"
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    const BOUND: Duration = Duration::from_secs(10);

    /// Queues `n` callers one after another (each is in line before the next starts).
    fn queue_callers(
        dispatch: &Arc<Dispatch<u32>>,
        n: usize,
    ) -> mpsc::Receiver<(usize, Result<u32, WorkError>)> {
        let (done, results) = mpsc::channel();
        for caller in 0..n {
            let shared = Arc::clone(dispatch);
            let done = done.clone();
            thread::spawn(move || {
                let _ = done.send((caller, shared.checkout()));
            });
            let deadline = Instant::now() + BOUND;
            while dispatch.state.lock().waiters.len() < caller + 1 {
                assert!(Instant::now() < deadline, "caller {caller} never queued");
                thread::yield_now();
            }
        }
        results
    }

    #[test]
    fn returned_workers_go_to_the_longest_waiting_caller() {
        let dispatch = Arc::new(Dispatch::new());
        dispatch.admit(7, 7);
        let held = dispatch.checkout().unwrap();
        let results = queue_callers(&dispatch, 3);
        let mut order = Vec::new();
        let mut worker = held;
        for _ in 0..3 {
            dispatch.checkin(worker);
            let (caller, got) = results.recv_timeout(BOUND).unwrap();
            order.push(caller);
            worker = got.unwrap();
        }
        assert_eq!(order, [0, 1, 2]);
        assert_eq!(
            dispatch.idle(),
            0,
            "handed over, never parked while callers waited"
        );
    }

    #[test]
    fn closing_wakes_every_waiter_and_returns_the_idle_workers() {
        let dispatch = Arc::new(Dispatch::new());
        dispatch.admit(1, 1);
        let _busy = dispatch.checkout().unwrap();
        let results = queue_callers(&dispatch, 2);
        assert!(dispatch.close("closed for the test").is_empty());
        for _ in 0..2 {
            let (_, outcome) = results.recv_timeout(BOUND).unwrap();
            let error = outcome.unwrap_err();
            assert!(error.to_string().contains("closed for the test"), "{error}");
        }
        assert!(dispatch.checkout().is_err(), "no work after closing");

        let dispatch = Dispatch::new();
        dispatch.admit(2, 2);
        dispatch.admit(3, 3);
        assert_eq!(dispatch.close("done"), vec![2, 3]);
    }

    #[test]
    fn a_pool_without_workers_fails_waiters_once_starting_fails() {
        let dispatch = Arc::new(Dispatch::<u32>::new());
        let results = queue_callers(&dispatch, 2);
        dispatch.starve("no such program".to_owned());
        for _ in 0..2 {
            let (_, outcome) = results.recv_timeout(BOUND).unwrap();
            let error = outcome.unwrap_err();
            assert!(error.to_string().contains("no such program"), "{error}");
        }
        assert!(dispatch.checkout().is_err(), "later callers fail fast too");
        dispatch.admit(3, 3);
        assert_eq!(dispatch.checkout().unwrap(), 3);
    }

    #[test]
    fn losing_the_last_worker_while_starving_fails_the_waiters() {
        let dispatch = Arc::new(Dispatch::new());
        dispatch.admit(4, 4);
        let _busy = dispatch.checkout().unwrap();
        dispatch.starve("the program is gone".to_owned());
        let results = queue_callers(&dispatch, 1);
        dispatch.remove(4);
        let (_, outcome) = results.recv_timeout(BOUND).unwrap();
        let error = outcome.unwrap_err();
        assert!(error.to_string().contains("the program is gone"), "{error}");
    }
}
