//! Where a request stands with its session: the state a handle's calls
//! move through, from unloaded to live, ended or failed.

use serde::de::DeserializeOwned;
use session_core::{
    ChangeSet, Deadlines, Lifetime, Record, SessionData, SessionId, SessionKey, Timestamp, UserKey,
    Value,
};

use std::sync::Arc;

use super::turns::{Ticket, Turns};
use crate::SessionError;
use crate::lifetime::Policy;

/// A session found in storage or created during this request.
pub(super) struct Live {
    pub(super) id: SessionId,
    /// The id's hash, computed once per request.
    pub(super) key: SessionKey,
    /// This request's place among those at the session, for its turns at
    /// writing it.
    pub(super) ticket: Ticket,
    /// The record as last known to be stored.
    pub(super) record: Record,
    /// Whether `record` is exactly what storage returned or wrote, so that
    /// `update_from` may use it; a conditioned update merges into it what
    /// it learns of one key, which leaves the other keys possibly stale.
    pub(super) exact: bool,
    /// Where the request found its id.
    pub(super) source: Source,
}

/// Where a request found the id of its live session, which decides what
/// its response tells the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// Its cookie named it: the browser has it.
    Cookie,
    /// Its cookie named an id rotated away, whose forward led here: the
    /// browser holds the old id, and is told nothing (the only cookie it
    /// could be sent is the new id, which it may not be the one to know).
    Forward,
    /// Created, cycled or rotated in this request: the browser lacks it.
    Fresh,
}

impl Live {
    /// The session's own lifetime once `changes` are written.
    pub(super) fn own_lifetime(&self, changes: &ChangeSet) -> Lifetime {
        changes.lifetime().unwrap_or(self.record.lifetime)
    }

    /// The deadlines a write of `changes` at `now` gives the session, by
    /// `policy` ([`Policy::extended`]).
    pub(super) fn extended(
        &self,
        policy: Policy,
        changes: &ChangeSet,
        now: Timestamp,
    ) -> Deadlines {
        let lifetimes = (self.record.lifetime, self.own_lifetime(changes));
        policy.extended(lifetimes, self.record.deadlines, now)
    }

    /// The deadlines a login (or cycle) carrying `changes` at `now` gives
    /// the session, by `policy` ([`Policy::at_login`]).
    pub(super) fn at_login(
        &self,
        policy: Policy,
        changes: &ChangeSet,
        now: Timestamp,
    ) -> Deadlines {
        let lifetimes = (self.record.lifetime, self.own_lifetime(changes));
        policy.at_login(lifetimes, self.record.deadlines, now)
    }

    /// Follows the forward its key led to: the session lives under `key`
    /// now, as `record`. Writes go there; the browser, which holds the old
    /// id, is told nothing more.
    pub(super) fn forward_to(&mut self, (key, record): (SessionKey, Record), turns: &Arc<Turns>) {
        self.key = key;
        self.ticket = turns.join(key);
        self.record = record;
        // Joined after the load: a write of the layer may have ended
        // between the two.
        self.exact = false;
        if self.source == Source::Cookie {
            self.source = Source::Forward;
        }
    }

    /// Takes `latest`, a later version of the record that another request
    /// of the layer wrote since this one loaded, as the one known to be
    /// stored: the copy loaded is then stale.
    pub(super) fn catch_up(&mut self, latest: Option<Record>) {
        if let Some(record) = latest {
            self.record = record;
            self.exact = true;
        }
    }

    /// The record stored once `changes` were written from this one and
    /// storage answered [`Updated`](session_core::UpdateOutcome::Updated)
    /// at `version`, if that can be told: the write was from an exact
    /// record and moved its version by one, so nobody wrote in between.
    /// The idle deadline may lag a touch made meanwhile, which every
    /// store's `update_from` checks or overwrites.
    pub(super) fn stored_after(
        &self,
        changes: &ChangeSet,
        (deadlines, now): (Deadlines, Timestamp),
        version: u64,
    ) -> Option<Record> {
        let next = self.record.version.checked_add(1) == Some(version);
        if !(self.exact && next) {
            return None;
        }
        self.record.clone().updated(changes, deadlines, now).ok()
    }
}

/// Where the request stands with its session.
pub(super) enum Origin {
    /// Nothing asked for the session yet.
    Unloaded,
    /// Loading failed: the session is unusable for this request.
    Failed,
    /// No live session: a write creates one.
    Anonymous,
    /// A live session.
    Live(Live),
    /// The session ended while the request ran (logged out elsewhere):
    /// nothing more is written, no cookie is sent.
    Ended,
}

/// The request's view of its session: the record as last known to be
/// stored with the request's changes over it, read through them rather
/// than kept as a second copy of the data.
pub(super) struct State {
    pub(super) origin: Origin,
    /// Changes to write at the end of the request.
    pub(super) changes: ChangeSet,
    /// The session was destroyed and the request carried a session cookie:
    /// send a removal cookie unless a new session replaces it.
    pub(super) removal: bool,
    /// An immediate write moved the deadlines: a persistent cookie's
    /// `Max-Age` must follow.
    pub(super) refresh_cookie: bool,
    /// An immediate write gave the session a new lifetime: its cookie is
    /// sent again, of whichever kind it now is.
    pub(super) lifetime_written: bool,
    /// Any method was called: the response depends on the cookie.
    pub(super) accessed: bool,
}

impl State {
    /// A request's state before anything asked for its session.
    pub(super) fn new() -> Self {
        Self {
            origin: Origin::Unloaded,
            changes: ChangeSet::new(),
            removal: false,
            refresh_cookie: false,
            lifetime_written: false,
            accessed: false,
        }
    }

    /// The data the changes apply to: the live record's, else none.
    fn base(&self) -> &SessionData {
        static NO_DATA: SessionData = SessionData::new();
        match &self.origin {
            Origin::Live(live) => &live.record.data,
            _ => &NO_DATA,
        }
    }

    /// The value the handler sees under `name`.
    pub(super) fn value(&self, name: &str) -> Option<&Value> {
        (self.changes.effect(name)).unwrap_or_else(|| self.base().get_value(name))
    }

    /// The value the handler sees under `name`, decoded as a `T`.
    pub(super) fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, SessionError> {
        let value = self.value(name).map(Value::decode);
        value.transpose().map_err(SessionError::Value)
    }

    /// The session's own lifetime as the handler sees it: set in this
    /// request, else as stored (the layer's defaults for no session).
    pub(super) fn own_lifetime(&self) -> Lifetime {
        match &self.origin {
            Origin::Live(live) => live.own_lifetime(&self.changes),
            _ => self.changes.lifetime().unwrap_or_default(),
        }
    }

    /// All the data the handler sees, as one copy (to write it whole).
    pub(super) fn view(&self) -> SessionData {
        let mut view = self.base().clone();
        self.changes.apply(&mut view);
        view
    }

    /// Catches the live session up with `latest` (see [`Live::catch_up`]):
    /// the handler then sees that record with the request's changes over it.
    pub(super) fn catch_up(&mut self, latest: Option<Record>) {
        if let Origin::Live(live) = &mut self.origin {
            live.catch_up(latest);
        }
    }

    /// The record of the live session, if it is exactly what is stored.
    pub(super) fn exact_record(&self) -> Option<Record> {
        match &self.origin {
            Origin::Live(live) if live.exact => Some(live.record.clone()),
            _ => None,
        }
    }

    /// The session ended elsewhere: drop everything pending.
    pub(super) fn end(&mut self) {
        self.origin = Origin::Ended;
        self.drop_changes();
    }

    /// Drops the changes not yet written, and what earlier writes owed
    /// the cookie.
    fn drop_changes(&mut self) {
        self.refresh_cookie = false;
        self.lifetime_written = false;
        self.changes = ChangeSet::new();
    }

    /// Drops every value but those under `keep`, here and in storage;
    /// a lifetime set in this request stays.
    pub(super) fn keep_only(&mut self, keep: &[&str]) {
        let kept: Vec<(&str, Value)> = keep
            .iter()
            .filter_map(|&key| Some((key, self.value(key)?.clone())))
            .collect();
        let mut changes = ChangeSet::new();
        changes.clear();
        for (key, value) in kept {
            changes.insert(key, value);
        }
        if let Some(lifetime) = self.changes.lifetime() {
            changes.set_lifetime(lifetime);
        }
        self.changes = changes;
    }

    /// Start over with no session (after `destroy`).
    pub(super) fn forget(&mut self) {
        self.origin = Origin::Anonymous;
        self.drop_changes();
    }

    /// The session was ended here (a logout, a revoke of it): start over,
    /// and have the browser drop the cookie if it sent one.
    pub(super) fn logged_out(&mut self, had_cookie: bool) {
        self.forget();
        // Whatever the cookie named (a live, expired or unknown session),
        // the browser should drop it on logout.
        self.removal = had_cookie;
    }

    /// The user the live session is logged in as, and the session's key.
    pub(super) fn bound(&self) -> Option<(UserKey, SessionKey)> {
        match &self.origin {
            Origin::Live(live) => Some((live.record.account.as_ref()?.user, live.key)),
            _ => None,
        }
    }
}

/// What a move to a fresh id (a cycle, a login) leaves: the session live
/// under the new id with nothing left to write, ended if it was gone, or
/// poisoned if storage failed.
pub(super) fn moved(
    state: &mut State,
    outcome: Result<Option<Live>, SessionError>,
) -> Result<(), SessionError> {
    match outcome {
        Ok(Some(live)) => {
            state.origin = Origin::Live(live);
            state.changes = ChangeSet::new();
            Ok(())
        }
        Ok(None) => {
            state.end();
            Err(SessionError::Gone)
        }
        Err(error) => Err(poison(state, error)),
    }
}

/// Marks the session unusable after a storage failure: the response
/// becomes the store-failure response and nothing more is written.
pub(super) fn poison(state: &mut State, error: SessionError) -> SessionError {
    if matches!(
        error,
        SessionError::Storage(_) | SessionError::Randomness(_)
    ) {
        tracing::error!(%error, "session storage failed during the request");
        state.origin = Origin::Failed;
    }
    error
}
