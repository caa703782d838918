//! What every request of one layer shares: the storage, the configuration
//! and its policies, the sessions' turns at updating, and the storage calls
//! that draw fresh ids (create, cycle, login).

use std::sync::Arc;

use session_core::{
    ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, Lifetime, Login, LoginOutcome,
    Record, RotateOutcome, SessionData, SessionId, SessionKey, SessionStorage, Timestamp,
    UpdateOutcome,
};

use super::state::{Live, Source};
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
    /// Ids are rotated: configured, and the store can.
    pub(super) rotates: bool,
}

impl Shared {
    pub(crate) fn new(storage: Arc<dyn SessionStorage>, config: SessionConfig) -> Self {
        let rotates = config.rotate_after.is_some() && storage.capabilities().rotation;
        if config.rotate_after.is_some() && !rotates {
            tracing::warn!(
                "rotate_after is set, but the session store cannot rotate ids: they are not rotated"
            );
        }
        Self {
            rotates,
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

    /// The live record `key` names and the key it lives under, under the
    /// timeout: through a forward if ids rotate.
    pub(super) async fn lookup(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<(SessionKey, Record)>, Error> {
        if self.rotates {
            self.timed(self.storage.load_following(key, now)).await
        } else {
            let record = self.timed(self.storage.load(key, now)).await?;
            Ok(record.map(|record| (*key, record)))
        }
    }

    /// Where a write to `key` that found it gone goes instead, if ids
    /// rotate: the key its forward names, with the record there. A request
    /// that loaded the session before its id was rotated writes there, as
    /// the rotation's grace window promises.
    pub(super) async fn follow(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<(SessionKey, Record)>, Error> {
        if !self.rotates {
            return Ok(None);
        }
        let found = self.lookup(key, now).await?;
        Ok(found.filter(|(at, _)| at != key))
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
            source: Source::Fresh,
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
        let deadlines = live.at_login(self.policy, changes, now);
        let old = live.key;
        let cycle_from = |from: SessionKey| async move {
            let ((id, key), cycled) = self
                .under_fresh_id(|new| async move {
                    let cycle = self.storage.cycle(&from, &new, changes, deadlines, now);
                    Ok(match self.timed(cycle).await? {
                        CycleOutcome::Cycled => Fresh::Written(true),
                        CycleOutcome::Collision => Fresh::Collision,
                        // Deferred changes carry no conditions; a conflict
                        // can only mean the record changed into something
                        // this request cannot log in: end it like a logout.
                        CycleOutcome::Gone | CycleOutcome::Conflict { .. } => Fresh::Written(false),
                    })
                })
                .await?;
            Ok(cycled.then_some((id, key)))
        };
        let Some((id, key)) = self.here_or_forward(old, now, cycle_from).await? else {
            tracing::debug!(key = %old, "session ended during the request; not cycled");
            return Ok(None);
        };
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
            source: Source::Fresh,
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
            |live| live.at_login(self.policy, changes, now),
        );
        let log_in_from = |from: Option<SessionKey>| async move {
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
            Ok(revoked.map(|revoked| (id, key, revoked)))
        };
        let logged_in = match old {
            Some(live) => {
                let from = |key| log_in_from(Some(key));
                self.here_or_forward(live.key, now, from).await?
            }
            None => log_in_from(None).await?,
        };
        let Some((id, key, revoked)) = logged_in else {
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
            source: Source::Fresh,
        }))
    }

    /// Runs `write` from `key`; if it found the session gone and ids
    /// rotate, once more from where the forward under `key` leads (a
    /// request that loaded the session before its id was rotated).
    async fn here_or_forward<T, W, Fut>(
        &self,
        key: SessionKey,
        now: Timestamp,
        write: W,
    ) -> Result<Option<T>, SessionError>
    where
        W: Fn(SessionKey) -> Fut,
        Fut: Future<Output = Result<Option<T>, SessionError>>,
    {
        if let Some(done) = write(key).await? {
            return Ok(Some(done));
        }
        match self
            .follow(&key, now)
            .await
            .map_err(SessionError::Storage)?
        {
            Some((to, _)) => write(to).await,
            None => Ok(None),
        }
    }

    /// Gives `live` a fresh id now, its old one forwarding to it for the
    /// grace window (see [`SessionConfigBuilder::rotate_after`](crate::SessionConfigBuilder::rotate_after)).
    pub(super) async fn rotate(&self, live: &Live, now: Timestamp) -> Rotation {
        let grace_end = now.saturating_add(self.config.rotation_grace);
        let old = live.key;
        let rotated = self
            .under_fresh_id(|new| async move {
                let rotate = self.storage.rotate(&old, &new, grace_end, now);
                Ok(match self.timed(rotate).await {
                    Ok(RotateOutcome::Collision) => Fresh::Collision,
                    Ok(RotateOutcome::Rotated) => Fresh::Written(Ok(true)),
                    Ok(RotateOutcome::Gone) => Fresh::Written(Ok(false)),
                    Err(error) => Fresh::Written(Err(error)),
                })
            })
            .await;
        let ((id, key), done) = match rotated {
            Ok(rotated) => rotated,
            Err(error) => {
                tracing::warn!(%error, key = %old, "session id not rotated; kept");
                return Rotation::Kept;
            }
        };
        let happened = match done {
            Ok(happened) => happened,
            // A rotate that failed, or timed out, may have happened all
            // the same: its forward tells, and then the browser must have
            // the new id before the grace window ends.
            Err(error) => {
                let forward = self.lookup(&old, now).await;
                if !matches!(forward, Ok(Some((at, _))) if at == key) {
                    tracing::warn!(%error, key = %old, "session id not rotated; kept");
                    return Rotation::Kept;
                }
                true
            }
        };
        if !happened {
            // Another request rotated it first: the same session, on.
            if let Ok(Some(_)) = self.follow(&old, now).await {
                return Rotation::Elsewhere;
            }
            tracing::debug!(key = %old, "session ended during the request; not rotated");
            return Rotation::Gone;
        }
        tracing::debug!(%old, new = %key, "session id rotated");
        Rotation::Rotated(Live {
            id,
            key,
            ticket: self.turns.join(key),
            record: live.record.clone().with_issued_at(now),
            // Moved as stored, which may be later than this copy.
            exact: false,
            source: Source::Fresh,
        })
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

/// What a rotation did.
pub(super) enum Rotation {
    /// The session lives under the new id, the old one forwarding to it.
    Rotated(Live),
    /// The rotation failed: the session keeps its id.
    Kept,
    /// Another request rotated the id first: this one's is a forward now.
    Elsewhere,
    /// The session ended meanwhile.
    Gone,
}

/// What a write under a fresh id did.
enum Fresh<T> {
    /// It was written (or found the session gone): done.
    Written(T),
    /// A live session holds the id already: draw another.
    Collision,
}
