//! The caller's side of the broker: one reply subscription for all jobs, routed to the
//! handler threads that wait for them.
//!
//! Every job's reply subject is `INBOX.ID` under one wildcard subscription, as async-nats does
//! for its own requests, so a job costs no subscription of its own. The routing task looks the
//! `ID` up and hands the message to the waiting handler thread over that thread's channel. It
//! also hears "room again" from nodes (waking the jobs that were turned away) and the
//! connection's loss (failing every job in flight at once, rather than at its deadline).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;

use async_nats::{Message, StatusCode};
use bytes::Bytes;
use parking_lot::Mutex;

/// What reaches a waiting handler thread, with the job id it is for.
pub(crate) enum Incoming {
    /// A message from a node (taken, busy, or the reply).
    Message(Bytes),
    /// The broker says nobody listens on the job's subject.
    NoResponders,
    /// A node that turned jobs away has room again: its subject token.
    Room(Bytes),
    /// The connection to the broker dropped while the job was in flight.
    ConnectionLost,
    /// The handler was cancelled.
    Cancelled,
}

/// A waiting thread's channel: `(job id, what arrived)`.
pub(crate) type Line = Sender<(u64, Incoming)>;

/// The routing table, shared by the handler threads and the routing task.
#[derive(Default)]
pub(crate) struct Routes {
    table: Mutex<Table>,
    connected: AtomicBool,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Table {
    waiting: HashMap<u64, Line>,
    /// Jobs turned away by a busy node, waiting for "room again", oldest first.
    want_room: VecDeque<u64>,
    /// How many "room again" messages have arrived: a job compares it with the value when it
    /// was sent, so a message that came in between is not missed.
    rooms: u64,
}

impl Routes {
    pub(crate) fn new() -> Arc<Self> {
        let routes = Routes::default();
        routes.connected.store(true, Ordering::Relaxed);
        Arc::new(routes)
    }

    /// Whether the client is connected to the broker right now.
    pub(crate) fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Registers a job that waits on `line`; returns its id and the "room again" count.
    pub(crate) fn register(&self, line: &Line) -> (u64, u64) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut table = self.table.lock();
        table.waiting.insert(id, line.clone());
        (id, table.rooms)
    }

    /// Forgets the job `id`: messages for it from now on are dropped.
    pub(crate) fn unregister(&self, id: u64) {
        let mut table = self.table.lock();
        table.waiting.remove(&id);
        table.want_room.retain(|&waiting| waiting != id);
    }

    /// The job `id`, turned away, waits for "room again". Returns false if one arrived since
    /// the job was sent (`rooms_then`): send it again at once.
    pub(crate) fn wait_for_room(&self, id: u64, rooms_then: u64) -> bool {
        let mut table = self.table.lock();
        if table.rooms != rooms_then {
            return false;
        }
        table.want_room.push_back(id);
        true
    }

    /// Routes a message on the reply subscription; the last subject token is the job id.
    pub(crate) fn route(&self, message: Message) {
        let Some(id) = message
            .subject
            .rsplit('.')
            .next()
            .and_then(|id| id.parse::<u64>().ok())
        else {
            return;
        };
        let incoming = if message.status == Some(StatusCode::NO_RESPONDERS) {
            Incoming::NoResponders
        } else {
            Incoming::Message(message.payload)
        };
        if let Some(line) = self.table.lock().waiting.get(&id) {
            let _ = line.send((id, incoming));
        }
    }

    /// The node `node` has room for one more job: wake the job that has waited longest,
    /// which sends itself to that node. One at a time: waking every waiting job would send
    /// them all, for one of them to get the room and the rest to be turned away again.
    pub(crate) fn room(&self, node: Bytes) {
        let mut table = self.table.lock();
        table.rooms += 1;
        while let Some(id) = table.want_room.pop_front() {
            if let Some(line) = table.waiting.get(&id) {
                let _ = line.send((id, Incoming::Room(node)));
                return;
            }
        }
    }

    /// The connection dropped: every job in flight has lost its reply.
    pub(crate) fn lost(&self) {
        self.connected.store(false, Ordering::Relaxed);
        let table = self.table.lock();
        for (&id, line) in &table.waiting {
            let _ = line.send((id, Incoming::ConnectionLost));
        }
    }

    /// The connection is back.
    pub(crate) fn reconnected(&self) {
        self.connected.store(true, Ordering::Relaxed);
    }
}
