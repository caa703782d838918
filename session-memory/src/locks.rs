//! Striped key locks: every mutation of a key runs with its lock held
//! across the read, the decision and the write.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use session_core::SessionKey;

/// Writes to different keys rarely share a lock: one in this many.
const LOCK_STRIPES: usize = 64;

/// A fixed set of locks, a key mapped to one by its first byte; clones
/// share them.
#[derive(Clone, Debug)]
pub(crate) struct KeyLocks(Arc<[Mutex<()>]>);

impl KeyLocks {
    pub(crate) fn new() -> Self {
        Self((0..LOCK_STRIPES).map(|_| Mutex::new(())).collect())
    }

    /// The index of the lock of `key`.
    fn stripe(key: &SessionKey) -> usize {
        usize::from(key.as_bytes()[0]) % LOCK_STRIPES
    }

    /// Locks `key` against every other mutation of it. A panic while a lock
    /// was held left no half-written entry (entries are replaced whole), so
    /// a poisoned lock is taken over.
    fn lock(&self, stripe: usize) -> MutexGuard<'_, ()> {
        self.0[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `write` with `key` locked.
    pub(crate) fn locked<T>(&self, key: &SessionKey, write: impl FnOnce() -> T) -> T {
        let _guard = self.lock(Self::stripe(key));
        write()
    }

    /// Runs `write` with both keys locked, the lower stripe first so that
    /// two calls over the same pair can never wait on each other.
    pub(crate) fn locked_pair<T>(
        &self,
        keys: (&SessionKey, &SessionKey),
        write: impl FnOnce() -> T,
    ) -> T {
        let (first, second) = (Self::stripe(keys.0), Self::stripe(keys.1));
        let _outer = self.lock(first.min(second));
        let _inner = (first != second).then(|| self.lock(first.max(second)));
        write()
    }

    /// Runs `write` with every key locked, in stripe order: for the rare
    /// writes that touch keys they cannot name up front (a revoke, a
    /// login with a limit).
    pub(crate) fn locked_all<T>(&self, write: impl FnOnce() -> T) -> T {
        let _guards: Vec<MutexGuard<'_, ()>> =
            (0..self.0.len()).map(|stripe| self.lock(stripe)).collect();
        write()
    }
}
