//! Login, list and revoke: the account calls of [`MemoryStorage`].
//!
//! A login locks its two keys, as `cycle` does; a login with a limit and
//! a revoke lock every key, since the sessions they may end are only known
//! once they look: both are rare, and short. List locks nothing: a record
//! is written before its key joins the index and leaves the index when it
//! is removed, so a listed key's record is there to read.

use session_core::{
    ChangeSet, Deadlines, Error, Listed, Login, LoginOutcome, Record, Revoke, SessionKey,
    Timestamp, UserKey,
};

use crate::MemoryStorage;
use crate::segments::Segment;

impl MemoryStorage {
    /// [`SessionStorage::login`](session_core::SessionStorage::login).
    pub(crate) fn log_in(
        &self,
        (old, new): (Option<&SessionKey>, &SessionKey),
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        let log_in = || self.log_in_locked((old, new), changes, deadlines, login, now);
        let outcome = match (login.session_limit(), old) {
            (Some(_), _) => self.locks.locked_all(log_in),
            (None, Some(old)) => self.locks.locked_pair((old, new), log_in),
            (None, None) => self.locks.locked(new, log_in),
        };
        self.sweep_if_due(now);
        outcome
    }

    /// The login, with its keys (or every key) locked.
    fn log_in_locked(
        &self,
        (old, new): (Option<&SessionKey>, &SessionKey),
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        let current = match old {
            Some(old) => match self.current(old)? {
                Some(current) => Some(current.record),
                None => return Ok(LoginOutcome::Gone),
            },
            None => None,
        };
        let before = current.as_ref().and_then(|record| record.account.clone());
        let next = match Record::logged_in(current, changes, deadlines, login, now) {
            Ok(next) => next,
            Err(refused) => return Ok(refused),
        };
        if old == Some(new) || self.is_live_at(new, now)? {
            return Ok(LoginOutcome::Collision);
        }
        let stored = self.stored(&next, now)?;
        // Only a limit needs the others: without one, a login costs the
        // same whatever the user's number of sessions.
        let victims = match login.session_limit() {
            Some(_) => login.excess(self.others_seen(&login.user(), old, now)?),
            None => Vec::new(),
        };
        let taken = self.segments.get(new).map(|found| found.segment);
        // A login is a session in real use: it starts protected.
        self.segments.put(new, stored, Segment::Protected, taken);
        self.index.add(login.user(), *new);
        if let Some(old) = old {
            self.segments.remove(old);
            if let Some(before) = before {
                self.index.remove(&before.user, old);
            }
        }
        for victim in &victims {
            self.segments.remove(victim);
            self.index.remove(&login.user(), victim);
        }
        Ok(LoginOutcome::LoggedIn {
            revoked: victims.len() as u64,
        })
    }

    /// The user's live sessions other than `old`, with when each was last
    /// seen: what a limit chooses from. Called with every key locked.
    fn others_seen(
        &self,
        user: &UserKey,
        old: Option<&SessionKey>,
        now: Timestamp,
    ) -> Result<Vec<(SessionKey, Timestamp)>, Error> {
        let mut others = Vec::new();
        for key in self.index.members(user) {
            if Some(&key) == old {
                continue;
            }
            if let Some(seen) = self.bound_live(&key, user, now)?.map(|(_, seen)| seen) {
                others.push((key, seen));
            }
        }
        Ok(others)
    }

    /// The record under `key` if it is live at `now` and bound to `user`,
    /// with when it was last seen.
    pub(crate) fn bound_live(
        &self,
        key: &SessionKey,
        user: &UserKey,
        now: Timestamp,
    ) -> Result<Option<(Record, Timestamp)>, Error> {
        // A key rotated since the index was read holds a forward: no record.
        let Some(found) = self
            .segments
            .find(key)
            .filter(|found| !found.stored.is_forward())
        else {
            return Ok(None);
        };
        let record = found.stored.record(self.max_record_bytes)?;
        let seen = match &record.account {
            Some(account) if account.user == *user && record.is_live(now) => account.last_seen,
            _ => return Ok(None),
        };
        Ok(Some((record, seen)))
    }

    /// [`SessionStorage::list`](session_core::SessionStorage::list); keys
    /// that no longer hold a live session of the user leave the index.
    pub(crate) fn list_sessions(
        &self,
        user: &UserKey,
        now: Timestamp,
    ) -> Result<Vec<Listed>, Error> {
        let mut listed = Vec::new();
        for key in self.index.members(user) {
            match self.bound_live(&key, user, now)? {
                Some((record, _)) => listed.extend(Listed::of(&key, &record)),
                None => self.index.remove(user, &key),
            }
        }
        Listed::sort(&mut listed);
        Ok(listed)
    }

    /// [`SessionStorage::revoke`](session_core::SessionStorage::revoke).
    pub(crate) fn revoke_sessions(
        &self,
        user: &UserKey,
        which: &Revoke,
        now: Timestamp,
    ) -> Result<u64, Error> {
        self.locks.locked_all(|| {
            let mut revoked = 0;
            for key in self.index.members(user) {
                if !which.selects(&key) {
                    continue;
                }
                if self.bound_live(&key, user, now)?.is_some() {
                    revoked += 1;
                }
                self.segments.remove(&key);
                self.index.remove(user, &key);
            }
            Ok(revoked)
        })
    }
}
