//! Turns: the requests of one layer that update the same session
//! ([`Session::update`](crate::Session::update)) queue up and write one at
//! a time, in arrival order, so that a conditioned write conflicts only
//! with writers in other processes.
//!
//! Without turns, every retry of [`Session::update`](crate::Session::update)
//! races the other requests of the process again, and a request that backed
//! off comes back to a value that moved on: under enough contention it
//! starves and gives up.
//!
//! A request has a [`Ticket`] at its session from just before it loads it
//! (or once it created it) to its end, so that a write ending during the
//! load leaves it the record; a cookie that names no session holds one
//! for the length of its load only; the session's entry exists while some
//! request holds one, so the map never outgrows the requests in flight.
//! A conditioned write takes a [`Turn`] on the ticket, from a fair (FIFO)
//! async mutex; a deferred write, with no conditions, gains nothing by
//! waiting and writes beside the others.
//!
//! Every write of the layer leaves the record it wrote in the entry, for
//! the requests that hold the session still: they loaded it before that
//! write, so their own copies are stale, and a store's write from a stale
//! copy costs a wasted check (a round trip, on Redis) before the full
//! write. The record left is a hint like any loaded one: a store checks it
//! against what is stored, so a writer in another process in between
//! costs only the check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use session_core::{KeyHasher, Record, SessionKey};
use tokio::sync::{Mutex as Fair, OwnedMutexGuard};

/// The entry of each session some request of the layer holds.
#[derive(Default)]
pub(crate) struct Turns {
    entries: Mutex<HashMap<SessionKey, Entry, KeyHasher>>,
}

/// One session's requests.
#[derive(Default)]
struct Entry {
    /// Held by the request whose turn it is to write; tokio's mutex wakes
    /// waiters in the order they came. Made by the first writer.
    turn: Option<Arc<Fair<()>>>,
    /// Tickets and writers: the entry goes with the last of them.
    holders: usize,
    /// Requests writing the session now: in their turn, waiting for it,
    /// or beside the others.
    writers: usize,
    /// The latest record a write of the layer left, for the holders after
    /// it.
    written: Option<Record>,
}

/// A session's entry, as a ticket or a writer reaches it.
#[derive(Clone)]
struct Place {
    turns: Arc<Turns>,
    key: SessionKey,
}

/// A request's place at a session, given back on drop.
pub(crate) struct Ticket(Place);

/// A request's turn at writing a session: others wait until it is dropped.
pub(crate) struct Turn {
    _held: OwnedMutexGuard<()>,
    writer: Writer,
}

/// A request writing the session (in its turn, waiting for it, or
/// beside), counted until dropped (also when a waiting future is: a client
/// gone, a timeout).
pub(crate) struct Writer(Place);

/// Where a write beside the others starts.
pub(crate) enum Beside {
    /// Another request of the layer is writing the session: a copy loaded
    /// before is likely stale.
    Busy,
    /// Nobody is: the record the last write left, if later than the one
    /// this request has.
    Free(Option<Record>),
}

impl Turns {
    /// A ticket at `key`'s session, joining its entry or making it.
    pub(crate) fn join(self: &Arc<Self>, key: SessionKey) -> Ticket {
        self.entries().entry(key).or_default().holders += 1;
        Ticket(Place {
            turns: Arc::clone(self),
            key,
        })
    }

    /// The map, even after a panic elsewhere: every change to it is one
    /// step that leaves it consistent.
    fn entries(&self) -> MutexGuard<'_, HashMap<SessionKey, Entry, KeyHasher>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sessions with an entry now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }

    /// Requests writing now, over every session (see [`Entry::writers`]).
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn writers(&self) -> usize {
        self.entries().values().map(|entry| entry.writers).sum()
    }
}

impl Ticket {
    /// Waits for the turn to write the session, after every request of
    /// this layer that asked before.
    pub(crate) async fn turn(&self) -> Turn {
        let (writer, fair) =
            self.writer(|entry| Arc::clone(entry.turn.get_or_insert_with(Arc::default)));
        Turn {
            _held: fair.lock_owned().await,
            writer,
        }
    }

    /// Counts this request as writing the session, without a turn: for a
    /// write that carries no conditions, which gains nothing by waiting.
    /// Also where to start from, given `known`, the record this request
    /// has (see [`Beside`]).
    pub(crate) fn write_beside(&self, known: &Record) -> (Writer, Beside) {
        self.writer(|entry| {
            if entry.writers > 0 {
                Beside::Busy
            } else {
                Beside::Free(latest(entry, known))
            }
        })
    }

    /// The record last written by a request of the layer, if it is a later
    /// version of the same session than `known`.
    pub(crate) fn latest(&self, known: &Record) -> Option<Record> {
        self.0.with_entry(|entry| latest(entry, known))
    }

    /// A writer at the session, and what `look` saw of the entry before.
    // A writer holds the session too: the request may drop its ticket (the
    // session ended) while it writes.
    fn writer<T>(&self, look: impl FnOnce(&mut Entry) -> T) -> (Writer, T) {
        let seen = self.0.with_entry(|entry| {
            let seen = look(entry);
            entry.holders += 1;
            entry.writers += 1;
            seen
        });
        (Writer(self.0.clone()), seen)
    }
}

impl Turn {
    /// Ends the turn, passing on the record this one wrote (see
    /// [`Writer::pass_on`]).
    pub(crate) fn pass_on(self, written: impl FnOnce() -> Option<Record>) {
        self.writer.pass_on(written);
    }
}

impl Writer {
    /// Keeps `written()`, the record this request wrote, for the other
    /// requests that hold the session, unless a later one is kept already.
    /// `written` runs only if another request holds the session: alone, a
    /// request pays nothing for it.
    pub(crate) fn pass_on(self, written: impl FnOnce() -> Option<Record>) {
        self.0.with_entry(|entry| {
            // Two holders are this request's ticket and this writer.
            if entry.holders <= 2 {
                return;
            }
            // Made under the map's lock, which every session's entries
            // share, but only when the session is contended: a copy.
            let Some(record) = written() else {
                return;
            };
            if entry
                .written
                .as_ref()
                .is_none_or(|kept| later(&record, kept))
            {
                entry.written = Some(record);
            }
        });
    }
}

/// The entry's record if it is a later version than `known`.
fn latest(entry: &Entry, known: &Record) -> Option<Record> {
    let written = entry.written.as_ref()?;
    later(written, known).then(|| written.clone())
}

/// Whether `record` is a later version of the same session than `known`.
fn later(record: &Record, known: &Record) -> bool {
    record.created_at == known.created_at && record.version > known.version
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.0.leave(|entry| entry.writers -= 1);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.leave(|_| ());
    }
}

impl Place {
    /// Runs `change` on the session's entry, which lives while a ticket or
    /// a writer at it does.
    fn with_entry<T>(&self, change: impl FnOnce(&mut Entry) -> T) -> T {
        change(self.turns.entries().entry(self.key).or_default())
    }

    /// Gives back a holder's place (after `also`, for a writer), the entry
    /// going with the last holder.
    fn leave(&self, also: impl FnOnce(&mut Entry)) {
        let mut entries = self.turns.entries();
        if let Some(entry) = entries.get_mut(&self.key) {
            also(entry);
            entry.holders -= 1;
            if entry.holders == 0 {
                entries.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use session_core::{Deadlines, SessionData, SessionId, Timestamp};

    use super::*;

    fn key() -> SessionKey {
        SessionId::generate().unwrap().key()
    }

    fn record(version: u64) -> Record {
        let at = Timestamp::from_unix_millis(1);
        Record::from_parts(SessionData::new(), at, Deadlines::new(at, at), version)
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
                    let ticket = turns.join(key);
                    let _turn = ticket.turn().await;
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
        let turns = Arc::new(Turns::default());
        let key = key();
        let first_ticket = turns.join(key);
        let first = first_ticket.turn().await;
        let order = Mutex::new(Vec::new());
        let waiter = |n: usize| {
            let (turns, order) = (&turns, &order);
            async move {
                let ticket = turns.join(key);
                let _turn = ticket.turn().await;
                order.lock().unwrap().push(n);
            }
        };
        let waiters = async {
            tokio::join!(waiter(1), waiter(2), waiter(3));
        };
        let release = async {
            tokio::task::yield_now().await;
            assert_eq!(turns.writers(), 4);
            drop(first);
        };
        tokio::join!(waiters, release);
        assert_eq!(*order.lock().unwrap(), [1, 2, 3]);
        drop(first_ticket);
        assert_eq!((turns.len(), turns.writers()), (0, 0));
    }

    /// A write passes its record to every holder of the session that knows
    /// an older one, a later write's record staying over an earlier one;
    /// alone, a writer does not even make it.
    #[tokio::test]
    async fn the_latest_record_goes_to_those_holding_the_session() {
        let turns = Arc::new(Turns::default());
        let key = key();
        let alone = turns.join(key);
        (alone.turn().await).pass_on(|| unreachable!("nobody else holds it"));
        let (first, second, later) = (turns.join(key), turns.join(key), turns.join(key));
        let (beside, start) = first.write_beside(&record(1));
        assert!(matches!(start, Beside::Free(None)), "nobody was writing");
        let turn = second.turn().await;
        let start = second.write_beside(&record(1)).1;
        assert!(matches!(start, Beside::Busy), "the turn is writing");
        assert!(later.latest(&record(1)).is_none());
        turn.pass_on(|| Some(record(7)));
        beside.pass_on(|| Some(record(6)));
        drop((first, second, alone));
        let version = |known| later.latest(&record(known)).map(|record| record.version);
        assert_eq!(version(1), Some(7), "the later write's record");
        assert_eq!(version(7), None, "not later than known");
        drop(later);
        assert_eq!((turns.len(), turns.writers()), (0, 0));
    }

    /// A waiter dropped in the queue (a cancelled request) gives its place
    /// back: the next one gets the turn, and the entry still goes.
    #[tokio::test]
    async fn a_dropped_waiter_leaves_no_entry() {
        let turns = Arc::new(Turns::default());
        let (key, other) = (key(), key());
        let (holder, waiter, elsewhere) = (turns.join(key), turns.join(key), turns.join(other));
        let held = holder.turn().await;
        let cancelled = tokio::time::timeout(Duration::from_millis(10), waiter.turn()).await;
        assert!(cancelled.is_err(), "got a held turn");
        assert_eq!(turns.writers(), 1, "the cancelled waiter is still counted");
        let other_turn = elsewhere.turn().await;
        drop((held, holder));
        drop(waiter.turn().await);
        drop(waiter);
        assert_eq!(turns.len(), 1);
        drop(other_turn);
        drop(elsewhere);
        assert_eq!(turns.len(), 0);
    }
}
