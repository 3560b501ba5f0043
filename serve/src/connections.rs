//! The live connections, and the little state each handler shares with the watcher.
//!
//! One lock guards the table; acceptors take it to admit a connection, the watcher (and an
//! acceptor helping it) for each event it handles, nobody across I/O or work. Each slot holds
//! the connection's [`ConnectionState`], a *weak* reference to its socket, and who serves it: the
//! id (in [`Acceptors`]) of the acceptor or handler serving its turns, or nobody while it rests.
//! The one serving it owns the only strong reference to the socket, so the socket closes the
//! moment it is dropped, with no duplicate descriptor and no wait for the watcher. What flows
//! back to the watcher is one counter (connections open now) and short queues of connections
//! that ended or were handed back to rest, each touched once per connection: the work per
//! connection stays constant however many are open.
//!
//! At the cap, the newcomer takes the place of the connection *idle longest*: the idlest of
//! [`SHED_SAMPLE`] slots drawn at random (approximate, O(1), like Redis's sampled LRU), if it
//! has been idle at least [`DEFAULT_SHED_IDLE_AFTER`](crate::DEFAULT_SHED_IDLE_AFTER) (configurable; shedding can be turned
//! off). Shedding an idle client keeps a server full of parked or trickling connections open
//! to new ones; a connection in the middle of a request is never shed, and a newcomer finds
//! no place only when every sampled connection is busy or just arrived. The shed client gets an `error: server busy` line and end-of-stream.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::lock::Mutex;
use ythread::JoinHandle;

use super::acceptors::{AcceptorId, Acceptors};
use super::connection::InputBuffer;
use super::state::ConnectionState;
use super::sys::Poller;

/// How many slots are sampled to find the connection idle longest.
pub const SHED_SAMPLE: usize = 16;

/// What every handler shares with the watcher: how many connections are open, which
/// have ended, which have been handed back to rest, and the poller that watches them.
#[derive(Debug)]
pub(crate) struct Shared {
    open: AtomicUsize,
    ended: Mutex<Vec<Key>>,
    pub(crate) resting: Mutex<HandedBack>,
    pub(crate) poller: Arc<Poller>,
}

/// Connections handed back to rest, not yet in their slots.
#[derive(Debug, Default)]
pub(crate) struct HandedBack {
    pub(crate) connections: Vec<Admitted>,
    /// Set when the stop has drained the table: a connection handed back closes instead.
    pub(crate) closed: bool,
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
/// socket) tells the watcher the connection is over.
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
    /// Input read past the last turn's request, for the next turn.
    pub(crate) input: InputBuffer,
    pub(crate) departure: Departure,
}

impl Admitted {
    /// Ends the connection: it is no candidate for shedding, its socket closes, and the
    /// watcher hears of the end.
    pub(crate) fn close(self) {
        self.state.end();
        drop(self);
    }
}

struct Tracked {
    /// The thread that serves (or last served) the connection's turns: the acceptor that
    /// accepted it, then the one that took it for each turn after a rest. It serves it until it
    /// lets go (see [`ConnectionState::let_go`]).
    server: AcceptorId,
    state: Arc<ConnectionState>,
    socket: Weak<TcpStream>,
    /// The connection while it rests, and when its rest runs out.
    resting: Option<(Admitted, Instant)>,
}

struct Slot {
    generation: u32,
    tracked: Option<Tracked>,
}

/// What a stop has to finish: see [`Connections::drain`].
pub(crate) struct Drained {
    pub(crate) handlers: Vec<JoinHandle<()>>,
    pub(crate) sockets: Vec<Weak<TcpStream>>,
}

/// The table of live connections.
pub(crate) struct Connections {
    shared: Arc<Shared>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    pub(crate) acceptors: Acceptors,
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
            acceptors: Acceptors::default(),
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

    /// Takes a slot for `socket`, which acceptor `acceptor` serves.
    pub(crate) fn admit(&mut self, socket: TcpStream, acceptor: AcceptorId) -> Admitted {
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
            server: acceptor,
            state: Arc::clone(&state),
            socket: Arc::downgrade(&socket),
            resting: None,
        });
        self.shared.open.fetch_add(1, Ordering::SeqCst);
        Admitted {
            key,
            socket,
            state,
            input: InputBuffer::default(),
            departure: Departure {
                shared: Arc::clone(&self.shared),
                key,
            },
        }
    }

    /// Thread `server` serves the turns of `key`, woken from its rest, from now on: a
    /// departure cancels it (until it lets go). A departure seen since the wake found nobody
    /// to cancel; the turn sees it when its work begins.
    pub(crate) fn serve_by(&mut self, key: Key, server: AcceptorId) {
        if let Some(tracked) = self.tracked_mut(key) {
            tracked.server = server;
            tracked.state.served();
        }
    }

    /// Moves the connections handed back to rest into their slots; each rests for up to
    /// `idle_for`.
    pub(crate) fn take_resting(&mut self, idle_for: Duration) {
        let handed_back = std::mem::take(&mut self.shared.resting.lock().connections);
        for admitted in handed_back {
            let key = admitted.key;
            let until = Instant::now() + idle_for;
            if let Some(tracked) = self.tracked_mut(key) {
                tracked.resting = Some((admitted, until));
                self.rest_deadlines.push_back((until, key));
            }
        }
        // Most rests end long before their deadline (the client closes or asks again), and
        // their entries would wait a whole idle timeout to be popped: at thousands of
        // connections a second, many megabytes. Each slot has at most one live entry, so once
        // the queue is twice the table, drop the stale ones; that costs O(1) per rest.
        if self.rest_deadlines.len() > 2 * self.slots.len() + 64 {
            let slots = &self.slots;
            self.rest_deadlines.retain(|&(until, key)| {
                slots.get(key.index as usize).is_some_and(|slot| {
                    slot.generation == key.generation
                        && slot.tracked.as_ref().is_some_and(|tracked| {
                            tracked
                                .resting
                                .as_ref()
                                .is_some_and(|(_, own)| *own == until)
                        })
                })
            });
        }
    }

    /// The connection `key` and the end of its rest, if it is resting, taken out of its slot.
    pub(crate) fn wake(&mut self, key: Key) -> Option<(Admitted, Instant)> {
        self.tracked_mut(key)?.resting.take()
    }

    /// Puts a connection taken by [`Connections::wake`] back to rest, until the same deadline.
    ///
    /// Its deadline's entry may have been popped while it was out of its slot: if the
    /// deadline has passed, a new entry at the front has it closed on the next sweep.
    pub(crate) fn rest_again(&mut self, admitted: Admitted, until: Instant) {
        let key = admitted.key;
        if let Some(tracked) = self.tracked_mut(key) {
            tracked.resting = Some((admitted, until));
            if until <= Instant::now() {
                self.rest_deadlines.push_front((until, key));
            }
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
        let Some(tracked) = self.tracked_mut(key) else {
            return;
        };
        if !tracked.state.peer_left() {
            return;
        }
        if tracked.state.claim_cancel() {
            let server = tracked.server;
            self.acceptors.cancel(server);
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

    /// Joins the serving threads that have ended and frees the slots of the connections that
    /// have.
    pub(crate) fn collect_ended(&mut self, report: impl Fn(Result<(), ythread::Error>)) {
        self.acceptors.collect(&report);
        let ended = std::mem::take(&mut *self.shared.ended.lock());
        for key in ended {
            let Some(slot) = self.slots.get_mut(key.index as usize) else {
                continue;
            };
            if slot.generation != key.generation || slot.tracked.is_none() {
                continue;
            }
            slot.tracked = None;
            slot.generation = slot.generation.wrapping_add(1);
            self.free.push(key.index);
        }
    }

    /// Every handler and acceptor, and every open connection's socket (while its handler has
    /// it open), for the stop. Resting connections close here.
    pub(crate) fn drain(&mut self) -> Drained {
        let handed_back = {
            let mut resting = self.shared.resting.lock();
            resting.closed = true;
            std::mem::take(&mut resting.connections)
        };
        for admitted in handed_back {
            admitted.close();
        }
        let handlers = self.acceptors.drain();
        let mut sockets = Vec::new();
        for tracked in self.slots.iter_mut().filter_map(|slot| slot.tracked.take()) {
            if let Some((admitted, _)) = tracked.resting {
                admitted.close();
            }
            sockets.push(tracked.socket);
        }
        Drained { handlers, sockets }
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
