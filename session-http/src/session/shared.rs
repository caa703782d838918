//! What every request of one layer shares: the storage, the configuration
//! and its policies, the sessions' turns at updating, and the storage calls
//! that draw fresh ids (create, cycle, login).

use std::sync::Arc;

use session_core::{
    ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, Lifetime, Login, LoginOutcome,
    Record, SessionData, SessionId, SessionKey, SessionStorage, Timestamp, UpdateOutcome,
};

use super::state::Live;
use super::turns::Turns;
use crate::SessionError;
use crate::config::SessionConfig;
use crate::cookie::parse::Candidates;
use crate::cookie::rules::CookieRules;
use crate::lifetime::Policy;
use crate::throttle::Throttles;

/// How many fresh ids a create or cycle draws before giving up on
/// collisions (with 128-bit ids, one is all it ever takes).
const ID_ATTEMPTS: u32 = 3;

/// What every request of one layer shares: the storage and the
/// configuration.
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn SessionStorage>,
    pub(crate) config: SessionConfig,
    pub(super) policy: Policy,
    pub(super) cookies: CookieRules,
    pub(super) throttles: Throttles,
    /// The requests at each session, and their turns at writing it.
    pub(crate) turns: Arc<Turns>,
}

impl Shared {
    pub(crate) fn new(storage: Arc<dyn SessionStorage>, config: SessionConfig) -> Self {
        Self {
            storage,
            policy: Policy::new(&config),
            cookies: CookieRules::new(&config),
            config,
            throttles: Throttles::default(),
            turns: Arc::default(),
        }
    }

    pub(super) fn now(&self) -> Timestamp {
        self.config.clock.now()
    }

    /// Runs a storage call under the configured timeout.
    pub(super) async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let limit = self.config.store_timeout;
        tokio::time::timeout(limit, call)
            .await
            .unwrap_or(Err(Error::Timeout(limit)))
    }

    /// Writes `changes` to `live`'s record, under the timeout; from the
    /// record as loaded when it is exact (a store may skip its read), else
    /// plainly. The outcome is the same either way.
    pub(super) async fn update(
        &self,
        live: &Live,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let (storage, key) = (&self.storage, &live.key);
        if live.exact {
            let write = storage.update_from(key, &live.record, changes, deadlines, now);
            self.timed(write).await
        } else {
            self.timed(storage.update(key, changes, deadlines, now))
                .await
        }
    }

    /// Logs, at a rate nobody can flood, the session cookies a request
    /// carried that were not looked up.
    pub(super) fn note_bad_cookies(&self, candidates: &Candidates) {
        let bad = [
            (candidates.malformed, &self.throttles.malformed, "malformed"),
            (
                candidates.excess,
                &self.throttles.excess,
                "beyond the first few",
            ),
        ];
        for (events, throttle, what) in bad {
            if events == 0 {
                continue;
            }
            tracing::debug!(count = events, "ignoring session cookies {what}");
            if let Some(count) = throttle.count(events.try_into().unwrap_or(u64::MAX), self.now()) {
                tracing::warn!(
                    count,
                    "ignored session cookies {what}, since the last such line"
                );
            }
        }
    }

    /// Stores `data` as a new session living by `own` under a fresh id.
    pub(super) async fn create(
        &self,
        data: SessionData,
        own: Lifetime,
        now: Timestamp,
    ) -> Result<Live, SessionError> {
        let record = Record::new(data, now, self.policy.fresh(own, now)).with_lifetime(own);
        let stored = &record;
        let (id, key) = self
            .under_fresh_id(|key| async move {
                let created = self.timed(self.storage.create(&key, stored, now)).await?;
                Ok(match created {
                    CreateOutcome::Created => Fresh::Written(()),
                    CreateOutcome::Collision => Fresh::Collision,
                })
            })
            .await?
            .0;
        tracing::debug!(%key, "session created");
        Ok(Live {
            id,
            key,
            ticket: self.turns.join(key),
            record,
            exact: true,
            from_cookie: false,
        })
    }

    /// Moves `live`, with `changes` applied (the handler sees `view`), to a
    /// fresh id now. `None` if the session ended meanwhile.
    pub(super) async fn cycle(
        &self,
        live: &Live,
        changes: &ChangeSet,
        view: SessionData,
    ) -> Result<Option<Live>, SessionError> {
        let now = self.now();
        let own = live.own_lifetime(changes);
        let lifetimes = (live.record.lifetime, own);
        let deadlines = self.policy.at_login(lifetimes, live.record.deadlines, now);
        let old = live.key;
        let ((id, key), cycled) = self
            .under_fresh_id(|new| async move {
                let cycle = self.storage.cycle(&old, &new, changes, deadlines, now);
                Ok(match self.timed(cycle).await? {
                    CycleOutcome::Cycled => Fresh::Written(true),
                    CycleOutcome::Collision => Fresh::Collision,
                    // Deferred changes carry no conditions; a conflict can
                    // only mean the record changed into something this
                    // request cannot log in: end it like a logout.
                    CycleOutcome::Gone | CycleOutcome::Conflict { .. } => Fresh::Written(false),
                })
            })
            .await?;
        if !cycled {
            tracing::debug!(key = %old, "session ended during the request; not cycled");
            return Ok(None);
        }
        tracing::debug!(%old, new = %key, "session id cycled");
        let version = live.record.version.saturating_add(1);
        let mut record =
            Record::from_parts(view, live.record.created_at, deadlines, version).with_lifetime(own);
        // The binding moves with the record.
        record.account = live.record.account.clone();
        Ok(Some(Live {
            id,
            key,
            ticket: self.turns.join(key),
            record,
            // Concurrent writes to the old record moved with it, unseen.
            exact: false,
            from_cookie: false,
        }))
    }

    /// Logs `login`'s user in under a fresh id now: `old` moves there with
    /// `changes` applied, or, with no stored session, a session holding
    /// `changes` is created there (the handler sees `view` either way).
    /// `None` if `old` ended meanwhile.
    pub(super) async fn login(
        &self,
        old: Option<&Live>,
        changes: &ChangeSet,
        view: SessionData,
        login: &Login,
    ) -> Result<Option<Live>, SessionError> {
        let now = self.now();
        let own = old.map_or_else(
            || changes.lifetime().unwrap_or_default(),
            |live| live.own_lifetime(changes),
        );
        let deadlines = old.map_or_else(
            || self.policy.fresh(own, now),
            |live| {
                let lifetimes = (live.record.lifetime, own);
                self.policy.at_login(lifetimes, live.record.deadlines, now)
            },
        );
        let from = old.map(|live| live.key);
        let ((id, key), revoked) = self
            .under_fresh_id(|new| async move {
                let call =
                    (self.storage).login(from.as_ref(), &new, changes, deadlines, login, now);
                Ok(match self.timed(call).await? {
                    LoginOutcome::LoggedIn { revoked } => Fresh::Written(Some(revoked)),
                    LoginOutcome::Collision => Fresh::Collision,
                    // As for a cycle: a record this request cannot log in.
                    LoginOutcome::Gone | LoginOutcome::Conflict { .. } => Fresh::Written(None),
                })
            })
            .await?;
        let Some(revoked) = revoked else {
            tracing::debug!("session ended during the request; not logged in");
            return Ok(None);
        };
        tracing::debug!(new = %key, revoked, "session logged in");
        // What `Record::logged_in` stores; exact when no concurrent write
        // to an old record could have moved with it.
        let version = old.map_or(1, |live| live.record.version.saturating_add(1));
        let record = Record::from_parts(view, now, deadlines, version)
            .with_account(Some(login.account(now)))
            .with_lifetime(own);
        Ok(Some(Live {
            id,
            key,
            ticket: self.turns.join(key),
            record,
            exact: old.is_none(),
            from_cookie: false,
        }))
    }

    /// Runs `write` under fresh ids until one does not collide (with
    /// 128-bit ids, the first never does), and returns that id with what
    /// the write returned.
    async fn under_fresh_id<T, W, Fut>(
        &self,
        mut write: W,
    ) -> Result<((SessionId, SessionKey), T), SessionError>
    where
        W: FnMut(SessionKey) -> Fut,
        Fut: Future<Output = Result<Fresh<T>, Error>>,
    {
        for _ in 0..ID_ATTEMPTS {
            let id = SessionId::generate()?;
            let key = id.key();
            match write(key).await.map_err(SessionError::Storage)? {
                Fresh::Written(written) => return Ok(((id, key), written)),
                Fresh::Collision => tracing::warn!(%key, "session id collision"),
            }
        }
        Err(SessionError::Storage(Error::backend(
            "every fresh session id collided",
        )))
    }
}

/// What a write under a fresh id did.
enum Fresh<T> {
    /// It was written (or found the session gone): done.
    Written(T),
    /// A live session holds the id already: draw another.
    Collision,
}
