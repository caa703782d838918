//! Sweeping the index: keys whose session the caches dropped by themselves
//! leave it.

use session_core::Timestamp;

use crate::MemoryStorage;

impl MemoryStorage {
    /// Sweeps the index if a write grew it past twice its size after the
    /// last sweep. Called after a write that indexed a key, outside its
    /// locked section (the sweep takes the keys' locks).
    pub(crate) fn sweep_if_due(&self, now: Timestamp) {
        if self.index.claim_sweep() {
            self.sweep(now);
        }
    }

    /// Takes out of the index every key that no longer holds a session of
    /// its user live at `now`, each with its key locked, so that a write
    /// indexing the key again either ran before the look or runs after the
    /// removal.
    pub(crate) fn sweep(&self, now: Timestamp) {
        for (user, key) in self.index.all() {
            self.locks.locked(&key, || {
                // Bytes that do not decode were never indexed.
                if !matches!(self.bound_live(&key, &user, now), Ok(Some(_))) {
                    self.index.remove(&user, &key);
                }
            });
        }
        self.index.swept();
    }
}
