//! The index of each user's sessions.
//!
//! Changes to the index are made with the session's key locked (the
//! store's striped locks), after its record was written or removed, so the
//! index and the records never disagree for longer than one locked
//! section. The index's mutex is only ever held for map operations.
//!
//! The caches drop sessions by themselves (expiry, eviction for room) and
//! are not asked to say so: an eviction listener would put every insert of
//! every session, bound or not, through moka's per-key notification locks
//! (about 3 600 instructions each, a tenth of a request). The index learns
//! instead by looking: `list` drops what it no longer finds, cleanup sweeps
//! it whole, and so does the write that grows it past twice its size after
//! the last sweep, so it never holds more than twice the bound sessions the
//! caches hold, plus [`SWEEP_FLOOR`], and costs that sweep once per doubling.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use session_core::{SessionKey, UserKey};

/// The size below which the index is never swept for growth.
pub(crate) const SWEEP_FLOOR: usize = 1024;

/// Shared by the clones of a store.
#[derive(Clone, Default)]
pub(crate) struct Index {
    members: Arc<Mutex<Members>>,
}

struct Members {
    users: HashMap<UserKey, HashSet<SessionKey>>,
    /// How many keys `users` holds in all.
    len: usize,
    /// The size past which the next write sweeps; `usize::MAX` while a
    /// sweep it claimed runs.
    sweep_at: usize,
}

impl Default for Members {
    fn default() -> Self {
        Self {
            users: HashMap::new(),
            len: 0,
            sweep_at: SWEEP_FLOOR,
        }
    }
}

/// Takes over a poisoned lock: every operation leaves the maps whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Index {
    /// Adds `key` to `user`'s sessions.
    pub(crate) fn add(&self, user: UserKey, key: SessionKey) {
        let mut members = lock(&self.members);
        if members.users.entry(user).or_default().insert(key) {
            members.len += 1;
        }
    }

    /// Removes `key` from `user`'s sessions; a user left with none goes.
    pub(crate) fn remove(&self, user: &UserKey, key: &SessionKey) {
        let mut members = lock(&self.members);
        let Some(keys) = members.users.get_mut(user) else {
            return;
        };
        let removed = keys.remove(key);
        if keys.is_empty() {
            members.users.remove(user);
        }
        if removed {
            members.len -= 1;
        }
    }

    /// The keys indexed under `user`, live or not.
    pub(crate) fn members(&self, user: &UserKey) -> Vec<SessionKey> {
        lock(&self.members)
            .users
            .get(user)
            .map(|keys| keys.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every indexed key, with its user.
    pub(crate) fn all(&self) -> Vec<(UserKey, SessionKey)> {
        let members = lock(&self.members);
        let pairs = members.users.iter();
        pairs
            .flat_map(|(user, keys)| keys.iter().map(|key| (*user, *key)))
            .collect()
    }

    /// How many keys the index holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.members).len
    }

    /// Whether the index outgrew its last sweep; if so the caller sweeps,
    /// and no other caller does until [`swept`](Self::swept).
    pub(crate) fn claim_sweep(&self) -> bool {
        let mut members = lock(&self.members);
        let due = members.len > members.sweep_at;
        if due {
            members.sweep_at = usize::MAX;
        }
        due
    }

    /// Notes a finished sweep: the next is due at twice the size left.
    pub(crate) fn swept(&self) {
        let mut members = lock(&self.members);
        members.sweep_at = members.len.saturating_mul(2).max(SWEEP_FLOOR);
    }
}
