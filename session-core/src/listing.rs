//! A user's sessions as storage lists them, and which of them a revoke
//! removes.

use crate::{Account, Deadlines, Device, Record, SessionHandle, SessionKey, Timestamp};

/// One live session of a user, as [`SessionStorage::list`](crate::SessionStorage::list)
/// returns it: what a "your devices" page shows, and the handle to revoke
/// it by.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Listed {
    /// The session's name in the list; not an id, never usable as one.
    pub handle: SessionHandle,
    /// When the session was logged in.
    pub created_at: Timestamp,
    /// The last write to it ([`Account::last_seen`]).
    pub last_seen: Timestamp,
    /// When it ends, unless used again before its idle deadline.
    pub deadlines: Deadlines,
    /// What the application recorded at login.
    pub device: Device,
}

impl Listed {
    /// The listing of the record under `key`, if it is bound.
    pub fn of(key: &SessionKey, record: &Record) -> Option<Self> {
        let Account {
            device, last_seen, ..
        } = record.account.as_deref()?;
        Some(Self {
            handle: SessionHandle::of(key),
            created_at: record.created_at,
            last_seen: *last_seen,
            deadlines: record.deadlines,
            device: device.clone(),
        })
    }

    /// Most recently seen first, then by handle: the order `list` returns.
    pub fn sort(listed: &mut [Self]) {
        listed.sort_unstable_by(|a, b| (b.last_seen, a.handle).cmp(&(a.last_seen, b.handle)));
    }
}

/// Which of a user's sessions [`SessionStorage::revoke`](crate::SessionStorage::revoke)
/// ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoke {
    /// The one with this handle (none if no session of the user has it).
    One(SessionHandle),
    /// All but this one: "log out my other devices".
    AllBut(SessionKey),
    /// All of them: "log out everywhere", or a password change.
    All,
}

impl Revoke {
    /// Whether the session under `key` is one this revoke ends.
    pub fn selects(&self, key: &SessionKey) -> bool {
        match self {
            Self::One(handle) => SessionHandle::of(key) == *handle,
            Self::AllBut(kept) => key != kept,
            Self::All => true,
        }
    }
}
