//! The live connections as the accept loop tracks them, and the little state each handler
//! shares with it.
//!
//! The accept thread alone owns the table, so it needs no lock: each slot holds a handler's
//! [`JoinHandle`], its [`ConnectionState`] and a *weak* reference to its socket. The handler
//! owns the only strong reference, so the socket closes the moment the handler drops it, with
//! no duplicate descriptor and no wait for the accept loop. What flows back to the accept
//! thread is one counter (connections open now) and a short queue of slots whose handlers
//! ended, both touched once per connection: the loop's work per connection stays constant
//! however many are open.
//!
//! At the cap, the newcomer takes the place of the connection *idle longest*: the idlest of
//! [`SHED_SAMPLE`] slots drawn at random (approximate, O(1), like Redis's sampled LRU), if it
//! has been idle at least [`DEFAULT_SHED_IDLE_AFTER`] (configurable; shedding can be turned off). Shedding an idle client keeps a server full of
//! parked or trickling connections open to new ones; a connection in the middle of a request
//! is never shed, and a newcomer finds no place only when every sampled connection is busy or
//! just arrived. The shed client gets an `error: server busy` line and end-of-stream.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ythread::JoinHandle;

use super::sys::Poller;

/// How many slots the accept loop samples to find the connection idle longest.
pub const SHED_SAMPLE: usize = 16;

/// By default a connection idle for less than this is never shed. A client's first request
/// leaves with the last packet of its handshake, so a real client is busy within a moment of
/// being accepted, whatever the network's round trip; one that sent nothing for 100 ms is
/// holding a place without using it. Much longer, and a steady flood keeps every place
/// younger than the threshold, so newcomers are refused instead of making room.
pub const DEFAULT_SHED_IDLE_AFTER: Duration = Duration::from_millis(100);

/// What a handler's connection is doing, as the accept loop sees it.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    /// Milliseconds since `epoch` at which the connection went idle, or [`BUSY`] or [`SHED`].
    phase: AtomicU64,
    /// Set by the accept loop when the peer closed its side or reset the connection.
    peer_gone: AtomicBool,
    epoch: Instant,
}

const BUSY: u64 = u64::MAX;
const SHED: u64 = u64::MAX - 1;

impl ConnectionState {
    fn new(epoch: Instant) -> Self {
        let state = ConnectionState {
            phase: AtomicU64::new(0),
            peer_gone: AtomicBool::new(false),
            epoch,
        };
        state.wait_for_request();
        state
    }

    fn millis_now(&self) -> u64 {
        // Far below `SHED` for any server that runs less than half a billion years.
        self.epoch.elapsed().as_millis() as u64
    }

    /// The handler waits for the next request: the connection may be shed from now on.
    pub(crate) fn wait_for_request(&self) {
        self.phase.store(self.millis_now(), Ordering::SeqCst);
    }

    /// The handler has a request: claims the connection so it is no longer shed. `false` if
    /// it was shed first, or if the client has already gone (its request is dropped unread).
    pub(crate) fn begin_request(&self) -> bool {
        let idle_since = self.phase.load(Ordering::SeqCst);
        if idle_since == SHED
            || self
                .phase
                .compare_exchange(idle_since, BUSY, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return false;
        }
        // Pairs with `peer_left`: either this load sees the flag, or the accept loop sees
        // `BUSY` and cancels the handler. Both may happen; neither is missed.
        !self.peer_gone.load(Ordering::SeqCst)
    }

    /// The handler is done with the connection: it is no candidate for shedding any more.
    pub(crate) fn end(&self) {
        self.phase.store(BUSY, Ordering::SeqCst);
    }

    /// The accept loop saw the peer leave. Returns whether a request is in progress (its work
    /// should be cancelled).
    fn peer_left(&self) -> bool {
        self.peer_gone.store(true, Ordering::SeqCst);
        self.phase.load(Ordering::SeqCst) == BUSY
    }

    /// How long the connection has been idle, if it is.
    fn idle_for(&self) -> Option<(u64, Duration)> {
        match self.phase.load(Ordering::SeqCst) {
            BUSY | SHED => None,
            since => Some((
                since,
                Duration::from_millis(self.millis_now().saturating_sub(since)),
            )),
        }
    }

    /// Marks the connection shed if it is still idle since `since`.
    fn shed(&self, since: u64) -> bool {
        self.phase
            .compare_exchange(since, SHED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// What every handler shares with the accept loop: how many connections are open, which
/// have ended, which have been handed back to rest, and the poller that watches them.
#[derive(Debug)]
pub(crate) struct Shared {
    open: AtomicUsize,
    ended: Mutex<Vec<Key>>,
    pub(crate) resting: Mutex<Vec<Admitted>>,
    pub(crate) poller: Arc<Poller>,
}

/// A slot index and the generation of its occupant, so that a late event or report about a
/// connection that has gone never reaches the one that took its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

impl Key {
    pub(crate) fn to_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    pub(crate) fn from_u64(raw: u64) -> Key {
        Key {
            index: raw as u32,
            generation: (raw >> 32) as u32,
        }
    }
}

/// Held by a handler for its whole life; dropping it (after the handler has dropped its
/// socket) tells the accept loop the connection is over.
#[derive(Debug)]
pub(crate) struct Departure {
    pub(crate) shared: Arc<Shared>,
    key: Key,
}

impl Drop for Departure {
    fn drop(&mut self) {
        self.shared.open.fetch_sub(1, Ordering::SeqCst);
        self.shared.ended.lock().push(self.key);
    }
}

/// What a handler needs from the table: its socket, its state and its departure guard. A
/// connection that rests between requests is this, parked in its slot.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) key: Key,
    // Declared before `departure`, so that the socket closes before the end is reported.
    pub(crate) socket: Arc<TcpStream>,
    pub(crate) state: Arc<ConnectionState>,
    /// Whether the handler may hand the connection back to rest after its first request;
    /// one that came back from resting keeps its handler (see [`super::resting`]).
    pub(crate) may_rest: bool,
    pub(crate) departure: Departure,
}

impl Admitted {
    /// Ends the connection: it is no candidate for shedding, its socket closes, and the
    /// accept loop hears of the end.
    pub(crate) fn close(self) {
        self.state.end();
        drop(self);
    }
}

struct Tracked {
    handler: Option<JoinHandle<()>>,
    state: Arc<ConnectionState>,
    socket: Weak<TcpStream>,
    /// The connection while it rests, and when its rest runs out.
    resting: Option<(Admitted, Instant)>,
}

struct Slot {
    generation: u32,
    tracked: Option<Tracked>,
}

/// The accept thread's table of live connections.
pub(crate) struct Connections {
    shared: Arc<Shared>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Slots whose handler ended but whose outcome is not yet published.
    ending: Vec<Key>,
    /// Handlers that handed their connection back to rest, to be joined once finished.
    retiring: Vec<JoinHandle<()>>,
    /// When each resting connection's rest runs out, earliest first (every rest is one idle
    /// timeout long); entries for connections that have since woken are skipped.
    rest_deadlines: VecDeque<(Instant, Key)>,
    epoch: Instant,
    random: u64,
}

impl Connections {
    pub(crate) fn new(poller: Arc<Poller>) -> Self {
        let epoch = Instant::now();
        Connections {
            shared: Arc::new(Shared {
                open: AtomicUsize::new(0),
                ended: Mutex::default(),
                resting: Mutex::default(),
                poller,
            }),
            slots: Vec::new(),
            free: Vec::new(),
            ending: Vec::new(),
            retiring: Vec::new(),
            rest_deadlines: VecDeque::new(),
            epoch,
            // Any odd seed will do: the sample needs spread, not secrecy.
            random: u64::from(epoch.elapsed().subsec_nanos()) | 1,
        }
    }

    /// Connections open now (their handlers have not ended).
    pub(crate) fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Takes a slot for `socket`; [`Connections::started`] then records its handler.
    pub(crate) fn admit(&mut self, socket: TcpStream) -> Admitted {
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot {
                generation: 0,
                tracked: None,
            });
            u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 connections")
        });
        let slot = &mut self.slots[index as usize];
        let key = Key {
            index,
            generation: slot.generation,
        };
        let socket = Arc::new(socket);
        let state = Arc::new(ConnectionState::new(self.epoch));
        slot.tracked = Some(Tracked {
            handler: None,
            state: Arc::clone(&state),
            socket: Arc::downgrade(&socket),
            resting: None,
        });
        self.shared.open.fetch_add(1, Ordering::SeqCst);
        Admitted {
            key,
            socket,
            state,
            may_rest: true,
            departure: Departure {
                shared: Arc::clone(&self.shared),
                key,
            },
        }
    }

    /// Records the handler of an admitted connection, or of one woken from its rest.
    pub(crate) fn started(&mut self, key: Key, handler: JoinHandle<()>) {
        if let Some(tracked) = self.tracked_mut(key)
            && let Some(previous) = tracked.handler.replace(handler)
        {
            self.retiring.push(previous);
        }
    }

    /// Moves the connections handed back to rest into their slots; each rests for up to
    /// `idle_for`.
    pub(crate) fn take_resting(&mut self, idle_for: Duration) {
        let handed_back = std::mem::take(&mut *self.shared.resting.lock());
        for admitted in handed_back {
            let key = admitted.key;
            let until = Instant::now() + idle_for;
            if let Some(tracked) = self.tracked_mut(key) {
                tracked.resting = Some((admitted, until));
                self.rest_deadlines.push_back((until, key));
            }
        }
    }

    /// The connection `key` and the end of its rest, if it is resting, taken out of its slot.
    pub(crate) fn wake(&mut self, key: Key) -> Option<(Admitted, Instant)> {
        self.tracked_mut(key)?.resting.take()
    }

    /// Puts a connection taken by [`Connections::wake`] back to rest, until the same deadline.
    pub(crate) fn rest_again(&mut self, admitted: Admitted, until: Instant) {
        if let Some(tracked) = self.tracked_mut(admitted.key) {
            tracked.resting = Some((admitted, until));
        }
    }

    /// When the earliest rest runs out, if any connection rests.
    pub(crate) fn next_rest_deadline(&self) -> Option<Instant> {
        self.rest_deadlines.front().map(|&(until, _)| until)
    }

    /// Takes the resting connections whose rest ran out by `now`.
    pub(crate) fn rested_too_long(&mut self, now: Instant) -> Vec<Admitted> {
        let mut expired = Vec::new();
        while let Some(&(until, key)) = self.rest_deadlines.front() {
            if until > now {
                break;
            }
            self.rest_deadlines.pop_front();
            if let Some(tracked) = self.tracked_mut(key)
                && tracked
                    .resting
                    .as_ref()
                    .is_some_and(|(_, own)| *own == until)
                && let Some((admitted, _)) = tracked.resting.take()
            {
                expired.push(admitted);
            }
        }
        expired
    }

    /// The peer of `key` closed or reset its connection: cancels the handler if it is in the
    /// middle of a request, so that work nobody will read is dropped.
    pub(crate) fn peer_left(&mut self, key: Key) {
        if let Some(tracked) = self.tracked_mut(key)
            && tracked.state.peer_left()
            && let Some(handler) = &tracked.handler
        {
            handler.cancel();
        }
    }

    /// Finds the connection idle longest (see the module docs) and marks it shed; returns
    /// its socket, for the busy line and the shutdown.
    pub(crate) fn shed_idlest(&mut self, idle_at_least: Duration) -> Option<Arc<TcpStream>> {
        if self.slots.is_empty() {
            return None;
        }
        let slots = self.slots.len() as u64;
        let picks: [usize; SHED_SAMPLE] =
            std::array::from_fn(|_| (self.next_random() % slots) as usize);
        let mut idlest: Option<(usize, u64, Duration)> = None;
        for index in picks {
            let Some(tracked) = &self.slots[index].tracked else {
                continue;
            };
            if let Some((since, idle)) = tracked.state.idle_for()
                && idle >= idle_at_least
                && idlest.is_none_or(|(_, _, longest)| idle > longest)
            {
                idlest = Some((index, since, idle));
            }
        }
        let (index, since, _) = idlest?;
        let tracked = self.slots[index].tracked.as_mut()?;
        let socket = tracked.socket.upgrade()?;
        if !tracked.state.shed(since) {
            return None;
        }
        // A resting connection has no handler to notice: it ends here (its socket closes
        // when the caller is done with it).
        if let Some((admitted, _)) = tracked.resting.take() {
            admitted.close();
        }
        Some(socket)
    }

    /// Joins the handlers that have ended and frees their slots.
    pub(crate) fn collect_ended(&mut self, report: impl Fn(Result<(), ythread::Error>)) {
        for handler in self
            .retiring
            .extract_if(.., |handler| handler.is_finished())
        {
            report(handler.join());
        }
        let mut ended = std::mem::take(&mut *self.shared.ended.lock());
        ended.append(&mut self.ending);
        for key in ended {
            let Some(slot) = self.slots.get_mut(key.index as usize) else {
                continue;
            };
            let Some(tracked) = slot.tracked.as_mut() else {
                continue;
            };
            match tracked.handler.as_ref() {
                // The handler reports its end a moment before its outcome is published.
                Some(handler) if !handler.is_finished() => {
                    self.ending.push(key);
                    continue;
                }
                Some(_) => {
                    if let Some(handler) = tracked.handler.take() {
                        report(handler.join());
                    }
                }
                // Never started: the slot was given back without a handler.
                None => {}
            }
            slot.tracked = None;
            slot.generation = slot.generation.wrapping_add(1);
            self.free.push(key.index);
        }
    }

    /// Every tracked connection's handler and socket (while its handler has it open), for
    /// the stop.
    /// Resting connections close here.
    pub(crate) fn drain(&mut self) -> Vec<(JoinHandle<()>, Weak<TcpStream>)> {
        let retiring = self
            .retiring
            .drain(..)
            .map(|handler| (handler, Weak::new()));
        let tracked = self.slots.iter_mut().filter_map(|slot| slot.tracked.take());
        let handlers = tracked.filter_map(|tracked| {
            if let Some((admitted, _)) = tracked.resting {
                admitted.close();
            }
            Some((tracked.handler?, tracked.socket))
        });
        retiring.chain(handlers).collect()
    }

    fn tracked_mut(&mut self, key: Key) -> Option<&mut Tracked> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.tracked.as_mut()
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: fast, and plenty for picking sample slots.
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.open())
            .field("slots", &self.slots.len())
            .finish()
    }
}
