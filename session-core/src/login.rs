//! Logins: binding a session to a user, and the limit on how many
//! sessions one user keeps.

use std::num::NonZeroUsize;

use crate::{Account, Device, SessionKey, Timestamp, UserKey};

/// What a login records, for [`SessionStorage::login`](crate::SessionStorage::login).
///
/// ```
/// use std::num::NonZeroUsize;
/// use session_core::{Device, Login, UserKey};
///
/// let login = Login::new(UserKey::of("ada"))
///     .device(Device::new().with("user_agent", "curl/8"))
///     .limit(NonZeroUsize::new(5).unwrap());
/// assert_eq!(login.user(), UserKey::of("ada"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    user: UserKey,
    device: Device,
    limit: Option<NonZeroUsize>,
}

impl Login {
    /// A login of `user`, with no device facts and no limit.
    pub fn new(user: UserKey) -> Self {
        Self {
            user,
            device: Device::new(),
            limit: None,
        }
    }

    /// This login, recording `device`.
    #[must_use]
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// This login, keeping at most `limit` sessions of the user, this one
    /// included: the least recently seen others are revoked with it.
    #[must_use]
    pub fn limit(mut self, limit: NonZeroUsize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The user logging in.
    pub fn user(&self) -> UserKey {
        self.user
    }

    /// The device facts recorded.
    pub fn device_facts(&self) -> &Device {
        &self.device
    }

    /// The most sessions the user keeps, if limited.
    pub fn session_limit(&self) -> Option<NonZeroUsize> {
        self.limit
    }

    /// The binding the logged-in record gets.
    pub fn account(&self, now: Timestamp) -> Account {
        Account::new(self.user, self.device.clone(), now)
    }

    /// Which of the user's other live sessions the login revokes: given
    /// each with when it was last seen, the least recently seen beyond
    /// the limit (ties broken by key, so every store picks the same).
    pub fn excess(&self, mut others: Vec<(SessionKey, Timestamp)>) -> Vec<SessionKey> {
        let Some(limit) = self.limit else {
            return Vec::new();
        };
        // The new session takes one place of the limit.
        let keep = limit.get() - 1;
        let Some(excess) = others.len().checked_sub(keep).filter(|n| *n > 0) else {
            return Vec::new();
        };
        others.sort_unstable_by_key(|(key, seen)| (*seen, *key));
        others.truncate(excess);
        others.into_iter().map(|(key, _)| key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionId;

    #[test]
    fn the_least_recently_seen_beyond_the_limit_go() {
        let keys: Vec<SessionKey> = (0..4)
            .map(|_| SessionId::generate().unwrap().key())
            .collect();
        let at = Timestamp::from_unix_millis;
        let others = vec![
            (keys[0], at(30)),
            (keys[1], at(10)),
            (keys[2], at(20)),
            (keys[3], at(40)),
        ];
        let login = |n| Login::new(UserKey::of("u")).limit(NonZeroUsize::new(n).unwrap());
        assert_eq!(login(3).excess(others.clone()), [keys[1], keys[2]]);
        assert_eq!(login(1).excess(others.clone()).len(), 4);
        assert!(login(5).excess(others.clone()).is_empty());
        assert!(Login::new(UserKey::of("u")).excess(others).is_empty());
    }
}
