//! In-process session storage on [moka]: bounded by sessions and by bytes,
//! least-recently-used eviction in two segments so that one-shot sessions
//! cannot evict sessions in use, every record expiring on its own deadline.
//!
//! The default storage: fast, nothing to run, and gone when the process
//! stops. Sessions are kept as encoded records, so a session costs the bytes
//! it holds (plus about 340 bytes of bookkeeping), and corrupt or oversized
//! stored bytes are refused like in any other backend.
//!
//! | bound | default | builder |
//! |---|---|---|
//! | sessions | [`DEFAULT_MAX_SESSIONS`] (100 000) | [`max_sessions`](MemoryStorageBuilder::max_sessions) |
//! | bytes, all sessions | [`DEFAULT_MAX_BYTES`] (256 MiB) | [`max_bytes`](MemoryStorageBuilder::max_bytes) |
//! | bytes, one record | [`DEFAULT_MAX_RECORD_BYTES`] (64 KiB) | [`max_record_bytes`](MemoryStorageBuilder::max_record_bytes) |
//!
//! A new session starts on probation, with a fifth of the first two bounds;
//! once loaded again (its second request), or when it is a login's new key,
//! it is protected, with the other four fifths. A flood of sessions that
//! are never sent back evicts only within probation, and a new session is
//! still stored (evicting the least recently used new one). A session must
//! come back before probation's share of new sessions (20 000 by default)
//! is created after it, or it is evicted as one-shot.
//!
//! ```
//! use session_core::{Deadlines, Record, SessionData, SessionId, SessionStorage, Timestamp};
//! use session_memory::MemoryStorage;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let storage = MemoryStorage::builder().max_sessions(10_000).build();
//! let key = SessionId::generate()?.key();
//! let now = Timestamp::now();
//! let deadlines = Deadlines::new(
//!     now.saturating_add(Duration::from_secs(30 * 60)),
//!     now.saturating_add(Duration::from_secs(12 * 60 * 60)),
//! );
//! let mut data = SessionData::new();
//! data.insert("user", "ada")?;
//! let _ = storage.create(&key, &Record::new(data, now, deadlines), now).await?;
//! let record = storage.load(&key, now).await?.expect("just created");
//! assert_eq!(record.data.get::<String>("user")?.as_deref(), Some("ada"));
//! # Ok(())
//! # }
//! ```
//!
//! [moka]: https://docs.rs/moka
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bounds;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
mod harness;
mod segments;
mod stored;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use moka::policy::EvictionPolicy;
use session_core::{
    Capabilities, ChangeSet, CreateOutcome, CycleOutcome, DEFAULT_MAX_RECORD_BYTES, Deadlines,
    Error, Record, SessionKey, SessionStorage, Timestamp, TouchOutcome, UpdateOutcome, async_trait,
};

use bounds::Bounds;
pub use bounds::DEFAULT_MAX_BYTES;
#[cfg(feature = "conformance")]
pub use harness::MemoryHarness;
use segments::{Found, Segment, Segments};
use stored::Stored;

/// Default bound on the number of sessions kept.
pub const DEFAULT_MAX_SESSIONS: u64 = 100_000;

/// Writes to different keys rarely share a lock: one in this many.
const LOCK_STRIPES: usize = 64;

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
/// Cloning is cheap and shares the sessions.
#[derive(Clone)]
pub struct MemoryStorage {
    segments: Segments,
    bounds: Bounds,
    locks: Arc<[Mutex<()>]>,
    max_sessions: u64,
    max_bytes: u64,
    max_record_bytes: usize,
}

/// What a key holds, read with the key locked.
struct Current {
    segment: Segment,
    stored: Stored,
    record: Record,
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

    /// The index of the lock of `key`.
    fn stripe(key: &SessionKey) -> usize {
        usize::from(key.as_bytes()[0]) % LOCK_STRIPES
    }

    /// Locks `key` against every other mutation of it. A panic while a lock
    /// was held left no half-written entry (entries are replaced whole), so
    /// a poisoned lock is taken over.
    fn lock(&self, stripe: usize) -> MutexGuard<'_, ()> {
        self.locks[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `write` with `key` locked.
    fn locked<T>(&self, key: &SessionKey, write: impl FnOnce() -> T) -> T {
        let _guard = self.lock(Self::stripe(key));
        write()
    }

    /// Runs `write` with both keys locked, the lower stripe first so that
    /// two calls over the same pair can never wait on each other.
    fn locked_pair<T>(&self, keys: (&SessionKey, &SessionKey), write: impl FnOnce() -> T) -> T {
        let (first, second) = (Self::stripe(keys.0), Self::stripe(keys.1));
        let _outer = self.lock(first.min(second));
        let _inner = (first != second).then(|| self.lock(first.max(second)));
        write()
    }

    /// A record as stored, with the lifetime its deadlines give it at `now`.
    fn stored(&self, record: &Record, now: Timestamp) -> Result<Stored, Error> {
        let stored = Stored::new(
            record.encode(self.max_record_bytes)?,
            record.deadlines.native_ttl(now),
        );
        self.bounds.check(&stored)?;
        Ok(stored)
    }

    /// The entry under `key`, decoded. Called with `key` locked.
    fn current(&self, key: &SessionKey) -> Result<Option<Current>, Error> {
        let Some(Found { segment, stored }) = self.segments.get(key) else {
            return Ok(None);
        };
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
        self.locked(key, || {
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
        self.locked(key, || {
            let current = self.current(key)?;
            if is_live(current.as_ref(), now) {
                return Ok(CreateOutcome::Collision);
            }
            let from = current.map(|current| current.segment);
            self.segments.put(key, stored, Segment::Probation, from);
            Ok(CreateOutcome::Created)
        })
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        self.locked(key, || {
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

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        self.locked(key, || {
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
        self.locked_pair((old, new), || {
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
            Ok(CycleOutcome::Cycled)
        })
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.locked(key, || self.segments.remove(key));
        Ok(())
    }

    /// Records expire by themselves: always `0`.
    async fn delete_expired(&self, _now: Timestamp) -> Result<u64, Error> {
        Ok(0)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default().with_native_expiry()
    }
}

/// Sets the bounds of a [`MemoryStorage`].
#[derive(Debug)]
#[must_use]
pub struct MemoryStorageBuilder {
    max_sessions: u64,
    max_bytes: u64,
    max_record_bytes: usize,
    eviction: EvictionPolicy,
}

impl MemoryStorageBuilder {
    /// How many sessions are kept at most: a fifth of them for new sessions,
    /// the rest for sessions in use; beyond its share, a segment evicts its
    /// least recently used. At least 2 (one per segment). Default
    /// [`DEFAULT_MAX_SESSIONS`].
    pub fn max_sessions(mut self, max_sessions: u64) -> Self {
        self.max_sessions = max_sessions;
        self
    }

    /// How many bytes the sessions take at most, counting each as its
    /// encoded record plus what the cache spends on an entry (about 340
    /// bytes); shared between the segments like
    /// [`max_sessions`](Self::max_sessions). A record that could not fit in
    /// the new sessions' fifth is refused with [`Error::TooLarge`], so keep
    /// this well above [`max_record_bytes`](Self::max_record_bytes). Default
    /// [`DEFAULT_MAX_BYTES`].
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The largest record accepted, as [`SessionData::size`] measures it;
    /// larger is [`Error::TooLarge`], on writes and on loads alike. Default
    /// [`DEFAULT_MAX_RECORD_BYTES`].
    ///
    /// [`SessionData::size`]: session_core::SessionData::size
    pub fn max_record_bytes(mut self, max_record_bytes: usize) -> Self {
        self.max_record_bytes = max_record_bytes;
        self
    }

    /// The storage.
    pub fn build(self) -> MemoryStorage {
        let bounds = Bounds::new(self.max_sessions, self.max_bytes);
        MemoryStorage {
            segments: Segments::new(bounds, &self.eviction),
            bounds,
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            max_sessions: self.max_sessions,
            max_bytes: self.max_bytes,
            max_record_bytes: self.max_record_bytes,
        }
    }
}

#[cfg(test)]
mod tests;
