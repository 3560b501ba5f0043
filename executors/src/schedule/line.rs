//! The waiting line every pooled strategy shares: N resources, and callers waiting for one.
//!
//! A resource is whatever a piece of work needs to run: a permit to use one of a rayon pool's
//! threads, the exclusive lock's one turn, a worker process. A caller takes an idle resource if
//! there is one it may use; otherwise it waits, and a resource coming back goes *directly* to
//! the waiter whose turn it is, never back to the idle set while an eligible caller waits. So
//! nobody barges, and the line alone decides the order.
//!
//! Whose turn it is: the waiter with the lowest rank (the predicted cost; the same for all
//! under `order=fifo`), the earliest arrival among equals. That is shortest-predicted-first,
//! which minimises the mean wait when predictions are right. Long work cannot starve: every
//! time a later arrival is served before a waiter, the waiter counts one overtake, and a
//! waiter overtaken [`MAX_OVERTAKES`] times is served before anyone who has not been. So a
//! piece of work waits at most for what was ahead of it when it arrived, plus
//! [`MAX_OVERTAKES`] later pieces that were predicted cheaper than itself.
//!
//! Resources are in one of two lanes. Regular ones serve anyone; express ones serve only
//! callers whose ticket says their work is predicted short, so short work always finds a
//! resource that heavy work cannot hold. A caller gets the lane it was served from and must
//! give the resource back to that lane.
//!
//! Waiting is bounded by more than the work ahead: when the line is closed, or refuses callers
//! (a pool that has no worker and cannot start one), every waiter is woken with an error.
//! Choosing the next waiter scans the waiters, so a hand-off costs O(waiters) under the lock:
//! fine for the hundreds of handler threads a server has, and no allocation once warm.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use ythread::{Cancellation, Error as WorkError};

/// How many later arrivals may be served before a waiting piece of work, at most.
pub const MAX_OVERTAKES: u32 = 16;

/// Which resources a caller may use, and which one it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Serves any work.
    Regular,
    /// Serves only work predicted short.
    Express,
}

/// What a caller tells the line about its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    /// Lower goes first: the predicted nanoseconds, `u64::MAX` for unknown, 0 under fifo.
    pub(crate) rank: u64,
    /// Whether the work may use an express resource.
    pub(crate) express: bool,
}

/// The resources `W` of one strategy that are not in use, and the callers waiting for one.
pub(crate) struct Line<W> {
    state: Mutex<State<W>>,
}

struct State<W> {
    regular: Vec<W>,
    express: Vec<W>,
    waiting: Vec<Entry<W>>,
    arrivals: u64,
    /// Why the line takes no more callers, for good.
    closed: Option<String>,
    /// Why the line turns callers away for now.
    refused: Option<String>,
    /// Why the line turns away, for now, callers that may not use express resources.
    refused_long: Option<String>,
}

struct Entry<W> {
    arrival: u64,
    ticket: Ticket,
    overtaken: u32,
    waiter: Arc<Waiter<W>>,
}

/// A caller asleep until a resource (or an error) is handed to it, or its handler is
/// cancelled.
struct Waiter<W> {
    slot: Mutex<Slot<W>>,
    ready: Condvar,
}

struct Slot<W> {
    outcome: Option<Result<(W, Lane), WorkError>>,
    cancelled: bool,
}

/// Why a waiter woke up.
enum Woken<W> {
    Served(Result<(W, Lane), WorkError>),
    Cancelled,
}

impl<W> Waiter<W> {
    fn new() -> Self {
        Waiter {
            slot: Mutex::new(Slot {
                outcome: None,
                cancelled: false,
            }),
            ready: Condvar::new(),
        }
    }

    fn fulfil(&self, outcome: Result<(W, Lane), WorkError>) {
        self.slot.lock().outcome = Some(outcome);
        self.ready.notify_one();
    }

    fn cancel(&self) {
        self.slot.lock().cancelled = true;
        self.ready.notify_one();
    }

    fn wait(&self) -> Woken<W> {
        let mut slot = self.slot.lock();
        loop {
            if let Some(outcome) = slot.outcome.take() {
                return Woken::Served(outcome);
            }
            if slot.cancelled {
                return Woken::Cancelled;
            }
            self.ready.wait(&mut slot);
        }
    }
}

impl<W: Send + 'static> Line<W> {
    /// An empty line: no resources yet, nobody waiting.
    pub(crate) fn new() -> Self {
        Line {
            state: Mutex::new(State {
                regular: Vec::new(),
                express: Vec::new(),
                waiting: Vec::new(),
                arrivals: 0,
                closed: None,
                refused: None,
                refused_long: None,
            }),
        }
    }

    /// Takes a resource `ticket` may use, waiting for its turn if there is none.
    ///
    /// Idle resources are reused last-in first-out: the one that just came back is the most
    /// likely to be warm (a worker still polling for its next job, a thread not yet asleep).
    ///
    /// A caller whose handler is cancelled while it waits leaves the line at once with a
    /// `Cancelled` error; its work never runs.
    pub(crate) fn checkout(&self, ticket: Ticket) -> Result<(W, Lane), WorkError> {
        let waiter = {
            let mut state = self.state.lock();
            if let Some(reason) = &state.closed {
                return Err(WorkError::unavailable(reason.clone()));
            }
            if ticket.express
                && let Some(resource) = state.express.pop()
            {
                return Ok((resource, Lane::Express));
            }
            if let Some(resource) = state.regular.pop() {
                return Ok((resource, Lane::Regular));
            }
            if let Some(why) = &state.refused {
                return Err(WorkError::unavailable(why.clone()));
            }
            if let (false, Some(why)) = (ticket.express, &state.refused_long) {
                return Err(WorkError::unavailable(why.clone()));
            }
            let waiter = Arc::new(Waiter::new());
            let arrival = state.arrivals;
            state.arrivals += 1;
            state.waiting.push(Entry {
                arrival,
                ticket,
                overtaken: 0,
                waiter: Arc::clone(&waiter),
            });
            waiter
        };
        let cancellation = Cancellation::current();
        let _armed = cancellation.as_ref().map(|c| {
            let waiter = Arc::clone(&waiter);
            c.on_cancel(move || waiter.cancel())
        });
        match waiter.wait() {
            Woken::Served(outcome) => outcome,
            Woken::Cancelled => self.withdraw(&waiter),
        }
    }

    /// Takes a cancelled caller out of the line; if it was served meanwhile, gives the
    /// resource back (to the next waiter).
    fn withdraw(&self, waiter: &Arc<Waiter<W>>) -> Result<(W, Lane), WorkError> {
        let mut state = self.state.lock();
        let queued = state
            .waiting
            .iter()
            .position(|e| Arc::ptr_eq(&e.waiter, waiter));
        match queued {
            Some(index) => drop(state.waiting.swap_remove(index)),
            None => {
                drop(state);
                // Served under the line's lock before we took it: the outcome is in the slot.
                if let Some(Ok((resource, lane))) = waiter.slot.lock().outcome.take() {
                    self.checkin(resource, lane);
                }
            }
        }
        Err(WorkError::cancelled())
    }

    /// Gives back a resource to `lane`: to the waiter whose turn it is, or to the idle set.
    pub(crate) fn checkin(&self, resource: W, lane: Lane) {
        let mut state = self.state.lock();
        if state.closed.is_some() {
            // Nobody will take it out again: drop it now (a worker process is reaped), not
            // when the last handle to the line goes.
            drop(state);
            drop(resource);
            return;
        }
        match state.next_for(lane) {
            Some(entry) => entry.waiter.fulfil(Ok((resource, lane))),
            None => match lane {
                Lane::Regular => state.regular.push(resource),
                Lane::Express => state.express.push(resource),
            },
        }
    }

    /// Turns callers away with `why` (waking those who wait) until called again with `None`.
    pub(crate) fn refuse(&self, why: Option<String>) {
        let mut state = self.state.lock();
        if let Some(why) = &why {
            for entry in state.waiting.drain(..) {
                entry
                    .waiter
                    .fulfil(Err(WorkError::unavailable(why.clone())));
            }
        }
        state.refused = why;
    }

    /// Turns away callers that may not use express resources with `why` (waking those who
    /// wait) until called again with `None`: for when only express resources are left.
    pub(crate) fn refuse_long(&self, why: Option<String>) {
        let mut state = self.state.lock();
        if let Some(why) = &why {
            let (long, short): (Vec<_>, Vec<_>) =
                state.waiting.drain(..).partition(|e| !e.ticket.express);
            state.waiting = short;
            for entry in long {
                entry
                    .waiter
                    .fulfil(Err(WorkError::unavailable(why.clone())));
            }
        }
        state.refused_long = why;
    }

    /// Takes no more callers: wakes every waiter with `reason` and returns the idle resources.
    pub(crate) fn close(&self, reason: &str) -> Vec<W> {
        let mut state = self.state.lock();
        state.closed = Some(reason.to_owned());
        for entry in state.waiting.drain(..) {
            entry.waiter.fulfil(Err(WorkError::unavailable(reason)));
        }
        let mut idle = std::mem::take(&mut state.regular);
        idle.append(&mut state.express);
        idle
    }

    /// Takes the first idle resource, of either lane, that `matches`: for a resource found
    /// broken while nobody held it.
    pub(crate) fn take_idle(&self, mut matches: impl FnMut(&mut W) -> bool) -> Option<W> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        for idle in [&mut state.regular, &mut state.express] {
            if let Some(index) = idle.iter_mut().position(&mut matches) {
                return Some(idle.remove(index));
            }
        }
        None
    }

    /// How many callers wait right now.
    pub(crate) fn waiting(&self) -> usize {
        self.state.lock().waiting.len()
    }

    /// How many resources are idle right now.
    pub(crate) fn idle(&self) -> usize {
        let state = self.state.lock();
        state.regular.len() + state.express.len()
    }
}

impl<W> State<W> {
    /// Removes and returns the waiter a resource of `lane` goes to, counting the overtakes.
    fn next_for(&mut self, lane: Lane) -> Option<Entry<W>> {
        let eligible = |entry: &Entry<W>| lane == Lane::Regular || entry.ticket.express;
        let due = self
            .waiting
            .iter()
            .enumerate()
            .filter(|(_, e)| eligible(e) && e.overtaken >= MAX_OVERTAKES)
            .min_by_key(|(_, e)| e.arrival);
        let (index, _) = due.or_else(|| {
            self.waiting
                .iter()
                .enumerate()
                .filter(|(_, e)| eligible(e))
                .min_by_key(|(_, e)| (e.ticket.rank, e.arrival))
        })?;
        let chosen = self.waiting.swap_remove(index);
        for entry in &mut self.waiting {
            if eligible(entry) && entry.arrival < chosen.arrival {
                entry.overtaken += 1;
            }
        }
        Some(chosen)
    }
}

impl Line<()> {
    /// A line of `slots` interchangeable turns in the regular lane (a pool's threads, a lock).
    pub(crate) fn with_slots(slots: usize) -> Self {
        Self::with_lanes(slots, 0)
    }

    /// A line of `regular` turns that serve any work and `express` turns that serve only work
    /// predicted short.
    pub(crate) fn with_lanes(regular: usize, express: usize) -> Self {
        let line = Line::new();
        let mut state = line.state.lock();
        state.regular = vec![(); regular];
        state.express = vec![(); express];
        drop(state);
        line
    }

    /// Waits for a turn; the turn is given back when the permit drops, even on unwinding.
    pub(crate) fn permit(&self, ticket: Ticket) -> Result<Permit<'_>, WorkError> {
        let ((), lane) = self.checkout(ticket)?;
        Ok(Permit { line: self, lane })
    }
}

/// One turn of a [`Line<()>`], given back on drop.
pub(crate) struct Permit<'a> {
    line: &'a Line<()>,
    lane: Lane,
}

impl Permit<'_> {
    /// The lane of the turn this permit holds.
    pub(crate) fn lane(&self) -> Lane {
        self.lane
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.line.checkin((), self.lane);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    const BOUND: Duration = Duration::from_secs(10);

    fn long(rank: u64) -> Ticket {
        Ticket {
            rank,
            express: false,
        }
    }

    /// Which caller got what, in the order they were served.
    type Served = mpsc::Receiver<(usize, Result<(u32, Lane), WorkError>)>;

    fn short(rank: u64) -> Ticket {
        Ticket {
            rank,
            express: true,
        }
    }

    /// Queues one caller per ticket, each in line before the next arrives.
    fn queue(line: &Arc<Line<u32>>, tickets: &[Ticket]) -> Served {
        let (done, results) = mpsc::channel();
        for (caller, &ticket) in tickets.iter().enumerate() {
            let shared = Arc::clone(line);
            let done = done.clone();
            let before = line.waiting();
            thread::spawn(move || {
                let _ = done.send((caller, shared.checkout(ticket)));
            });
            let deadline = Instant::now() + BOUND;
            while line.waiting() == before {
                assert!(Instant::now() < deadline, "caller {caller} never queued");
                thread::yield_now();
            }
        }
        results
    }

    /// Serves the queued callers one at a time through `resource` and returns their order.
    fn serve_all(
        line: &Line<u32>,
        results: &Served,
        count: usize,
        mut resource: (u32, Lane),
    ) -> Vec<usize> {
        let mut order = Vec::new();
        for _ in 0..count {
            line.checkin(resource.0, resource.1);
            let (caller, got) = results.recv_timeout(BOUND).expect("a caller is served");
            order.push(caller);
            resource = got.unwrap();
        }
        order
    }

    fn one_resource_line() -> (Arc<Line<u32>>, (u32, Lane)) {
        let line = Arc::new(Line::new());
        line.checkin(7, Lane::Regular);
        let held = line.checkout(long(0)).unwrap();
        (line, held)
    }

    #[test]
    fn the_shortest_predicted_goes_first_and_equals_in_arrival_order() {
        let (line, held) = one_resource_line();
        let results = queue(
            &line,
            &[long(900), long(5), long(u64::MAX), long(5), long(1)],
        );
        assert_eq!(serve_all(&line, &results, 5, held), [4, 1, 3, 0, 2]);
        assert_eq!(
            line.idle(),
            0,
            "handed over, never parked while callers waited"
        );
    }

    #[test]
    fn equal_ranks_are_first_come_first_served() {
        let (line, held) = one_resource_line();
        let results = queue(&line, &[long(0), long(0), long(0)]);
        assert_eq!(serve_all(&line, &results, 3, held), [0, 1, 2]);
    }

    #[test]
    fn no_waiter_is_overtaken_more_than_the_bound() {
        let (line, held) = one_resource_line();
        let mut tickets = vec![long(u64::MAX)];
        tickets.extend(std::iter::repeat_n(long(1), 2 * MAX_OVERTAKES as usize));
        let results = queue(&line, &tickets);
        let order = serve_all(&line, &results, tickets.len(), held);
        let position = order.iter().position(|&c| c == 0).unwrap();
        assert_eq!(position, MAX_OVERTAKES as usize, "{order:?}");
    }

    #[test]
    fn express_resources_serve_only_short_work() {
        let line = Arc::new(Line::new());
        line.checkin(1, Lane::Regular);
        line.checkin(2, Lane::Express);
        assert_eq!(line.checkout(long(9)).unwrap(), (1, Lane::Regular));
        let results = queue(&line, &[long(9)]);
        assert_eq!(line.checkout(short(1)).unwrap(), (2, Lane::Express));
        let queued = queue(&line, &[short(1)]);
        line.checkin(2, Lane::Express);
        let (_, got) = queued.recv_timeout(BOUND).unwrap();
        assert_eq!(
            got.unwrap(),
            (2, Lane::Express),
            "the short waiter, not the long one"
        );
        line.checkin(1, Lane::Regular);
        let (_, got) = results.recv_timeout(BOUND).unwrap();
        assert_eq!(got.unwrap(), (1, Lane::Regular));
    }

    #[test]
    fn closing_wakes_every_waiter_and_returns_the_idle_resources() {
        let (line, _held) = one_resource_line();
        let results = queue(&line, &[long(0), short(0)]);
        assert!(line.close("closed for the test").is_empty());
        for _ in 0..2 {
            let (_, outcome) = results.recv_timeout(BOUND).unwrap();
            let error = outcome.unwrap_err();
            assert!(error.to_string().contains("closed for the test"), "{error}");
        }
        assert!(line.checkout(long(0)).is_err(), "no work after closing");

        let line = Line::new();
        line.checkin(2, Lane::Regular);
        line.checkin(3, Lane::Express);
        assert_eq!(line.close("done"), vec![2, 3]);
    }

    #[test]
    fn refusing_fails_waiters_and_later_callers_until_lifted() {
        let line = Arc::new(Line::<u32>::new());
        let results = queue(&line, &[long(0), long(0)]);
        line.refuse(Some("no such program".to_owned()));
        for _ in 0..2 {
            let (_, outcome) = results.recv_timeout(BOUND).unwrap();
            let error = outcome.unwrap_err();
            assert!(error.to_string().contains("no such program"), "{error}");
        }
        assert!(
            line.checkout(long(0)).is_err(),
            "later callers fail fast too"
        );
        line.refuse(None);
        line.checkin(3, Lane::Regular);
        assert_eq!(line.checkout(long(0)).unwrap(), (3, Lane::Regular));
    }

    #[test]
    fn a_permit_gives_its_turn_back_even_when_the_work_unwinds() {
        let line = Line::with_slots(1);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _permit = line.permit(long(0)).unwrap();
            panic!("work failed");
        }));
        assert!(unwound.is_err());
        assert_eq!(line.idle(), 1);
    }
}
