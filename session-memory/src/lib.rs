//! In-process session storage on [moka]: bounded, least-recently-used
//! eviction, every record expiring on its own deadline.
//!
//! The default storage: fast, nothing to run, and gone when the process
//! stops. Sessions are kept as encoded records, so a session costs the bytes
//! it holds and corrupt bytes are handled like in any other backend.
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

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
mod harness;
mod stored;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use session_core::{
    Capabilities, ChangeSet, CreateOutcome, CycleOutcome, DEFAULT_MAX_RECORD_BYTES, Deadlines,
    Error, Record, SessionKey, SessionStorage, Timestamp, TouchOutcome, UpdateOutcome, async_trait,
};

#[cfg(feature = "conformance")]
pub use harness::MemoryHarness;
use stored::{KeyHasher, Stored, StoredExpiry, decode, is_live};

/// Default bound on the number of sessions kept.
pub const DEFAULT_MAX_SESSIONS: u64 = 100_000;

/// Writes to different keys rarely share a lock: one in this many.
const LOCK_STRIPES: usize = 64;

/// Sessions in a moka cache.
///
/// Every mutation runs under a lock of its key (one of 64
/// striped locks), held across the read, the decision and the write: that
/// is what makes create insert-only, updates atomic, and a logout
/// impossible to undo. Reads take no lock. The locked section is
/// synchronous (moka's `sync` cache), so it is short, never held across an
/// `.await`, and a caller dropping its future cannot stop a write half way.
///
/// When full, the least recently used session is evicted: moka's default
/// admission policy (TinyLFU) would instead refuse new sessions, so a full
/// cache would stop logging anyone in. An eviction is not a logout: an
/// update racing it may put the session back.
///
/// Cloning is cheap and shares the sessions.
#[derive(Clone)]
pub struct MemoryStorage {
    cache: Cache<SessionKey, Stored, KeyHasher>,
    locks: Arc<[Mutex<()>]>,
    max_record_bytes: usize,
}

impl MemoryStorage {
    /// Storage with the defaults: [`DEFAULT_MAX_SESSIONS`] sessions of at most
    /// [`DEFAULT_MAX_RECORD_BYTES`] each.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to set the bounds.
    pub fn builder() -> MemoryStorageBuilder {
        MemoryStorageBuilder {
            max_sessions: DEFAULT_MAX_SESSIONS,
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
        Ok(Stored::new(
            record.encode(self.max_record_bytes)?,
            record.deadlines.native_ttl(now),
        ))
    }
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
            .field("sessions", &self.cache.entry_count())
            .field("max_sessions", &self.cache.policy().max_capacity())
            .field("max_record_bytes", &self.max_record_bytes)
            .finish()
    }
}

#[async_trait]
impl SessionStorage for MemoryStorage {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        Ok(decode(self.cache.get(key))?.filter(|record| record.is_live(now)))
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        let stored = self.stored(record, now)?;
        self.locked(key, || {
            if is_live(self.cache.get(key), now)? {
                return Ok(CreateOutcome::Collision);
            }
            self.cache.insert(*key, stored);
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
            let Some(current) = decode(self.cache.get(key))? else {
                return Ok(UpdateOutcome::Gone);
            };
            let next = match current.updated(changes, deadlines, now) {
                Ok(next) => next,
                Err(refused) => return Ok(refused),
            };
            self.cache.insert(*key, self.stored(&next, now)?);
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
            let current = decode(self.cache.get(key))?;
            let Some(next) = current.and_then(|record| record.touched(idle_deadline, now)) else {
                return Ok(TouchOutcome::Gone);
            };
            self.cache.insert(*key, self.stored(&next, now)?);
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
            let Some(current) = decode(self.cache.get(old))? else {
                return Ok(CycleOutcome::Gone);
            };
            let next = match current.cycled(changes, deadlines, now) {
                Ok(next) => next,
                Err(refused) => return Ok(refused),
            };
            // A live session cannot move onto itself: it already holds the
            // key.
            if old == new || is_live(self.cache.get(new), now)? {
                return Ok(CycleOutcome::Collision);
            }
            let stored = self.stored(&next, now)?;
            self.cache.invalidate(old);
            self.cache.insert(*new, stored);
            Ok(CycleOutcome::Cycled)
        })
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.locked(key, || self.cache.invalidate(key));
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
    max_record_bytes: usize,
    eviction: EvictionPolicy,
}

impl MemoryStorageBuilder {
    /// How many sessions are kept at most; beyond it the least recently
    /// used are evicted. Default [`DEFAULT_MAX_SESSIONS`].
    pub fn max_sessions(mut self, max_sessions: u64) -> Self {
        self.max_sessions = max_sessions;
        self
    }

    /// The largest encoded record accepted; larger is
    /// [`Error::TooLarge`]. Default [`DEFAULT_MAX_RECORD_BYTES`].
    pub fn max_record_bytes(mut self, max_record_bytes: usize) -> Self {
        self.max_record_bytes = max_record_bytes;
        self
    }

    /// The storage.
    pub fn build(self) -> MemoryStorage {
        let cache = Cache::builder()
            .max_capacity(self.max_sessions)
            .eviction_policy(self.eviction)
            .expire_after(StoredExpiry)
            .build_with_hasher(KeyHasher);
        MemoryStorage {
            cache,
            locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            max_record_bytes: self.max_record_bytes,
        }
    }
}

#[cfg(test)]
mod tests;
