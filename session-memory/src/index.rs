//! The index of each user's sessions, and the queue of bound sessions the
//! caches evicted on their own.
//!
//! Changes to the index are made with the session's key locked (the
//! store's striped locks), after its record was written or removed, so the
//! index and the records never disagree for longer than one locked
//! section. The index's own mutex is only ever held for map operations,
//! never across a call into moka: moka calls the eviction listener from
//! inside its calls, and the listener only touches the queue.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use session_core::{SessionKey, UserKey};

type Members = HashMap<UserKey, HashSet<SessionKey>>;

/// Shared by the clones of a store.
#[derive(Clone, Default)]
pub(crate) struct Index {
    members: Arc<Mutex<Members>>,
    evicted: Arc<Mutex<Vec<(UserKey, SessionKey)>>>,
}

/// Takes over a poisoned lock: every operation leaves the maps whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Index {
    /// Adds `key` to `user`'s sessions.
    pub(crate) fn add(&self, user: UserKey, key: SessionKey) {
        lock(&self.members).entry(user).or_default().insert(key);
    }

    /// Removes `key` from `user`'s sessions; a user left with none goes.
    pub(crate) fn remove(&self, user: &UserKey, key: &SessionKey) {
        let mut members = lock(&self.members);
        if let Some(keys) = members.get_mut(user) {
            keys.remove(key);
            if keys.is_empty() {
                members.remove(user);
            }
        }
    }

    /// The keys indexed under `user`, live or not.
    pub(crate) fn members(&self, user: &UserKey) -> Vec<SessionKey> {
        lock(&self.members)
            .get(user)
            .map(|keys| keys.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Notes that the cache evicted `key`, bound to `user`, by itself.
    /// Called by moka's eviction listener, so it takes the queue's lock
    /// only.
    pub(crate) fn evicted(&self, user: UserKey, key: SessionKey) {
        lock(&self.evicted).push((user, key));
    }

    /// The evictions noted since the last call.
    pub(crate) fn take_evicted(&self) -> Vec<(UserKey, SessionKey)> {
        std::mem::take(&mut *lock(&self.evicted))
    }
}
