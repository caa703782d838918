//! Turns: the requests of one layer that update the same session queue up
//! and write one at a time, in arrival order, so that a conditioned write
//! conflicts only with writers in other processes.
//!
//! Without turns, every retry of [`Session::update`](crate::Session::update)
//! races the other requests of the process again, and a request that backed
//! off comes back to a value that moved on: under enough contention it
//! starves and gives up. Each session being updated has an entry holding a
//! fair (FIFO) async mutex; the entry exists only while someone holds or
//! waits for the turn, so the map never outgrows the updates in flight.
//!
//! A request whose turn ends passes the record it wrote to the next in
//! the queue: that one loaded the session before the write, so its own
//! copy is stale, and a store's write from a stale copy costs it a wasted
//! check (a round trip, on Redis) before the full write. The record passed
//! on is a hint like any loaded one: a store checks it against what is
//! stored, so a writer in another process in between costs only the
//! check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use session_core::{Record, SessionKey};
use tokio::sync::{Mutex as Fair, OwnedMutexGuard};

/// The queue of each session some request is updating now.
#[derive(Default)]
pub(crate) struct Turns {
    entries: Mutex<HashMap<SessionKey, Entry>>,
}

/// One session's queue.
struct Entry {
    /// Held by the request whose turn it is; tokio's mutex wakes waiters in
    /// the order they came.
    turn: Arc<Fair<()>>,
    /// Requests holding or waiting for the turn: the entry goes with the
    /// last of them.
    users: usize,
    /// The record the last holder wrote, for the next one.
    written: Option<Record>,
}

/// A request's turn at a session: others wait until it is dropped.
pub(crate) struct Turn<'a> {
    // Declared first so it is dropped first: the turn passes on before the
    // ticket can remove the entry, so no newcomer makes a second queue
    // while this one is still held.
    _held: OwnedMutexGuard<()>,
    ticket: Ticket<'a>,
}

/// A place in a session's queue, given back on drop, also when the waiting
/// future is dropped (a client that went away, a timeout).
struct Ticket<'a> {
    turns: &'a Turns,
    key: SessionKey,
}

impl Turns {
    /// Waits for `key`'s turn, after every request of this layer that asked
    /// before.
    pub(crate) async fn take(&self, key: SessionKey) -> Turn<'_> {
        let (ticket, turn) = self.join(key);
        Turn {
            _held: turn.lock_owned().await,
            ticket,
        }
    }

    /// Joins `key`'s queue, making it if nobody is in it.
    fn join(&self, key: SessionKey) -> (Ticket<'_>, Arc<Fair<()>>) {
        let mut entries = self.entries();
        let entry = entries.entry(key).or_insert_with(|| Entry {
            turn: Arc::new(Fair::new(())),
            users: 0,
            written: None,
        });
        entry.users += 1;
        let turn = Arc::clone(&entry.turn);
        (Ticket { turns: self, key }, turn)
    }

    /// The map, even after a panic elsewhere: every change to it is one
    /// step that leaves it consistent.
    fn entries(&self) -> MutexGuard<'_, HashMap<SessionKey, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sessions with a queue now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }

    /// Requests holding or waiting for a turn now, over every session.
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn users(&self) -> usize {
        self.entries().values().map(|entry| entry.users).sum()
    }
}

impl Turn<'_> {
    /// The record the request before this one wrote and passed on, if it
    /// did.
    pub(crate) fn passed(&self) -> Option<Record> {
        let ticket = &self.ticket;
        ticket.turns.entries().get_mut(&ticket.key)?.written.take()
    }

    /// Ends the turn, passing to the next in the queue the record this
    /// one wrote. `written` runs only if someone waits: alone, a request
    /// pays nothing for it.
    pub(crate) fn pass_on(self, written: impl FnOnce() -> Option<Record>) {
        let ticket = &self.ticket;
        let waited = |entries: &HashMap<SessionKey, Entry>| {
            entries
                .get(&ticket.key)
                .is_some_and(|entry| entry.users > 1)
        };
        if !waited(&ticket.turns.entries()) {
            return;
        }
        // Made outside the map's lock, which every session's turns share.
        let record = written();
        if let Some(entry) = ticket.turns.entries().get_mut(&ticket.key) {
            entry.written = record;
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut entries = self.turns.entries();
        if let Some(entry) = entries.get_mut(&self.key) {
            entry.users -= 1;
            if entry.users == 0 {
                entries.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use session_core::SessionId;

    use super::*;

    fn key() -> SessionKey {
        SessionId::generate().unwrap().key()
    }

    /// Many tasks on one key: one at a time, and no entry left after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_at_a_time_and_nothing_left() {
        let turns = Arc::new(Turns::default());
        let (key, inside) = (key(), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (turns, inside) = (turns.clone(), inside.clone());
                tokio::spawn(async move {
                    let _turn = turns.take(key).await;
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two at once");
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(turns.len(), 0);
    }

    /// The turns pass in the order they were asked for.
    #[tokio::test]
    async fn first_come_first_served() {
        let turns = Turns::default();
        let key = key();
        let first = turns.take(key).await;
        let order = Mutex::new(Vec::new());
        let waiter = |n: usize| {
            let (turns, order) = (&turns, &order);
            async move {
                let _turn = turns.take(key).await;
                order.lock().unwrap().push(n);
            }
        };
        let waiters = async {
            tokio::join!(waiter(1), waiter(2), waiter(3));
        };
        let release = async {
            tokio::task::yield_now().await;
            drop(first);
        };
        tokio::join!(waiters, release);
        assert_eq!(*order.lock().unwrap(), [1, 2, 3]);
        assert_eq!(turns.len(), 0);
    }

    fn record(version: u64) -> Record {
        let at = session_core::Timestamp::from_unix_millis(1);
        let deadlines = session_core::Deadlines::new(at, at);
        Record::from_parts(session_core::SessionData::new(), at, deadlines, version)
    }

    /// A turn passes its record to the one waiting next, once; alone, it
    /// does not even make it.
    #[tokio::test]
    async fn the_record_goes_to_the_next_in_the_queue() {
        let turns = Turns::default();
        let key = key();
        turns
            .take(key)
            .await
            .pass_on(|| unreachable!("nobody waits"));
        let first = turns.take(key).await;
        assert!(first.passed().is_none());
        let handover = async {
            tokio::task::yield_now().await;
            first.pass_on(|| Some(record(7)));
        };
        let (next, ()) = tokio::join!(turns.take(key), handover);
        assert_eq!(next.passed().map(|record| record.version), Some(7));
        assert!(next.passed().is_none(), "passed twice");
    }

    /// A waiter dropped in the queue (a cancelled request) gives its place
    /// back: the next one gets the turn, and the entry still goes.
    #[tokio::test]
    async fn a_dropped_waiter_leaves_no_entry() {
        let turns = Turns::default();
        let (key, other) = (key(), key());
        let held = turns.take(key).await;
        let cancelled = tokio::time::timeout(Duration::from_millis(10), turns.take(key)).await;
        assert!(cancelled.is_err(), "got a held turn");
        let elsewhere = turns.take(other).await;
        assert_eq!(turns.len(), 2);
        drop(held);
        assert_eq!(turns.len(), 1, "the cancelled waiter kept its entry");
        drop((turns.take(key).await, elsewhere));
        assert_eq!(turns.len(), 0);
    }
}
