//! [`MemoryStorageBuilder`]: the bounds of a [`MemoryStorage`].

use moka::policy::EvictionPolicy;

use crate::MemoryStorage;
use crate::bounds::Bounds;
use crate::index::Index;
use crate::locks::KeyLocks;
use crate::segments::Segments;

/// Default bound on the number of sessions kept.
pub const DEFAULT_MAX_SESSIONS: u64 = 100_000;

/// Sets the bounds of a [`MemoryStorage`].
#[derive(Debug)]
#[must_use]
pub struct MemoryStorageBuilder {
    pub(crate) max_sessions: u64,
    pub(crate) max_bytes: u64,
    pub(crate) max_record_bytes: usize,
    pub(crate) eviction: EvictionPolicy,
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
    /// the new sessions' fifth is refused with [`Error::TooLarge`](session_core::Error::TooLarge), so keep
    /// this well above [`max_record_bytes`](Self::max_record_bytes). Default
    /// [`DEFAULT_MAX_BYTES`](crate::DEFAULT_MAX_BYTES).
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The largest record accepted, as [`SessionData::size`] measures it;
    /// larger is [`Error::TooLarge`](session_core::Error::TooLarge), on writes and on loads alike. Default
    /// [`DEFAULT_MAX_RECORD_BYTES`](session_core::DEFAULT_MAX_RECORD_BYTES).
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
            index: Index::default(),
            bounds,
            locks: KeyLocks::new(),
            max_sessions: self.max_sessions,
            max_bytes: self.max_bytes,
            max_record_bytes: self.max_record_bytes,
        }
    }
}
