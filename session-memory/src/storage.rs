//! [`MemoryStorage`] and its [`SessionStorage`] implementation.

use std::fmt;

use moka::policy::EvictionPolicy;
use session_core::{
    Capabilities, ChangeSet, CreateOutcome, CycleOutcome, DEFAULT_MAX_RECORD_BYTES, Deadlines,
    Error, Listed, Login, LoginOutcome, Record, Revoke, RotateOutcome, SessionKey, SessionStorage,
    Stamp, Timestamp, TouchOutcome, UpdateOutcome, UserKey, async_trait,
};

use crate::bounds::{Bounds, DEFAULT_MAX_BYTES};
use crate::builder::{DEFAULT_MAX_SESSIONS, MemoryStorageBuilder};
use crate::index::Index;
use crate::locks::KeyLocks;
use crate::segments::{Found, Segment, Segments};
use crate::stored::Stored;

/// Sessions in moka caches.
///
/// Every mutation runs under a lock of its key (one of 64
/// striped locks), held across the read, the decision and the write: that
/// is what makes create insert-only, updates atomic, and a logout
/// impossible to undo. Reads take no lock, except the one load that
/// promotes a session (below). The locked section is synchronous (moka's
/// `sync` cache), so it is short, never held across an `.await`, and a
/// caller dropping its future cannot stop a write half way.
///
/// Bounded by sessions ([`max_sessions`](MemoryStorageBuilder::max_sessions))
/// and by bytes ([`max_bytes`](MemoryStorageBuilder::max_bytes)), in two
/// segments: a new session starts on probation (a fifth of each bound) and
/// is protected (the other four fifths) once it is loaded again, or when it
/// is the new key of a login (`cycle`). So a flood of sessions that are
/// never sent back evicts only other such sessions, never a session in use.
/// Within each segment the least recently used session is evicted: moka's
/// default admission policy (TinyLFU) would instead refuse new sessions, so
/// a full cache would stop logging anyone in. An eviction is not a logout:
/// an update racing it may put the session back. moka evicts in the
/// background of later calls, so a cache can briefly hold more than its
/// bounds.
///
/// Accounts: an index from each user to their sessions' keys, changed with
/// the session's key locked, in the same locked section as the record. A
/// bound session the caches drop by themselves (expiry, eviction) leaves
/// the index when `list` looks for it, at cleanup
/// ([`delete_expired`](SessionStorage::delete_expired)), or when the index
/// has grown to twice its size after its last sweep, whichever comes first;
/// anonymous sessions never touch the index.
///
/// Cloning is cheap and shares the sessions.
#[derive(Clone)]
pub struct MemoryStorage {
    pub(crate) segments: Segments,
    pub(crate) index: Index,
    pub(crate) bounds: Bounds,
    pub(crate) locks: KeyLocks,
    pub(crate) max_sessions: u64,
    pub(crate) max_bytes: u64,
    pub(crate) max_record_bytes: usize,
}

/// What a key holds, read with the key locked.
pub(crate) struct Current {
    pub(crate) segment: Segment,
    stored: Stored,
    pub(crate) record: Record,
}

impl MemoryStorage {
    /// Storage with the defaults: [`DEFAULT_MAX_SESSIONS`] sessions and
    /// [`DEFAULT_MAX_BYTES`] bytes at most, of at most
    /// [`DEFAULT_MAX_RECORD_BYTES`] each.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to set the bounds.
    pub fn builder() -> MemoryStorageBuilder {
        MemoryStorageBuilder {
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_bytes: DEFAULT_MAX_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            eviction: EvictionPolicy::lru(),
        }
    }

    /// A record as stored, with the lifetime its deadlines give it at `now`.
    pub(crate) fn stored(&self, record: &Record, now: Timestamp) -> Result<Stored, Error> {
        let stored = Stored::new(
            record.encode(self.max_record_bytes)?,
            record.deadlines.native_ttl(now),
        );
        self.bounds.check(&stored)?;
        Ok(stored)
    }

    /// Whether `key` holds a record live at `now`. Called with `key` locked.
    pub(crate) fn is_live_at(&self, key: &SessionKey, now: Timestamp) -> Result<bool, Error> {
        Ok(is_live(self.current(key)?.as_ref(), now))
    }

    /// The record under `key`, decoded; none for a forward, which is no
    /// record. Called with `key` locked.
    pub(crate) fn current(&self, key: &SessionKey) -> Result<Option<Current>, Error> {
        let Some(Found { segment, stored }) = self.segments.get(key) else {
            return Ok(None);
        };
        if stored.is_forward() {
            return Ok(None);
        }
        let record = stored.record(self.max_record_bytes)?;
        Ok(Some(Current {
            segment,
            stored,
            record,
        }))
    }

    /// Loads `key` as found on probation: under its lock, so that what moves
    /// to the protected segment is what is stored now, not bytes a
    /// concurrent write has replaced since the unlocked look. Once per
    /// session; later loads find it protected.
    fn load_and_promote(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        self.locks.locked(key, || {
            let Some(current) = self.current(key)?.filter(|current| current.is_live(now)) else {
                return Ok(None);
            };
            if current.segment == Segment::Probation {
                // Kept for the lifetime left, not the one it was written with.
                let moved = current
                    .stored
                    .with_ttl(current.record.deadlines.native_ttl(now));
                self.segments
                    .put(key, moved, Segment::Protected, Some(Segment::Probation));
            }
            Ok(Some(current.record))
        })
    }
}

impl MemoryStorage {
    /// Stores `stored` under `key` if the entry there is live at `now` and
    /// stamped as `loaded` was; whether it did. Called with `key` locked.
    fn put_if_stamped(
        &self,
        key: &SessionKey,
        loaded: &Record,
        stored: Stored,
        now: Timestamp,
    ) -> bool {
        let Some(found) = self.segments.get(key) else {
            return false;
        };
        // Bytes that do not even start as a record are for `update` to
        // refuse.
        let current = Stamp::decode(found.stored.bytes());
        if !current.is_ok_and(|stamp| stamp.is_of(loaded) && stamp.deadlines.is_live(now)) {
            return false;
        }
        self.segments
            .put(key, stored, found.segment, Some(found.segment));
        true
    }
}

impl Current {
    fn is_live(&self, now: Timestamp) -> bool {
        self.record.is_live(now)
    }
}

/// Whether a key's entry holds a live record.
fn is_live(current: Option<&Current>, now: Timestamp) -> bool {
    current.is_some_and(|current| current.is_live(now))
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStorage {
    /// Sizes only: the cache holds sessions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("sessions", &self.segments.entry_count())
            .field("max_sessions", &self.max_sessions)
            .field("max_bytes", &self.max_bytes)
            .field("max_record_bytes", &self.max_record_bytes)
            .finish()
    }
}

#[async_trait]
impl SessionStorage for MemoryStorage {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        match self.segments.find(key) {
            None => Ok(None),
            Some(found) if found.stored.is_forward() => Ok(None),
            Some(Found {
                segment: Segment::Protected,
                stored,
            }) => Ok(Some(stored.record(self.max_record_bytes)?).filter(|r| r.is_live(now))),
            Some(Found {
                segment: Segment::Probation,
                ..
            }) => self.load_and_promote(key, now),
        }
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        let stored = self.stored(record, now)?;
        let outcome = self.locks.locked(key, || {
            let current = self.current(key)?;
            if is_live(current.as_ref(), now) {
                return Ok(CreateOutcome::Collision);
            }
            let from = current.map(|current| current.segment);
            self.segments.put(key, stored, Segment::Probation, from);
            if let Some(account) = &record.account {
                self.index.add(account.user, *key);
            }
            Ok(CreateOutcome::Created)
        });
        if record.account.is_some() {
            self.sweep_if_due(now);
        }
        outcome
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        self.locks.locked(key, || {
            let Some(Current {
                segment, record, ..
            }) = self.current(key)?
            else {
                return Ok(UpdateOutcome::Gone);
            };
            let next = match record.updated(changes, deadlines, now) {
                Ok(next) => next,
                Err(refused) => return Ok(refused),
            };
            let stored = self.stored(&next, now)?;
            self.segments.put(key, stored, segment, Some(segment));
            Ok(UpdateOutcome::Updated {
                version: next.version,
            })
        })
    }

    /// Writes `loaded` with the changes if the stored record is still the
    /// one loaded, checked by its [`Stamp`] (four integers, not a decode of
    /// every value), under its lock; else does what `update` does.
    async fn update_from(
        &self,
        key: &SessionKey,
        loaded: &Record,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        // A refusal by the loaded record may not hold for the stored one.
        if let Ok(next) = loaded.clone().updated(changes, deadlines, now) {
            let stored = self.stored(&next, now)?;
            if self
                .locks
                .locked(key, || self.put_if_stamped(key, loaded, stored, now))
            {
                return Ok(UpdateOutcome::Updated {
                    version: next.version,
                });
            }
        }
        self.update(key, changes, deadlines, now).await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        self.locks.locked(key, || {
            let Some(current) = self.current(key)? else {
                return Ok(TouchOutcome::Gone);
            };
            let segment = current.segment;
            let Some(next) = current.record.touched(idle_deadline, now) else {
                return Ok(TouchOutcome::Gone);
            };
            let stored = self.stored(&next, now)?;
            self.segments.put(key, stored, segment, Some(segment));
            Ok(TouchOutcome::Touched)
        })
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        let outcome = self.locks.locked_pair((old, new), || {
            let Some(current) = self.current(old)? else {
                return Ok(CycleOutcome::Gone);
            };
            let next = match current.record.cycled(changes, deadlines, now) {
                Ok(next) => next,
                Err(refused) => return Ok(refused),
            };
            // A live session cannot move onto itself: it already holds the
            // key.
            let taken = self.current(new)?;
            if old == new || is_live(taken.as_ref(), now) {
                return Ok(CycleOutcome::Collision);
            }
            let stored = self.stored(&next, now)?;
            self.segments.remove(old);
            // A login is a session in real use: it starts protected.
            let from = taken.map(|taken| taken.segment);
            self.segments.put(new, stored, Segment::Protected, from);
            if let Some(account) = &next.account {
                self.index.add(account.user, *new);
                self.index.remove(&account.user, old);
            }
            Ok(CycleOutcome::Cycled)
        });
        self.sweep_if_due(now);
        outcome
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        // Looked at under the key's lock, so that a rotation cannot turn
        // the record into a forward between the look and the removal. A
        // forward (whether or not its grace window has just ended: a logout
        // is never wrong) goes with the record it names, under both locks.
        let forward = self.locks.locked(key, || match self.forward_of(key) {
            Some((to, _)) => Some(to),
            None => {
                self.remove(key);
                None
            }
        });
        if let Some(to) = forward {
            self.delete_forwarded(key, &to);
        }
        Ok(())
    }

    async fn login(
        &self,
        old: Option<&SessionKey>,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        self.log_in((old, new), changes, deadlines, login, now)
    }

    async fn list(&self, user: &UserKey, now: Timestamp) -> Result<Vec<Listed>, Error> {
        self.list_sessions(user, now)
    }

    async fn revoke(&self, user: &UserKey, which: &Revoke, now: Timestamp) -> Result<u64, Error> {
        self.revoke_sessions(user, which, now)
    }

    /// Records expire by themselves: always `0`. Sweeps the index of the
    /// sessions the caches dropped.
    async fn delete_expired(&self, now: Timestamp) -> Result<u64, Error> {
        self.sweep(now);
        Ok(0)
    }

    async fn rotate(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        grace_end: Timestamp,
        now: Timestamp,
    ) -> Result<RotateOutcome, Error> {
        self.rotate_key((old, new), grace_end, now)
    }

    async fn load_following(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<(SessionKey, Record)>, Error> {
        let at = match self.forward_of(key) {
            Some((to, end)) if now < end => to,
            Some(_) => return Ok(None),
            None => *key,
        };
        Ok(self.load(&at, now).await?.map(|record| (at, record)))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_native_expiry()
            .with_accounts()
            .with_rotation()
    }
}
