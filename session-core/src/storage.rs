//! The [`SessionStorage`] trait and the outcomes of its operations.

use async_trait::async_trait;

use crate::{
    ChangeSet, Conflict, Deadlines, Error, Listed, Login, Record, Revoke, SessionKey, Timestamp,
    UserKey,
};

/// Where sessions live: the contract every backend implements.
///
/// Storage sees only [`SessionKey`]s (hashes of ids), never the ids. Time is
/// always an argument: deadlines are checked against `now`, and native
/// expiry, where a backend has it, is set relative to `now`
/// ([`Deadlines::native_ttl`]), so a test on a moved clock behaves like
/// production.
///
/// | operation | outcome | rule |
/// |---|---|---|
/// | [`load`](Self::load) | `Option<Record>` | `None` if absent or past either deadline at `now`, even while still stored |
/// | [`create`](Self::create) | [`CreateOutcome`] | insert-only: a live record under the key is never touched |
/// | [`update`](Self::update) | [`UpdateOutcome`] | the change set applied atomically, all-or-nothing, to the record as stored now |
/// | [`update_from`](Self::update_from) | [`UpdateOutcome`] | `update`, with the record as the caller loaded it as a hint |
/// | [`touch`](Self::touch) | [`TouchOutcome`] | moves the idle deadline only; cannot lose a concurrent update |
/// | [`cycle`](Self::cycle) | [`CycleOutcome`] | the record, with the changes, moves to a new key; never both live afterwards |
/// | [`delete`](Self::delete) | `()` | idempotent |
/// | [`delete_expired`](Self::delete_expired) | count | `0` for backends with native expiry |
/// | [`login`](Self::login) | [`LoginOutcome`] | `cycle` (or `create`), binding the record to a user, atomically with its index |
/// | [`list`](Self::list) | `Vec<`[`Listed`]`>` | the user's sessions live at `now`, and only those |
/// | [`revoke`](Self::revoke) | count | once it returns, no revoked session loads or accepts a write |
/// | [`rotate`](Self::rotate) | [`RotateOutcome`] | the record moves to a new key as it is; the old key forwards to it for a grace window |
/// | [`load_following`](Self::load_following) | `Option<(SessionKey, Record)>` | `load`, following a forward `rotate` left |
///
/// **Forwards** (a store with [`Capabilities::rotation`]): `rotate` leaves
/// at the old key a forward to the new one, which ends at the grace
/// window's end (and with the record it names). A forward is no record:
/// `load` of it finds nothing, and every write to it (`update`, `touch`,
/// `cycle`, `login`, `rotate`) is `Gone` and writes nothing, so a caller
/// that follows it writes to the new key itself. Only
/// [`load_following`](Self::load_following) follows it, and only one step.
/// `delete` of a forward deletes the record it names too (a store may do
/// so until it drops the forward, a little after its window's end): a
/// logout through the old id ends the session. A forward is never listed; a
/// revoke of the record ends it, since it names nothing live any more.
/// **Accounts** (a store with [`Capabilities::accounts`]): a record bound
/// to a user ([`Record::account`]) is in that user's index from the moment
/// it loads until it is deleted, revoked, moved by `cycle` (the binding
/// moves with it) or expires; the index never keeps what expired once
/// cleanup or native expiry ran. A login racing a revoke of all the user's
/// sessions ends revoked or listed, never live and unlisted; a session
/// revoked while it is being cycled does not come back under its new key.
/// Every write of a bound record sets its `last_seen` to `now`. A store
/// without accounts keeps the defaults of the three calls, which fail with
/// [`Error::Unsupported`].
///
/// **Logout wins**: an operation on a record that is gone (deleted, or
/// expired at `now`) writes nothing and reports `Gone`; it never re-creates
/// the session.
///
/// **All or nothing, even when cancelled**: callers run every operation
/// under a timeout and HTTP servers drop request futures when clients go
/// away, so an operation whose future is dropped before it completes must
/// leave storage as if it had either completed or never started. (A store
/// whose operation takes several steps runs them where dropping cannot
/// interrupt them: one transaction, one server-side script, or a spawned
/// task.)
///
/// Outcomes are values; [`Error`] is for failures only. Corrupt stored bytes
/// are [`Error::Decode`] and are left as they were; a record whose data
/// would exceed the backend's size limit ([`SessionData::size`](crate::SessionData::size)) is
/// [`Error::TooLarge`] and is not written.
///
/// The trait is object safe and is used as `Arc<dyn SessionStorage>`. New
/// operations will only ever arrive as provided methods, so a custom store
/// keeps compiling. The [`conformance`](crate::conformance) suite (feature
/// `conformance`) checks an implementation against every rule here; its
/// documentation shows a complete custom store.
#[async_trait]
pub trait SessionStorage: Send + Sync + 'static {
    /// The live record under `key` at `now`.
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error>;

    /// Stores `record` under `key` unless a record live at `now` is already
    /// there, in which case nothing is written and the outcome is
    /// [`CreateOutcome::Collision`]. A record that is stored but expired at
    /// `now` is replaced.
    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error>;

    /// Applies `changes` atomically to the record under `key` as it is now.
    ///
    /// The idle deadline becomes `deadlines.idle()`; the absolute deadline
    /// becomes the earlier of the stored one and `deadlines.absolute()`, so
    /// an update never lengthens a session's absolute lifetime. See
    /// [`Record::updated`] for the whole rule.
    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error>;

    /// [`update`](Self::update), from a caller that holds the record as it
    /// loaded it (`loaded`). The outcome and what is stored afterwards are
    /// exactly those of `update`: `loaded` is a hint, never the truth. A
    /// store that can check within one atomic write that `loaded` is still
    /// what is stored (the same version, creation time and absolute
    /// deadline, live at `now`) may write `loaded` with the changes applied
    /// without reading first; if the check fails it must do what `update`
    /// does. The default calls `update`.
    async fn update_from(
        &self,
        key: &SessionKey,
        loaded: &Record,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let _ = loaded;
        self.update(key, changes, deadlines, now).await
    }

    /// Moves the idle deadline of the record under `key` to `idle_deadline`,
    /// clamped to its absolute deadline. Sends no data, so a concurrent
    /// update is never overwritten.
    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error>;

    /// [`touch`](Self::touch), from a caller that holds the record as it
    /// loaded it: a hint, as for [`update_from`](Self::update_from) (a
    /// store that keeps an index of bound records may use it to find the
    /// index to extend without reading first). The default calls `touch`.
    async fn touch_from(
        &self,
        key: &SessionKey,
        loaded: &Record,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        let _ = loaded;
        self.touch(key, idle_deadline, now).await
    }

    /// Moves the record under `old`, with `changes` applied and `deadlines`
    /// set as given, to `new` (a login). Afterwards `old` no longer loads;
    /// the two are never both live once this returns. A collision on `new`
    /// or a failure leaves the old session as it was.
    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error>;

    /// Deletes the record under `key`, if any (and takes it out of its
    /// user's index, if it is bound); under a forward, the forward and the
    /// record it names.
    async fn delete(&self, key: &SessionKey) -> Result<(), Error>;

    /// Deletes records expired at `now` and returns how many. Backends whose
    /// records expire natively return `0` and say so in
    /// [`capabilities`](Self::capabilities).
    async fn delete_expired(&self, now: Timestamp) -> Result<u64, Error>;

    /// Logs a user in: moves the record under `old` to `new` as
    /// [`cycle`](Self::cycle) does (with `old` = `None`, creates it from
    /// empty data as [`create`](Self::create) does), the record created at
    /// `now` and bound to `login`'s user ([`Record::logged_in`]), and adds
    /// it to the user's index in the same atomic step. A binding the old
    /// record had (another user's) goes. With a
    /// [limit](Login::limit), the user's least recently seen other
    /// sessions beyond it are revoked in the same step
    /// ([`Login::excess`]).
    ///
    /// A failure, or a future dropped before completing, leaves the old
    /// session as it was and the new key unused.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] from a store without accounts (the default).
    async fn login(
        &self,
        old: Option<&SessionKey>,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        let _ = (old, new, changes, deadlines, login, now);
        Err(Error::Unsupported("accounts"))
    }

    /// The sessions of `user` live at `now`, most recently seen first
    /// ([`Listed::sort`]). Stale index entries met on the way may be pruned.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] from a store without accounts (the default).
    async fn list(&self, user: &UserKey, now: Timestamp) -> Result<Vec<Listed>, Error> {
        let _ = (user, now);
        Err(Error::Unsupported("accounts"))
    }

    /// Ends the sessions of `user` that `which` selects, and returns how
    /// many live ones it ended (`0` for a handle no session of the user
    /// has). When it returns, none of them loads any more, and a write in
    /// flight on one of them finds it gone.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] from a store without accounts (the default).
    /// After another error, some of the sessions may be revoked and the
    /// rest are as they were: the call can be repeated.
    async fn revoke(&self, user: &UserKey, which: &Revoke, now: Timestamp) -> Result<u64, Error> {
        let _ = (user, which, now);
        Err(Error::Unsupported("accounts"))
    }

    /// Gives the live record under `old` a new key: it moves to `new` as
    /// it is (data, deadlines, version, binding, lifetime; its key issued
    /// and its account seen at `now`, see [`Record::rotated`]), and `old`
    /// forwards to it until `grace_end` (see the forwards above), so that
    /// requests sent with the old id before it learned the new one still
    /// find the session. A bound record's index names `new` instead of
    /// `old` in the same step. `Gone` (nothing written) if `old` holds no
    /// live record; `Collision` if `new` does.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] from a store without rotation (the default).
    async fn rotate(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        grace_end: Timestamp,
        now: Timestamp,
    ) -> Result<RotateOutcome, Error> {
        let _ = (old, new, grace_end, now);
        Err(Error::Unsupported("rotation"))
    }

    /// [`load`](Self::load), following a live forward `rotate` left under
    /// `key`: the live record `key` names and the key it is stored under
    /// (`key` itself when it is no forward). The default, for a store
    /// without rotation, is `load`.
    async fn load_following(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<(SessionKey, Record)>, Error> {
        Ok(self.load(key, now).await?.map(|record| (*key, record)))
    }

    /// What the backend does on its own.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
}

/// What a backend does on its own, beyond the contract.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Records disappear by themselves some time after their deadline
    /// (Redis TTL, moka expiry); [`SessionStorage::delete_expired`] is a
    /// no-op returning `0`.
    pub native_expiry: bool,
    /// The store keeps an index of each user's sessions:
    /// [`login`](SessionStorage::login), [`list`](SessionStorage::list)
    /// and [`revoke`](SessionStorage::revoke) work. Without it they fail
    /// with [`Error::Unsupported`].
    pub accounts: bool,
    /// The store rotates keys with a grace window:
    /// [`rotate`](SessionStorage::rotate) works and
    /// [`load_following`](SessionStorage::load_following) follows its
    /// forwards. Without it `rotate` fails with [`Error::Unsupported`].
    pub rotation: bool,
}

impl Capabilities {
    /// These capabilities with accounts.
    #[must_use]
    pub const fn with_accounts(mut self) -> Self {
        self.accounts = true;
        self
    }

    /// These capabilities with rotation.
    #[must_use]
    pub const fn with_rotation(mut self) -> Self {
        self.rotation = true;
        self
    }

    /// These capabilities with native expiry.
    #[must_use]
    pub const fn with_native_expiry(mut self) -> Self {
        self.native_expiry = true;
        self
    }
}

/// Outcome of [`SessionStorage::create`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum CreateOutcome {
    /// The record was stored.
    Created,
    /// A live record already holds the key; nothing was written.
    Collision,
}

/// Outcome of [`SessionStorage::update`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum UpdateOutcome {
    /// The changes were written; the record is now at `version`.
    Updated {
        /// The record's version after the write.
        version: u64,
    },
    /// No live record under the key; nothing was written.
    Gone,
    /// A condition no longer held; nothing was written.
    Conflict {
        /// The current values of the conditioned keys.
        current: Conflict,
    },
}

/// Outcome of [`SessionStorage::touch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum TouchOutcome {
    /// The idle deadline was moved.
    Touched,
    /// No live record under the key; nothing was written.
    Gone,
}

/// Outcome of [`SessionStorage::cycle`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum CycleOutcome {
    /// The record now lives under the new key only.
    Cycled,
    /// No live record under the old key; nothing was written.
    Gone,
    /// A live record already holds the new key; nothing was written and the
    /// old session is as it was.
    Collision,
    /// A condition of the change set no longer held; nothing was written.
    Conflict {
        /// The current values of the conditioned keys.
        current: Conflict,
    },
}

/// Outcome of [`SessionStorage::rotate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum RotateOutcome {
    /// The record now lives under the new key; the old one forwards to it.
    Rotated,
    /// No live record under the old key; nothing was written.
    Gone,
    /// A live record already holds the new key; nothing was written.
    Collision,
}

/// Outcome of [`SessionStorage::login`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum LoginOutcome {
    /// The record now lives under the new key only, bound to the user;
    /// `revoked` other sessions of the user went to keep the limit.
    LoggedIn {
        /// How many sessions the limit revoked.
        revoked: u64,
    },
    /// No live record under the old key; nothing was written.
    Gone,
    /// A live record already holds the new key; nothing was written.
    Collision,
    /// A condition of the change set no longer held; nothing was written.
    Conflict {
        /// The current values of the conditioned keys.
        current: Conflict,
    },
}
