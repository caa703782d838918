//! `rotate` and its forwards: the record moves to its new key and the old
//! key holds a forward to it (see [`Stored::forward`]) until the grace
//! window ends, both under the pair's locks.

use session_core::{Error, RotateOutcome, SessionKey, Timestamp};

use crate::MemoryStorage;
use crate::segments::{Found, Segment};
use crate::stored::Stored;

impl MemoryStorage {
    /// `rotate` of `old` to `new`, the forward ending at `grace_end`.
    pub(crate) fn rotate_key(
        &self,
        (old, new): (&SessionKey, &SessionKey),
        grace_end: Timestamp,
        now: Timestamp,
    ) -> Result<RotateOutcome, Error> {
        self.locks.locked_pair((old, new), || {
            let Some(current) = self.current(old)? else {
                return Ok(RotateOutcome::Gone);
            };
            let segment = current.segment;
            let Some(next) = current.record.rotated(now) else {
                return Ok(RotateOutcome::Gone);
            };
            let taken = self.current(new)?;
            if old == new
                || taken
                    .as_ref()
                    .is_some_and(|taken| taken.record.is_live(now))
            {
                return Ok(RotateOutcome::Collision);
            }
            let stored = self.stored(&next, now)?;
            // A session in use, as a login's new key is.
            let from = taken.map(|taken| taken.segment);
            self.segments.put(new, stored, Segment::Protected, from);
            self.segments.put(
                old,
                Stored::forward(new, grace_end, now),
                segment,
                Some(segment),
            );
            if let Some(account) = &next.account {
                self.index.add(account.user, *new);
                self.index.remove(&account.user, old);
            }
            Ok(RotateOutcome::Rotated)
        })
    }

    /// The key the forward under `key` names and the end of its grace
    /// window, if it holds one.
    pub(crate) fn forward_of(&self, key: &SessionKey) -> Option<(SessionKey, Timestamp)> {
        let Found { stored, .. } = self.segments.find(key)?;
        stored.forwarding()
    }

    /// Deletes the forward under `key` and the record under `to` it names,
    /// both locked; a forward replaced meanwhile is deleted as it is.
    pub(crate) fn delete_forwarded(&self, key: &SessionKey, to: &SessionKey) {
        self.locks.locked_pair((key, to), || {
            let still = self
                .segments
                .get(key)
                .is_some_and(|found| found.stored.is_forward());
            self.remove(key);
            if still {
                self.remove(to);
            }
        });
    }

    /// Removes whatever `key` holds, and a record's key from its user's
    /// index. Called with `key` locked.
    pub(crate) fn remove(&self, key: &SessionKey) {
        // Bytes that do not decode were never indexed.
        let bound = self.current(key).ok().flatten();
        self.segments.remove(key);
        if let Some(account) = bound.and_then(|current| current.record.account) {
            self.index.remove(&account.user, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_names_its_key_until_its_end() {
        let to = SessionKey::from_bytes([7; 32]);
        let at = Timestamp::from_unix_millis;
        let forward = Stored::forward(&to, at(1_000), at(10));
        assert!(forward.is_forward());
        assert_eq!(forward.forwarding(), Some((to, at(1_000))));
        assert!(forward.record(usize::MAX).is_err());
        assert!(!Stored::new(vec![1, 0x80], std::time::Duration::ZERO).is_forward());
    }
}
