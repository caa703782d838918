//! Segmented LRU: new sessions on probation, sessions used again protected.
//!
//! A cookieless request that writes creates a session nobody may ever send
//! back. Under one LRU, a flood of those evicts every idle user. Here a new
//! session starts in the probation segment and moves to the protected one
//! when it is loaded again; each segment is an LRU of its own bounds, so a
//! flood evicts only within probation.
//!
//! A key lives in one segment. Every move happens with the key's lock held
//! (the store's striped locks), so a move never races a write; loads take no
//! lock, and a move writes the new segment before it clears the old one, so
//! a load looking in both never misses a key that is there.

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use session_core::{KeyHasher, SessionKey};

use crate::bounds::Bounds;
use crate::stored::{Stored, StoredExpiry};

/// One of the two segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Sessions not seen since they were created.
    Probation,
    /// Sessions loaded again after their creation, and logins.
    Protected,
}

/// An entry and the segment it was found in.
#[derive(Clone)]
pub(crate) struct Found {
    pub(crate) segment: Segment,
    pub(crate) stored: Stored,
}

type SegmentCache = Cache<SessionKey, Stored, KeyHasher>;

/// The two segments.
#[derive(Clone)]
pub(crate) struct Segments {
    probation: SegmentCache,
    protected: SegmentCache,
}

impl Segments {
    /// Empty segments within `bounds`, each evicting by `eviction`.
    pub(crate) fn new(bounds: Bounds, eviction: &EvictionPolicy) -> Self {
        let cache = |capacity| {
            Cache::builder()
                .max_capacity(capacity)
                .weigher(move |_, stored| bounds.weight(stored))
                .eviction_policy(eviction.clone())
                .expire_after(StoredExpiry)
                .build_with_hasher(KeyHasher)
        };
        Self {
            probation: cache(bounds.probation()),
            protected: cache(bounds.protected()),
        }
    }

    fn cache(&self, segment: Segment) -> &SegmentCache {
        match segment {
            Segment::Probation => &self.probation,
            Segment::Protected => &self.protected,
        }
    }

    fn look(&self, key: &SessionKey, segment: Segment) -> Option<Found> {
        let stored = self.cache(segment).get(key)?;
        Some(Found { segment, stored })
    }

    /// The entry of `key`, looked up with the key locked (nothing moves it
    /// meanwhile). Protected first: that is where sessions in use are.
    pub(crate) fn get(&self, key: &SessionKey) -> Option<Found> {
        self.look(key, Segment::Protected)
            .or_else(|| self.look(key, Segment::Probation))
    }

    /// The entry of `key`, looked up without its lock. A key missed in both
    /// segments may have been promoted between the two looks (a move writes
    /// the protected copy before it clears the probation one), so a miss
    /// looks in the protected segment once more.
    pub(crate) fn find(&self, key: &SessionKey) -> Option<Found> {
        self.get(key).or_else(|| self.look(key, Segment::Protected))
    }

    /// Stores `stored` under `key` in segment `to`, then clears the key from
    /// segment `from` (where it was found) if that is the other one. Called
    /// with `key` locked.
    pub(crate) fn put(&self, key: &SessionKey, stored: Stored, to: Segment, from: Option<Segment>) {
        self.cache(to).insert(*key, stored);
        if let Some(from) = from.filter(|from| *from != to) {
            self.cache(from).invalidate(key);
        }
    }

    /// Removes `key` from both segments. Called with `key` locked.
    pub(crate) fn remove(&self, key: &SessionKey) {
        self.probation.invalidate(key);
        self.protected.invalidate(key);
    }

    /// Whether either segment holds `key`, live or not.
    #[cfg(feature = "conformance")]
    pub(crate) fn contains_key(&self, key: &SessionKey) -> bool {
        self.protected.contains_key(key) || self.probation.contains_key(key)
    }

    /// How many entries the segments hold (moka's estimate).
    pub(crate) fn entry_count(&self) -> u64 {
        self.probation.entry_count() + self.protected.entry_count()
    }

    /// Runs moka's pending maintenance (evictions, counts) now.
    #[cfg(test)]
    pub(crate) fn run_pending_tasks(&self) {
        self.probation.run_pending_tasks();
        self.protected.run_pending_tasks();
    }

    /// The segment `segment`, for tests to look inside.
    #[cfg(test)]
    pub(crate) fn segment(&self, segment: Segment) -> &SegmentCache {
        self.cache(segment)
    }
}
