//! The handles of the threads that serve turns, by id: acceptors (each accepts a connection,
//! serves it and goes back to accepting, see [`super::accept`]) and the handlers the watcher
//! starts for woken connections (see [`super::watcher`]). Either may serve one connection
//! after another (see [`super::turns::carry_on`]), so a connection records the id of the
//! thread serving it, not a handle of its own, and the watcher cancels that thread when the
//! connection's peer leaves (see [`super::state::ConnectionState::let_go`] for how that
//! cancellation never reaches the thread's next connection).

use ythread::JoinHandle;

/// A serving thread's place in [`Acceptors`].
pub(crate) type AcceptorId = usize;

/// Whether a serving thread accepts connections (an acceptor) or only serves woken ones (a
/// handler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Acceptor,
    Handler,
}

enum Entry {
    Free,
    /// Reserved for a thread being started; its handle is not in yet.
    Starting(Kind),
    Running(JoinHandle<()>, Kind),
}

#[derive(Default)]
pub(crate) struct Acceptors {
    entries: Vec<Entry>,
    free: Vec<AcceptorId>,
    /// Threads that said they ended, to be joined once their outcome is out.
    ended: Vec<AcceptorId>,
    /// Acceptors started and not yet collected (handlers are counted by the hub).
    live: usize,
}

impl Acceptors {
    /// An id for a thread about to be started.
    pub(crate) fn reserve(&mut self, kind: Kind) -> AcceptorId {
        if kind == Kind::Acceptor {
            self.live += 1;
        }
        match self.free.pop() {
            Some(id) => {
                self.entries[id] = Entry::Starting(kind);
                id
            }
            None => {
                self.entries.push(Entry::Starting(kind));
                self.entries.len() - 1
            }
        }
    }

    /// Records the handle of thread `id`; gives it back if the stop drained the table since
    /// the id was reserved.
    pub(crate) fn started(
        &mut self,
        id: AcceptorId,
        handle: JoinHandle<()>,
    ) -> Option<JoinHandle<()>> {
        if let Some(entry) = self.entries.get_mut(id)
            && let Entry::Starting(kind) = *entry
        {
            *entry = Entry::Running(handle, kind);
            return None;
        }
        Some(handle)
    }

    /// The thread could not be started: its id is free again.
    pub(crate) fn never_started(&mut self, id: AcceptorId) {
        if let Some(entry) = self.entries.get_mut(id)
            && let Entry::Starting(kind) = *entry
        {
            *entry = Entry::Free;
            self.free.push(id);
            if kind == Kind::Acceptor {
                self.live -= 1;
            }
        }
    }

    /// Said by the thread itself as it returns (or unwinds).
    pub(crate) fn ended(&mut self, id: AcceptorId) {
        self.ended.push(id);
    }

    /// Acceptors started and not yet collected.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    pub(crate) fn cancel(&self, id: AcceptorId) {
        if let Some(Entry::Running(handle, _)) = self.entries.get(id) {
            handle.cancel();
        }
    }

    /// Joins the threads that ended and whose outcome is out; the others are kept for later.
    pub(crate) fn collect(&mut self, report: &impl Fn(Result<(), ythread::Error>)) {
        let mut pending = Vec::new();
        for id in std::mem::take(&mut self.ended) {
            let Some(entry) = self.entries.get_mut(id) else {
                continue;
            };
            match std::mem::replace(entry, Entry::Free) {
                Entry::Running(handle, kind) if handle.is_finished() => {
                    report(handle.join());
                    self.free.push(id);
                    if kind == Kind::Acceptor {
                        self.live -= 1;
                    }
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

    /// Every running thread's handle, for the stop.
    pub(crate) fn drain(&mut self) -> Vec<JoinHandle<()>> {
        self.ended.clear();
        self.free.clear();
        self.live = 0;
        std::mem::take(&mut self.entries)
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Running(handle, _) => Some(handle),
                Entry::Free | Entry::Starting(_) => None,
            })
            .collect()
    }
}
