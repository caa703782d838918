//! The stored form of a session: its data, timestamps and version, and the
//! versioned byte encoding stores that keep whole records use.

use crate::codec::{self, Extras, Header};
use crate::storage::{CycleOutcome, LoginOutcome, UpdateOutcome};
use crate::{
    Account, ChangeSet, Conflict, Deadlines, Error, Lifetime, Login, SessionData, Stamp, Timestamp,
};

/// Default cap on a record's size ([`SessionData::size`]): 64 KiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024;

/// A session as storage holds it.
///
/// The transition methods ([`updated`](Self::updated),
/// [`touched`](Self::touched), [`cycled`](Self::cycled)) are the contract's
/// rules applied to the record a store holds now; a store that keeps whole
/// records calls them inside its atomic section and writes what they return.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The session's values.
    pub data: SessionData,
    /// When the session was created (or logged in).
    pub created_at: Timestamp,
    /// When the key it lives under was given to it: its creation or login,
    /// the latest `cycle` or [`rotate`](crate::SessionStorage::rotate).
    /// What periodic rotation counts from.
    pub issued_at: Timestamp,
    /// When the session ends.
    pub deadlines: Deadlines,
    /// Bumped by every write that changes the data.
    pub version: u64,
    /// The user the session is logged in as, if any: set by
    /// [`SessionStorage::login`](crate::SessionStorage::login), kept by
    /// every other write, which also moves its `last_seen` to `now`.
    /// Boxed: most sessions have none, and a record is moved often enough
    /// on every request that 64 bytes more of it would show.
    pub account: Option<Box<Account>>,
    /// The session's own lifetime, where a handler chose one (the
    /// default: its layer's). Set by a write whose change set carries one
    /// ([`ChangeSet::set_lifetime`]), kept by every other write, moved
    /// with the record by `cycle` and `login`.
    pub lifetime: Lifetime,
}

impl Record {
    /// A new record at version 1.
    pub fn new(data: SessionData, created_at: Timestamp, deadlines: Deadlines) -> Self {
        Self::from_parts(data, created_at, deadlines, 1)
    }

    /// A record rebuilt from what a backend stored field by field.
    pub fn from_parts(
        data: SessionData,
        created_at: Timestamp,
        deadlines: Deadlines,
        version: u64,
    ) -> Self {
        Self {
            data,
            created_at,
            issued_at: created_at,
            deadlines,
            version,
            account: None,
            lifetime: Lifetime::new(),
        }
    }

    /// This record, its key given to it at `issued_at`.
    #[must_use]
    pub fn with_issued_at(mut self, issued_at: Timestamp) -> Self {
        self.issued_at = issued_at;
        self
    }

    /// This record, bound to `account`.
    #[must_use]
    pub fn with_account(mut self, account: Option<Account>) -> Self {
        self.account = account.map(Box::new);
        self
    }

    /// This record, with its own `lifetime`.
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Fails with [`Error::TooLarge`] if the data is over `limit` bytes as
    /// [`SessionData::size`] measures it.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`].
    pub fn check_size(&self, limit: usize) -> Result<(), Error> {
        let size = self.data.size();
        if size > limit {
            return Err(Error::TooLarge { size, limit });
        }
        Ok(())
    }

    /// Whether the record is live at `now` (before both deadlines).
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.deadlines.is_live(now)
    }

    /// Encodes the record: [`FORMAT_V1`](crate::FORMAT_V1), then MessagePack.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if the data is over `limit` bytes
    /// ([`check_size`](Self::check_size)); [`Error::Encode`] if it cannot be
    /// encoded at all.
    pub fn encode(&self, limit: usize) -> Result<Vec<u8>, Error> {
        self.check_size(limit)?;
        let header = Header {
            created_at: self.created_at.as_unix_millis(),
            idle: self.deadlines.idle().as_unix_millis(),
            absolute: self.deadlines.absolute().as_unix_millis(),
            version: self.version,
        };
        let extras = Extras {
            account: self.account.as_deref(),
            lifetime: self.lifetime,
            issued_at: (self.issued_at != self.created_at).then(|| self.issued_at.as_unix_millis()),
        };
        codec::encode_record(header, &self.data, extras)
    }

    /// Decodes bytes made by [`encode`](Self::encode).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] for anything else: empty input, an unknown format
    /// byte, truncated or corrupt MessagePack, trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let (header, data, account, lifetime, issued_at) = codec::decode_record(bytes)?;
        let Stamp {
            created_at,
            deadlines,
            version,
        } = Stamp::of(header);
        Ok(Self {
            data,
            created_at,
            issued_at: issued_at.map_or(created_at, Timestamp::from_unix_millis),
            deadlines,
            version,
            account: account.map(Box::new),
            lifetime,
        })
    }

    /// `update` applied to this record as stored now.
    ///
    /// # Errors
    ///
    /// The outcome to report, with nothing to write: [`UpdateOutcome::Gone`]
    /// if the record is not live at `now`, [`UpdateOutcome::Conflict`] if a
    /// condition does not hold. `Ok` is the record to write; its version is
    /// the one to report in [`UpdateOutcome::Updated`].
    pub fn updated(
        self,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<Self, UpdateOutcome> {
        let deadlines = self.deadlines.narrowed_by(deadlines);
        self.changed(changes, deadlines, now)
            .map_err(|refused| match refused {
                Refused::Gone => UpdateOutcome::Gone,
                Refused::Conflict(current) => UpdateOutcome::Conflict { current },
            })
    }

    /// `touch` applied to this record as stored now: the idle deadline moved
    /// (never past the absolute one) and the account seen at `now`, nothing
    /// else changed. `None` if the record is not live at `now`.
    pub fn touched(mut self, idle_deadline: Timestamp, now: Timestamp) -> Option<Self> {
        self.is_live(now).then(|| {
            self.deadlines = self.deadlines.with_idle(idle_deadline);
            self.seen(now);
            self
        })
    }

    /// `login` applied to the record stored under the old key (`None` for
    /// a login from no stored session, which starts from empty data): the
    /// record to write under the new key, with the changes applied,
    /// `deadlines` as given, created at `now` and bound to the login's
    /// user.
    ///
    /// # Errors
    ///
    /// [`LoginOutcome::Gone`] if the old record is not live at `now`,
    /// [`LoginOutcome::Conflict`] if a condition does not hold.
    pub fn logged_in(
        old: Option<Self>,
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<Self, LoginOutcome> {
        // Version 0 before the changes, so a session created here starts at
        // version 1, as one created by `create` does.
        let old = old.unwrap_or_else(|| Self::from_parts(SessionData::new(), now, deadlines, 0));
        let mut next = old
            .changed(changes, deadlines, now)
            .map_err(|refused| match refused {
                Refused::Gone => LoginOutcome::Gone,
                Refused::Conflict(current) => LoginOutcome::Conflict { current },
            })?;
        next.created_at = now;
        next.issued_at = now;
        next.account = Some(Box::new(login.account(now)));
        Ok(next)
    }

    /// `cycle` applied to the old record as stored now: the record to write
    /// under the new key, with the changes applied and `deadlines` as given
    /// (a login may reset the absolute deadline), its key issued at `now`.
    ///
    /// # Errors
    ///
    /// [`CycleOutcome::Gone`] if the record is not live at `now`,
    /// [`CycleOutcome::Conflict`] if a condition does not hold.
    pub fn cycled(
        self,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<Self, CycleOutcome> {
        let mut next = self
            .changed(changes, deadlines, now)
            .map_err(|refused| match refused {
                Refused::Gone => CycleOutcome::Gone,
                Refused::Conflict(current) => CycleOutcome::Conflict { current },
            })?;
        next.issued_at = now;
        Ok(next)
    }

    /// `rotate` applied to the record as stored now: the same record (data,
    /// deadlines, version, binding, lifetime) with its key issued at `now`
    /// and its account seen at `now`; `None` if it is not live at `now`.
    pub fn rotated(mut self, now: Timestamp) -> Option<Self> {
        self.is_live(now).then(|| {
            self.issued_at = now;
            self.seen(now);
            self
        })
    }

    /// The rule `update` and `cycle` share: a live record whose conditions
    /// hold gets the changes (its lifetime too, if they carry one), the
    /// deadlines and a new version.
    fn changed(
        mut self,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<Self, Refused> {
        if !self.is_live(now) {
            return Err(Refused::Gone);
        }
        changes.check(&self.data).map_err(Refused::Conflict)?;
        changes.apply(&mut self.data);
        if let Some(lifetime) = changes.lifetime() {
            self.lifetime = lifetime;
        }
        self.deadlines = deadlines;
        // Saturating: stored bytes must never make this panic.
        self.version = self.version.saturating_add(1);
        self.seen(now);
        Ok(self)
    }

    /// Marks the account, if any, as seen at `now`.
    fn seen(&mut self, now: Timestamp) {
        if let Some(account) = &mut self.account {
            account.last_seen = account.last_seen.max(now);
        }
    }
}

/// Why a change set writes nothing.
enum Refused {
    Gone,
    Conflict(Conflict),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    fn record() -> Record {
        let mut data = SessionData::new();
        data.insert("n", &1).unwrap();
        let at = Timestamp::from_unix_millis;
        Record::new(data, at(10), Deadlines::new(at(100), at(200)))
    }

    #[test]
    fn encode_decode_round_trip() {
        let record = record();
        let bytes = record.encode(DEFAULT_MAX_RECORD_BYTES).unwrap();
        assert_eq!(bytes[0], crate::FORMAT_V1);
        assert_eq!(Record::decode(&bytes).unwrap(), record);
    }

    #[test]
    fn corrupt_bytes_are_decode_errors() {
        let bytes = record().encode(DEFAULT_MAX_RECORD_BYTES).unwrap();
        let mut unknown_format = bytes.clone();
        unknown_format[0] = 9;
        let mut trailing = bytes.clone();
        trailing.push(0xc0);
        for bad in [
            &[][..],
            &[crate::FORMAT_V1],
            &bytes[..bytes.len() - 1],
            &unknown_format,
            &trailing,
            b"\x01garbage",
        ] {
            assert!(
                matches!(Record::decode(bad), Err(Error::Decode(_))),
                "{bad:?}"
            );
        }
    }

    /// Stored bytes nested deeper than a worker thread's stack can recurse
    /// are a decode error, not an abort. The serde decoder before 52cedd1
    /// recursed into unknown fields and, in debug builds, overflowed
    /// tokio's 2 MiB worker stack at 1000 levels, below its depth limit.
    #[test]
    fn deep_nesting_is_a_decode_error_on_a_worker_stack() {
        let mut bytes = record().encode(DEFAULT_MAX_RECORD_BYTES).unwrap();
        // A sixth field, "x": 1000 nested one-element arrays around nil.
        assert_eq!(bytes[1], 0x85, "a map of five fields");
        bytes[1] = 0x86;
        bytes.extend([0xa1, b'x']);
        bytes.extend([0x91; 1000]);
        bytes.push(0xc0);
        let worker = std::thread::Builder::new().stack_size(2 * 1024 * 1024);
        let decoded = worker.spawn(move || Record::decode(&bytes)).unwrap();
        assert!(matches!(decoded.join().unwrap(), Err(Error::Decode(_))));
    }

    #[test]
    fn over_the_limit_is_too_large() {
        let mut record = record();
        let blob = "x".repeat(DEFAULT_MAX_RECORD_BYTES);
        record.data.insert("blob", &blob).unwrap();
        let err = record.encode(DEFAULT_MAX_RECORD_BYTES).unwrap_err();
        assert!(matches!(err, Error::TooLarge { size, limit } if size > limit));
    }

    #[test]
    fn the_version_saturates() {
        let mut stored = record();
        stored.version = u64::MAX;
        let deadlines = stored.deadlines;
        let next = stored.updated(
            &ChangeSet::new(),
            deadlines,
            Timestamp::from_unix_millis(50),
        );
        assert_eq!(next.unwrap().version, u64::MAX);
    }

    #[test]
    fn a_login_from_no_session_is_at_version_one() {
        let at = Timestamp::from_unix_millis;
        let login = Login::new(crate::UserKey::of("ada"));
        let deadlines = Deadlines::new(at(100), at(200));
        let next = Record::logged_in(None, &ChangeSet::new(), deadlines, &login, at(10)).unwrap();
        assert_eq!(next.version, 1);
        let from_old =
            Record::logged_in(Some(record()), &ChangeSet::new(), deadlines, &login, at(10));
        assert_eq!(from_old.unwrap().version, 2);
    }

    #[test]
    fn updated_bumps_version_and_never_extends_absolute() {
        let at = Timestamp::from_unix_millis;
        let mut changes = ChangeSet::new();
        changes.insert("m", Value::encode(&2).unwrap());
        let next = record()
            .updated(&changes, Deadlines::new(at(150), at(900)), at(50))
            .unwrap();
        assert_eq!(next.version, 2);
        assert_eq!(next.deadlines, Deadlines::new(at(150), at(200)));
        assert!(matches!(
            record().updated(&changes, next.deadlines, at(100)),
            Err(UpdateOutcome::Gone)
        ));
    }
}
