//! Handing workers to callers: the pool's members, in two lanes, over the shared waiting line.
//!
//! The line ([`crate::schedule`]) decides whose turn it is; this file decides which lane each
//! worker serves and when the line must turn callers away. The first `express` live workers
//! serve only work predicted short; the rest serve any work. A worker that dies or is recycled
//! leaves its lane, and its replacement takes the lane that is short of its count, so the pool
//! keeps its shape through crashes.
//!
//! When the pool has no live worker and starting one has failed, every waiting caller (and
//! every later one, until a worker comes up) gets an `Unavailable` error saying why, instead of
//! waiting for a worker that may never come.

use parking_lot::Mutex;
use ythread::Error as WorkError;

use crate::WorkerPriority;
use crate::schedule::{Lane, Line, Ticket};

/// The workers `W` of one pool and the callers waiting for one. Generic so that it can be
/// tested without processes.
pub(super) struct Dispatch<W> {
    line: Line<W>,
    /// Locked before the line's own lock, never after it.
    members: Mutex<Members>,
}

struct Members {
    /// Pids of the live workers, idle or busy, with their lanes.
    live: Vec<(u32, Lane)>,
    express: usize,
    /// The CPU priority given to regular workers as they join.
    regular_priority: Option<WorkerPriority>,
    /// Why no worker could be started, while the pool has none.
    starved: Option<String>,
}

impl<W: Send + 'static> Dispatch<W> {
    /// A pool whose first `express` workers serve only short work, and whose regular workers
    /// run at `regular_priority` if given.
    pub(super) fn new(express: usize, regular_priority: Option<WorkerPriority>) -> Self {
        Dispatch {
            line: Line::new(),
            members: Mutex::new(Members {
                live: Vec::new(),
                express,
                regular_priority,
                starved: None,
            }),
        }
    }

    /// Takes a worker `ticket` may use, waiting for its turn if there is none.
    pub(super) fn checkout(&self, ticket: Ticket) -> Result<(W, Lane), WorkError> {
        self.line.checkout(ticket)
    }

    /// Gives back a worker that finished its job to the lane it came from.
    pub(super) fn checkin(&self, worker: W, lane: Lane) {
        self.line.checkin(worker, lane);
    }

    /// Takes out an idle worker that `matches` (one found dead while idle); it stays a
    /// member until [`remove`](Self::remove)d.
    pub(super) fn take_idle(&self, matches: impl FnMut(&mut W) -> bool) -> Option<W> {
        self.line.take_idle(matches)
    }

    /// Adds a newly started worker, process `pid`, to the lane short of its count.
    pub(super) fn admit(&self, pid: u32, worker: W) {
        let mut members = self.members.lock();
        let express = members.live.iter().filter(|(_, l)| *l == Lane::Express);
        let lane = if express.count() < members.express {
            Lane::Express
        } else {
            Lane::Regular
        };
        if let (Lane::Regular, Some(priority)) = (lane, members.regular_priority) {
            priority.apply(pid);
        }
        members.live.push((pid, lane));
        members.starved = None;
        self.line.refuse(None);
        self.line.refuse_long(None);
        self.line.checkin(worker, lane);
    }

    /// Forgets a worker that is gone or retired. If it was the last one and starting workers
    /// has been failing, the waiting callers are told so now.
    pub(super) fn remove(&self, pid: u32) {
        let mut members = self.members.lock();
        members.live.retain(|&(p, _)| p != pid);
        self.refuse_if_starving(&members);
    }

    /// Records that no worker could be started. If the pool has none left, the waiting
    /// callers (and later ones, until a worker is admitted) get an error saying why.
    pub(super) fn starve(&self, why: String) {
        let mut members = self.members.lock();
        members.starved = Some(why);
        self.refuse_if_starving(&members);
    }

    /// Takes no more work: wakes every waiter with `reason` and returns the idle workers.
    pub(super) fn close(&self, reason: &str) -> Vec<W> {
        let mut members = self.members.lock();
        members.live.clear();
        self.line.close(reason)
    }

    /// The pids of the live workers.
    pub(super) fn members(&self) -> Vec<u32> {
        self.members
            .lock()
            .live
            .iter()
            .map(|&(pid, _)| pid)
            .collect()
    }

    /// How many workers are idle right now.
    pub(super) fn idle(&self) -> usize {
        self.line.idle()
    }

    /// How many callers wait for a worker right now.
    pub(super) fn waiting(&self) -> usize {
        self.line.waiting()
    }

    fn refuse_if_starving(&self, members: &Members) {
        let Some(why) = &members.starved else {
            return;
        };
        if members.live.is_empty() {
            self.line.refuse(Some(format!(
                "the subprocess pool has no worker process and could not start one ({why}); \
                 it keeps retrying in the background"
            )));
        } else if !members.live.iter().any(|&(_, lane)| lane == Lane::Regular) {
            // Only express workers are left, and they take short work only.
            self.line.refuse_long(Some(format!(
                "the subprocess pool has only express workers, which take short work only, and \
                 could not start a regular one ({why}); it keeps retrying in the background"
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, mpsc};
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    const BOUND: Duration = Duration::from_secs(10);
    const ANY: Ticket = Ticket {
        rank: 0,
        express: false,
    };
    const SHORT: Ticket = Ticket {
        rank: 0,
        express: true,
    };

    /// Queues one caller and waits until it is in line.
    fn queue_caller(
        dispatch: &Arc<Dispatch<u32>>,
    ) -> mpsc::Receiver<Result<(u32, Lane), WorkError>> {
        let (done, result) = mpsc::channel();
        let shared = Arc::clone(dispatch);
        let before = dispatch.waiting();
        thread::spawn(move || {
            let _ = done.send(shared.checkout(ANY));
        });
        let deadline = Instant::now() + BOUND;
        while dispatch.waiting() == before {
            assert!(Instant::now() < deadline, "the caller never queued");
            thread::yield_now();
        }
        result
    }

    #[test]
    fn the_first_workers_fill_the_express_lane_and_replacements_keep_the_shape() {
        let dispatch = Dispatch::new(1, None);
        dispatch.admit(1, 1);
        dispatch.admit(2, 2);
        assert_eq!(dispatch.checkout(ANY).unwrap(), (2, Lane::Regular));
        assert_eq!(dispatch.checkout(SHORT).unwrap(), (1, Lane::Express));
        dispatch.remove(1);
        dispatch.admit(3, 3);
        assert_eq!(dispatch.checkout(SHORT).unwrap(), (3, Lane::Express));
        assert_eq!(dispatch.members(), vec![2, 3]);
    }

    #[test]
    fn a_pool_without_workers_fails_waiters_once_starting_fails() {
        let dispatch = Arc::new(Dispatch::<u32>::new(0, None));
        let first = queue_caller(&dispatch);
        let second = queue_caller(&dispatch);
        dispatch.starve("no such program".to_owned());
        for result in [first, second] {
            let error = result.recv_timeout(BOUND).unwrap().unwrap_err();
            assert!(error.to_string().contains("no such program"), "{error}");
        }
        assert!(
            dispatch.checkout(ANY).is_err(),
            "later callers fail fast too"
        );
        dispatch.admit(3, 3);
        assert_eq!(dispatch.checkout(ANY).unwrap(), (3, Lane::Regular));
    }

    #[test]
    fn losing_the_last_worker_while_starving_fails_the_waiters() {
        let dispatch = Arc::new(Dispatch::new(0, None));
        dispatch.admit(4, 4);
        let _busy = dispatch.checkout(ANY).unwrap();
        dispatch.starve("the program is gone".to_owned());
        let waiting = queue_caller(&dispatch);
        dispatch.remove(4);
        let error = waiting.recv_timeout(BOUND).unwrap().unwrap_err();
        assert!(error.to_string().contains("the program is gone"), "{error}");
    }

    #[test]
    fn with_only_express_workers_left_long_work_fails_once_starting_fails() {
        let dispatch = Arc::new(Dispatch::new(1, None));
        dispatch.admit(1, 1); // express
        dispatch.admit(2, 2); // regular
        let _regular = dispatch.checkout(ANY).unwrap();
        let waiting = queue_caller(&dispatch);
        dispatch.remove(2);
        dispatch.starve("the program is gone".to_owned());
        let error = waiting.recv_timeout(BOUND).unwrap().unwrap_err();
        assert!(
            error.to_string().contains("only express workers"),
            "{error}"
        );
        assert!(
            dispatch.checkout(ANY).is_err(),
            "later long work fails fast too"
        );
        assert_eq!(dispatch.checkout(SHORT).unwrap(), (1, Lane::Express));
        dispatch.admit(3, 3);
        assert_eq!(dispatch.checkout(ANY).unwrap(), (3, Lane::Regular));
    }

    #[test]
    fn closing_returns_the_idle_workers_of_both_lanes() {
        let dispatch = Dispatch::new(1, None);
        dispatch.admit(2, 2);
        dispatch.admit(3, 3);
        let mut idle = dispatch.close("done");
        idle.sort();
        assert_eq!(idle, vec![2, 3]);
        assert!(dispatch.members().is_empty());
        assert!(dispatch.checkout(SHORT).is_err());
    }
}
