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

use moka::future::Cache;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;
use session_core::{
    Capabilities, ChangeSet, CreateOutcome, CycleOutcome, DEFAULT_MAX_RECORD_BYTES, Deadlines,
    Error, Record, SessionKey, SessionStorage, Timestamp, TouchOutcome, UpdateOutcome, async_trait,
};

#[cfg(feature = "conformance")]
pub use harness::MemoryHarness;
use stored::{KeyHasher, Stored, StoredExpiry, decode, is_live};

/// Default bound on the number of sessions kept.
pub const DEFAULT_MAX_SESSIONS: u64 = 100_000;

/// Sessions in a moka cache.
///
/// Every mutation goes through moka's per-key compute
/// (`entry().and_try_compute_with`), which serializes it with every other
/// mutation of the same key: that is what makes create insert-only, updates
/// atomic, and a logout impossible to undo. (`insert` and `invalidate` would
/// bypass that lock, so they are never used.)
///
/// When full, the least recently used session is evicted: moka's default
/// admission policy (TinyLFU) would instead refuse new sessions, so a full
/// cache would stop logging anyone in.
///
/// Cloning is cheap and shares the sessions.
#[derive(Clone)]
pub struct MemoryStorage {
    cache: Cache<SessionKey, Stored, KeyHasher>,
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

    /// Runs `decide` on the entry under `key` with the key locked against
    /// every other mutation, applies the operation it returns, and returns
    /// its outcome. An error leaves the entry as it was.
    async fn compute<T>(
        &self,
        key: &SessionKey,
        decide: impl FnOnce(Option<Stored>) -> Result<(Op<Stored>, T), Error>,
    ) -> Result<T, Error> {
        let mut outcome = None;
        self.cache
            .entry(*key)
            .and_try_compute_with(|entry| {
                let decided = decide(entry.map(|entry| entry.into_value())).map(|(op, value)| {
                    outcome = Some(value);
                    op
                });
                std::future::ready(decided)
            })
            .await?;
        outcome.ok_or_else(|| Error::backend("moka compute finished without running"))
    }

    /// Like [`compute`](Self::compute) over two distinct keys, `decide`
    /// seeing and returning them in the order given. Both keys are locked,
    /// always the smaller one first, so two calls over the same pair can
    /// never wait on each other.
    async fn compute_pair<T>(
        &self,
        (first, second): (&SessionKey, &SessionKey),
        decide: impl FnOnce(Option<Stored>, Option<Stored>) -> Result<Decided<T>, Error>,
    ) -> Result<T, Error> {
        let swapped = first > second;
        let (outer_key, inner_key) = if swapped {
            (second, first)
        } else {
            (first, second)
        };
        let mut outcome = None;
        let outcome_slot = &mut outcome;
        self.cache
            .entry(*outer_key)
            .and_try_compute_with(|outer_entry| async move {
                let outer = outer_entry.map(|entry| entry.into_value());
                let mut outer_op = Op::Nop;
                self.cache
                    .entry(*inner_key)
                    .and_try_compute_with(|inner_entry| {
                        let inner = inner_entry.map(|entry| entry.into_value());
                        let (first, second) = if swapped {
                            (inner, outer)
                        } else {
                            (outer, inner)
                        };
                        let decided = decide(first, second).map(|(first_op, second_op, value)| {
                            let (outer, inner) = if swapped {
                                (second_op, first_op)
                            } else {
                                (first_op, second_op)
                            };
                            *outcome_slot = Some(value);
                            outer_op = outer;
                            inner
                        });
                        std::future::ready(decided)
                    })
                    .await?;
                Ok::<_, Error>(outer_op)
            })
            .await?;
        outcome.ok_or_else(|| Error::backend("moka compute finished without running"))
    }

    /// A record as stored, with the lifetime its deadlines give it at `now`.
    fn stored(&self, record: &Record, now: Timestamp) -> Result<Stored, Error> {
        Ok(Stored::new(
            record.encode(self.max_record_bytes)?,
            record.deadlines.native_ttl(now),
        ))
    }
}

/// What a two-key compute does to each key, and the outcome to report.
type Decided<T> = (Op<Stored>, Op<Stored>, T);

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
        Ok(decode(self.cache.get(key).await)?.filter(|record| record.is_live(now)))
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        let stored = self.stored(record, now)?;
        self.compute(key, |entry| {
            Ok(if is_live(entry, now)? {
                (Op::Nop, CreateOutcome::Collision)
            } else {
                (Op::Put(stored), CreateOutcome::Created)
            })
        })
        .await
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        self.compute(key, |entry| {
            let Some(current) = decode(entry)? else {
                return Ok((Op::Nop, UpdateOutcome::Gone));
            };
            match current.updated(changes, deadlines, now) {
                Ok(next) => Ok((
                    Op::Put(self.stored(&next, now)?),
                    UpdateOutcome::Updated {
                        version: next.version,
                    },
                )),
                Err(refused) => Ok((Op::Nop, refused)),
            }
        })
        .await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        self.compute(key, |entry| {
            match decode(entry)?.and_then(|record| record.touched(idle_deadline, now)) {
                Some(next) => Ok((Op::Put(self.stored(&next, now)?), TouchOutcome::Touched)),
                None => Ok((Op::Nop, TouchOutcome::Gone)),
            }
        })
        .await
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        if old == new {
            // One key cannot be locked twice; a live session cannot move
            // onto itself, it already holds the key.
            return Ok(match self.load(old, now).await? {
                Some(_) => CycleOutcome::Collision,
                None => CycleOutcome::Gone,
            });
        }
        // Two keys take two steps; a spawned task finishes both even if the
        // caller's future is dropped between them.
        let (storage, old, new, changes) = (self.clone(), *old, *new, changes.clone());
        let task = tokio::spawn(async move {
            storage
                .compute_pair((&old, &new), |old_entry, new_entry| {
                    let Some(current) = decode(old_entry)? else {
                        return Ok((Op::Nop, Op::Nop, CycleOutcome::Gone));
                    };
                    let next = match current.cycled(&changes, deadlines, now) {
                        Ok(next) => next,
                        Err(refused) => return Ok((Op::Nop, Op::Nop, refused)),
                    };
                    if is_live(new_entry, now)? {
                        return Ok((Op::Nop, Op::Nop, CycleOutcome::Collision));
                    }
                    let stored = storage.stored(&next, now)?;
                    Ok((Op::Remove, Op::Put(stored), CycleOutcome::Cycled))
                })
                .await
        });
        task.await.map_err(Error::backend)?
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.compute(key, |_| Ok((Op::Remove, ()))).await
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
            max_record_bytes: self.max_record_bytes,
        }
    }
}

#[cfg(test)]
mod tests;
