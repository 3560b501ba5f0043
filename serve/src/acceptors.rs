//! The acceptors' handles, by id: each acceptor is a handler that accepts a connection,
//! serves it and goes back to accepting (see [`super::accept`]). The table of connections
//! keeps them, so that the watcher can cancel the acceptor serving a connection whose peer
//! left (see [`super::state::ConnectionState::let_go`] for how that cancellation never reaches
//! the acceptor's next connection).

use ythread::JoinHandle;

/// An acceptor's place in [`Acceptors`].
pub(crate) type AcceptorId = usize;

enum Entry {
    Free,
    /// Reserved for an acceptor being started; its handle is not in yet.
    Starting,
    Running(JoinHandle<()>),
}

#[derive(Default)]
pub(crate) struct Acceptors {
    entries: Vec<Entry>,
    free: Vec<AcceptorId>,
    /// Acceptors that said they ended, to be joined once their outcome is out.
    ended: Vec<AcceptorId>,
    live: usize,
}

impl Acceptors {
    /// An id for an acceptor about to be started.
    pub(crate) fn reserve(&mut self) -> AcceptorId {
        self.live += 1;
        match self.free.pop() {
            Some(id) => {
                self.entries[id] = Entry::Starting;
                id
            }
            None => {
                self.entries.push(Entry::Starting);
                self.entries.len() - 1
            }
        }
    }

    /// Records the handle of acceptor `id`; gives it back if the stop drained the table
    /// since the id was reserved.
    pub(crate) fn started(
        &mut self,
        id: AcceptorId,
        handle: JoinHandle<()>,
    ) -> Option<JoinHandle<()>> {
        match self.entries.get_mut(id) {
            Some(entry @ Entry::Starting) => {
                *entry = Entry::Running(handle);
                None
            }
            _ => Some(handle),
        }
    }

    /// The acceptor could not be started: its id is free again.
    pub(crate) fn never_started(&mut self, id: AcceptorId) {
        if let Some(entry @ Entry::Starting) = self.entries.get_mut(id) {
            *entry = Entry::Free;
            self.free.push(id);
            self.live -= 1;
        }
    }

    /// Said by the acceptor itself as it returns (or unwinds).
    pub(crate) fn ended(&mut self, id: AcceptorId) {
        self.ended.push(id);
    }

    /// Acceptors started and not yet collected.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    pub(crate) fn cancel(&self, id: AcceptorId) {
        if let Some(Entry::Running(handle)) = self.entries.get(id) {
            handle.cancel();
        }
    }

    /// Joins the acceptors that ended and whose outcome is out; the others are kept for later.
    pub(crate) fn collect(&mut self, report: &impl Fn(Result<(), ythread::Error>)) {
        let mut pending = Vec::new();
        for id in std::mem::take(&mut self.ended) {
            let Some(entry) = self.entries.get_mut(id) else {
                continue;
            };
            match std::mem::replace(entry, Entry::Free) {
                Entry::Running(handle) if handle.is_finished() => {
                    report(handle.join());
                    self.free.push(id);
                    self.live -= 1;
                }
                Entry::Free => {}
                unfinished => {
                    *entry = unfinished;
                    pending.push(id);
                }
            }
        }
        self.ended = pending;
    }

    /// Every running acceptor's handle, for the stop.
    pub(crate) fn drain(&mut self) -> Vec<JoinHandle<()>> {
        self.ended.clear();
        self.free.clear();
        self.live = 0;
        std::mem::take(&mut self.entries)
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Running(handle) => Some(handle),
                Entry::Free | Entry::Starting => None,
            })
            .collect()
    }
}
