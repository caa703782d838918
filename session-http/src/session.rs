//! The [`Session`] handle a handler gets, and what happens to it at the end
//! of the request.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use session_core::{
    ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, Record, SessionData, SessionId,
    SessionKey, SessionStorage, Timestamp, TouchOutcome, UpdateOutcome, Value,
};
use tokio::sync::{Mutex, MutexGuard};

use crate::SessionError;
use crate::config::SessionConfig;
use crate::cookies::{self, Candidates, CookieTemplate};
use crate::throttle::Throttles;

/// How many fresh ids a create or cycle draws before giving up on
/// collisions (with 128-bit ids, one is all it ever takes).
const ID_ATTEMPTS: u32 = 3;

/// What every request of one layer shares: the storage and the
/// configuration.
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn SessionStorage>,
    pub(crate) config: SessionConfig,
    cookie: CookieTemplate,
    throttles: Throttles,
}

impl Shared {
    pub(crate) fn new(storage: Arc<dyn SessionStorage>, config: SessionConfig) -> Self {
        let cookie = CookieTemplate::new(&config);
        Self {
            storage,
            config,
            cookie,
            throttles: Throttles::default(),
        }
    }

    fn now(&self) -> Timestamp {
        self.config.clock.now()
    }

    /// Runs a storage call under the configured timeout.
    async fn timed<T>(&self, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        let limit = self.config.store_timeout;
        tokio::time::timeout(limit, call)
            .await
            .unwrap_or(Err(Error::Timeout(limit)))
    }

    /// Deadlines of a session starting at `now`.
    fn fresh_deadlines(&self, now: Timestamp) -> Deadlines {
        Deadlines::new(
            now.saturating_add(self.config.idle_timeout),
            now.saturating_add(self.config.absolute_timeout),
        )
    }

    /// Deadlines after activity at `now`: the idle one moves, the absolute
    /// one stays.
    fn extended(&self, current: Deadlines, now: Timestamp) -> Deadlines {
        current.with_idle(now.saturating_add(self.config.idle_timeout))
    }

    /// `Set-Cookie` for a live session: `Max-Age` if the cookie is
    /// persistent.
    fn cookie(&self, id: &SessionId, deadlines: Deadlines, now: Timestamp) -> Option<HeaderValue> {
        let max_age = self
            .config
            .persistent
            .then(|| deadlines.expires_at().saturating_duration_since(now));
        self.cookie.render(id, max_age)
    }

    /// Logs, at a rate nobody can flood, the session cookies a request
    /// carried that were not looked up.
    fn note_bad_cookies(&self, candidates: &Candidates) {
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

    /// Stores `data` as a new session under a fresh id.
    async fn create(&self, data: SessionData, now: Timestamp) -> Result<Live, SessionError> {
        let record = Record::new(data, now, self.fresh_deadlines(now));
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
            record,
            exact: true,
            from_cookie: false,
        })
    }

    /// Moves `live`, with `changes` applied (the handler sees `view`), to a
    /// fresh id now. `None` if the session ended meanwhile.
    async fn cycle(
        &self,
        live: &Live,
        changes: &ChangeSet,
        view: &SessionData,
    ) -> Result<Option<Live>, SessionError> {
        let now = self.now();
        let deadlines = if self.config.reset_absolute_on_login {
            self.fresh_deadlines(now)
        } else {
            self.extended(live.record.deadlines, now)
        };
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
        let record = Record::from_parts(view.clone(), live.record.created_at, deadlines, version);
        Ok(Some(Live {
            id,
            key,
            record,
            // Concurrent writes to the old record moved with it, unseen.
            exact: false,
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

/// A session found in storage or created during this request.
struct Live {
    id: SessionId,
    /// The id's hash, computed once per request.
    key: SessionKey,
    /// The record as last known to be stored.
    record: Record,
    /// Whether `record` is exactly what storage returned or wrote, so that
    /// `update_from` may use it; a conditioned update merges into it what
    /// it learns of one key, which leaves the other keys possibly stale.
    exact: bool,
    /// Whether the request's cookie named it (else no cookie was sent yet).
    from_cookie: bool,
}

/// Where the request stands with its session.
enum Origin {
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

/// The request's view of its session.
struct State {
    origin: Origin,
    /// What the handler sees: the stored data with `changes` applied.
    view: SessionData,
    /// Changes to write at the end of the request.
    changes: ChangeSet,
    /// The session was destroyed and the request carried a session cookie:
    /// send a removal cookie unless a new session replaces it.
    removal: bool,
    /// An immediate write moved the deadlines: a persistent cookie's
    /// `Max-Age` must follow.
    refresh_cookie: bool,
    /// Any method was called: the response depends on the cookie.
    accessed: bool,
}

impl State {
    /// The session ended elsewhere: drop everything pending.
    fn end(&mut self) {
        self.origin = Origin::Ended;
        self.refresh_cookie = false;
        self.view = SessionData::new();
        self.changes = ChangeSet::new();
    }

    /// Drops every value but those under `keep`, here and in storage.
    fn keep_only(&mut self, keep: &[&str]) {
        let kept: Vec<(String, Value)> = keep
            .iter()
            .filter_map(|&key| Some((key.to_owned(), self.view.get_value(key)?.clone())))
            .collect();
        self.changes.clear();
        self.view.clear();
        for (key, value) in kept {
            self.changes.insert(key.as_str(), value.clone());
            self.view.insert_value(key, value);
        }
    }

    /// Start over with no session (after `destroy`).
    fn forget(&mut self) {
        self.origin = Origin::Anonymous;
        self.refresh_cookie = false;
        self.view = SessionData::new();
        self.changes = ChangeSet::new();
    }
}

/// The session of one request.
///
/// Cloning is cheap; every clone is the same session. Reads load the session
/// lazily, at most once per request: a request that never asks costs no
/// storage call at all.
///
/// | method | I/O |
/// |---|---|
/// | [`get`](Self::get), [`contains`](Self::contains), [`keys`](Self::keys), [`id`](Self::id) | the first call of the request loads |
/// | [`insert`](Self::insert), [`remove`](Self::remove), [`clear`](Self::clear) | load if not yet loaded; the change is written once, at the end of the request |
/// | [`update`](Self::update) | reads and writes now, conditioned on what it read |
/// | [`cycle_id`](Self::cycle_id), [`cycle_id_keeping`](Self::cycle_id_keeping) | now |
/// | [`destroy`](Self::destroy) | now |
///
/// Once the response has been sent every call fails with
/// [`SessionError::Closed`], so a change made from a spawned task is never
/// silently lost.
///
/// Any storage failure (including a timeout) poisons the session for the
/// rest of the request: later calls fail with [`SessionError::Poisoned`],
/// nothing more is written, and the layer answers with its store-failure
/// response whatever the handler returns. Because loading is lazy, the
/// handler has already run by then: side effects it had before touching the
/// session have happened.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    candidates: Vec<SessionId>,
    /// Whether the request carried a cookie of the session's name at all.
    had_cookie: bool,
    closed: AtomicBool,
    state: Mutex<State>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, candidates: Candidates) -> Self {
        shared.note_bad_cookies(&candidates);
        let had_cookie = candidates.any();
        Self {
            inner: Arc::new(Inner {
                shared,
                candidates: candidates.ids,
                had_cookie,
                closed: AtomicBool::new(false),
                state: Mutex::new(State {
                    origin: Origin::Unloaded,
                    view: SessionData::new(),
                    changes: ChangeSet::new(),
                    removal: false,
                    refresh_cookie: false,
                    accessed: false,
                }),
            }),
        }
    }

    /// The value under `key`, decoded as a `T`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Value`] if the value is not a `T`; a storage error if
    /// the session cannot be loaded.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.state()
            .await?
            .view
            .get(key)
            .map_err(SessionError::Value)
    }

    /// Whether the session holds `key`.
    ///
    /// # Errors
    ///
    /// A storage error if the session cannot be loaded.
    pub async fn contains(&self, key: &str) -> Result<bool, SessionError> {
        Ok(self.state().await?.view.contains_key(key))
    }

    /// The keys the session holds.
    ///
    /// # Errors
    ///
    /// A storage error if the session cannot be loaded.
    pub async fn keys(&self) -> Result<Vec<String>, SessionError> {
        Ok(self.state().await?.view.keys().map(str::to_owned).collect())
    }

    /// The id of the live session, if there is one. The id is a secret:
    /// its `Debug` and `Display` print nothing, and nothing should log it.
    ///
    /// # Errors
    ///
    /// A storage error if the session cannot be loaded.
    pub async fn id(&self) -> Result<Option<SessionId>, SessionError> {
        Ok(match &self.state().await?.origin {
            Origin::Live(live) => Some(live.id.clone()),
            _ => None,
        })
    }

    /// Sets `key` to `value`; written at the end of the request (creating
    /// the session if there is none), unless the response is a server error
    /// (5xx).
    ///
    /// # Errors
    ///
    /// [`SessionError::Value`] if `value` cannot be encoded,
    /// [`SessionError::Gone`] if the session ended during the request.
    pub fn insert<'s, T: Serialize + ?Sized>(
        &'s self,
        key: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), SessionError>> + Send + use<'s, T> {
        // Encoded before the future starts, so the future holds no `&T` and
        // is `Send` whatever `T` is.
        let encoded = Value::encode(value).map_err(SessionError::Value);
        let key = key.to_owned();
        async move {
            let value = encoded?;
            let mut state = self.writable().await?;
            state.changes.insert(key.as_str(), value.clone());
            state.view.insert_value(key, value);
            Ok(())
        }
    }

    /// Removes `key`; written at the end of the request unless the response
    /// is a server error (5xx).
    ///
    /// # Errors
    ///
    /// [`SessionError::Gone`] if the session ended during the request.
    pub async fn remove(&self, key: &str) -> Result<(), SessionError> {
        let mut state = self.writable().await?;
        state.changes.remove(key);
        state.view.remove(key);
        Ok(())
    }

    /// Removes every value, including ones other requests write before
    /// this one ends; written at the end of the request unless the response
    /// is a server error (5xx).
    ///
    /// # Errors
    ///
    /// [`SessionError::Gone`] if the session ended during the request.
    pub async fn clear(&self) -> Result<(), SessionError> {
        let mut state = self.writable().await?;
        state.changes.clear();
        state.view.clear();
        Ok(())
    }

    /// Replaces the value under `key` with `next(current)`, now, atomically.
    ///
    /// The write is conditioned on the stored value being the one `next`
    /// saw; if another request changed it meanwhile, `next` runs again on
    /// the new value (a few times, with jitter). So concurrent requests
    /// incrementing a counter never lose an increment. The request's other
    /// changes so far are written in the same atomic step. With no session
    /// yet, this creates one. Unlike [`insert`](Self::insert), the write has
    /// happened when this returns, whatever the response.
    ///
    /// # Errors
    ///
    /// [`SessionError::Contended`] if every attempt met a conflicting write;
    /// [`SessionError::Gone`] if the session ended during the request;
    /// [`SessionError::Storage`] if the write failed or timed out (a timed
    /// out write may or may not have happened). A storage failure poisons
    /// the session like a failed load: the response becomes the
    /// store-failure response and nothing more is written.
    pub async fn update<T, F>(&self, key: &str, mut next: F) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnMut(Option<T>) -> T + Send,
    {
        let mut state = self.writable().await?;
        let result = if matches!(state.origin, Origin::Live(_)) {
            self.update_live(&mut state, key, &mut next).await
        } else {
            self.create_with(&mut state, key, &mut next).await
        };
        result.map_err(|error| poison(&mut state, error))
    }

    /// `update` with no session yet: creates one now, holding the request's
    /// changes so far and the new value.
    async fn create_with<T, F>(
        &self,
        state: &mut State,
        key: &str,
        next: &mut F,
    ) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let shared = &self.inner.shared;
        let value = next(state.view.get(key).map_err(SessionError::Value)?);
        let mut data = state.view.clone();
        data.insert_value(
            key.to_owned(),
            Value::encode(&value).map_err(SessionError::Value)?,
        );
        let live = shared.create(data, shared.now()).await?;
        state.view = live.record.data.clone();
        state.changes = ChangeSet::new();
        state.origin = Origin::Live(live);
        Ok(value)
    }

    /// `update` of a live session: the request's changes so far and the new
    /// value, conditioned on the stored value, retried on conflict.
    async fn update_live<T, F>(
        &self,
        state: &mut State,
        key: &str,
        next: &mut F,
    ) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let shared = &self.inner.shared;
        let attempts = shared.config.update_attempts;
        for attempt in 1..=attempts {
            let State {
                origin: Origin::Live(live),
                view,
                changes,
                refresh_cookie,
                ..
            } = state
            else {
                break;
            };
            let value = next(view.get(key).map_err(SessionError::Value)?);
            let encoded = Value::encode(&value).map_err(SessionError::Value)?;
            let mut write = changes.clone();
            write.require(key, live.record.data.get_value(key).cloned());
            write.insert(key, encoded);
            let now = shared.now();
            let deadlines = shared.extended(live.record.deadlines, now);
            let key_hash = live.key;
            let outcome = shared
                .timed(shared.storage.update(&key_hash, &write, deadlines, now))
                .await;
            match outcome.map_err(SessionError::Storage)? {
                UpdateOutcome::Updated { version } => {
                    write.apply(&mut live.record.data);
                    live.record.version = version;
                    live.exact = false;
                    live.record.deadlines = live.record.deadlines.narrowed_by(deadlines);
                    *view = live.record.data.clone();
                    *changes = ChangeSet::new();
                    *refresh_cookie = true;
                    return Ok(value);
                }
                UpdateOutcome::Conflict { current } => {
                    tracing::debug!(key = %key_hash, attempt, "session update conflicted");
                    match current.value(key) {
                        Some(value) => live.record.data.insert_value(key.to_owned(), value.clone()),
                        None => live.record.data.remove(key),
                    };
                    live.exact = false;
                    *view = live.record.data.clone();
                    changes.apply(view);
                    if attempt < attempts {
                        backoff(attempt).await;
                    }
                }
                UpdateOutcome::Gone => {
                    tracing::debug!(key = %key_hash, "session ended during the request");
                    state.end();
                    return Err(SessionError::Gone);
                }
            }
        }
        Err(SessionError::Contended { attempts })
    }

    /// Gives the session a new id now, keeping its data: call it on login,
    /// so an id an attacker planted before login is worth nothing after.
    ///
    /// When this returns `Ok`, the old id no longer loads, and everything
    /// the request changes afterwards goes to the new id only, whatever
    /// happens next (a 5xx, a store failure, the client going away). The
    /// request's changes so far move with the session. The new id's cookie
    /// goes out with the response, even a 5xx one, since the old cookie is
    /// dead. A session the browser did not name (none yet, or one created
    /// during this request) has no id anybody else could know: nothing to
    /// cycle.
    ///
    /// # Errors
    ///
    /// [`SessionError::Gone`] if the session ended during the request;
    /// [`SessionError::Storage`] if the cycle failed or timed out: the
    /// session is poisoned (the response becomes the store-failure
    /// response) and nothing more is written under either id. The same
    /// holds if this future is dropped before it completes.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        let mut state = self.writable().await?;
        self.cycle_now(&mut state).await
    }

    /// [`cycle_id`](Self::cycle_id), starting the logged-in session from a
    /// clean record that keeps only the values under `keep` (a cart, say).
    ///
    /// Everything else goes: a value someone planted before login (a
    /// session given to the victim by cookie tossing, with a CSRF token or
    /// a `return_to` of the attacker's choosing) does not survive it. The
    /// kept values are the ones this request sees.
    ///
    /// # Errors
    ///
    /// As [`cycle_id`](Self::cycle_id).
    pub async fn cycle_id_keeping(&self, keep: &[&str]) -> Result<(), SessionError> {
        let mut state = self.writable().await?;
        state.keep_only(keep);
        self.cycle_now(&mut state).await
    }

    /// Moves a session the browser named to a fresh id, now.
    async fn cycle_now(&self, state: &mut State) -> Result<(), SessionError> {
        // Until the cycle's fate is known the session is unusable, so that
        // if this future is dropped half way, the request writes nothing
        // more under either id.
        let live = match std::mem::replace(&mut state.origin, Origin::Failed) {
            Origin::Live(live) if live.from_cookie => live,
            other => {
                state.origin = other;
                return Ok(());
            }
        };
        let shared = &self.inner.shared;
        match shared.cycle(&live, &state.changes, &state.view).await {
            Ok(Some(moved)) => {
                state.origin = Origin::Live(moved);
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

    /// Deletes the session now (logout), and removes the cookie with the
    /// response. The delete has happened when this returns, whatever the
    /// response's status. Changes made earlier in the request are dropped;
    /// changes made after start a new session.
    ///
    /// # Errors
    ///
    /// [`SessionError::Storage`] if the delete failed: the session is as it
    /// was, the response becomes the store-failure response and carries no
    /// removal cookie, so logout can be retried.
    pub async fn destroy(&self) -> Result<(), SessionError> {
        let mut state = self.state().await?;
        if let Origin::Live(live) = &state.origin {
            let shared = &self.inner.shared;
            let key = live.key;
            let deleted = shared.timed(shared.storage.delete(&key)).await;
            if let Err(error) = deleted {
                return Err(poison(&mut state, SessionError::Storage(error)));
            }
            tracing::debug!(%key, "session destroyed");
        }
        state.forget();
        // Whatever the cookie named (a live, expired or unknown session),
        // the browser should drop it on logout.
        state.removal = self.inner.had_cookie;
        Ok(())
    }

    fn check_open(&self) -> Result<(), SessionError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(SessionError::Closed);
        }
        Ok(())
    }

    /// The state, loaded.
    async fn state(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        self.check_open()?;
        let mut state = self.inner.state.lock().await;
        self.check_open()?;
        state.accessed = true;
        if matches!(state.origin, Origin::Unloaded) {
            match self.load().await {
                Ok(Some(live)) => {
                    state.view = live.record.data.clone();
                    state.origin = Origin::Live(live);
                }
                Ok(None) => state.origin = Origin::Anonymous,
                Err(error) => {
                    tracing::error!(%error, "session storage failed to load the session");
                    state.origin = Origin::Failed;
                    return Err(SessionError::Storage(error));
                }
            }
        }
        match state.origin {
            Origin::Failed => Err(SessionError::Poisoned),
            _ => Ok(state),
        }
    }

    /// The state, loaded, for a change.
    async fn writable(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        let state = self.state().await?;
        match state.origin {
            Origin::Ended => Err(SessionError::Gone),
            _ => Ok(state),
        }
    }

    /// Looks up the request's candidate ids. Exactly one live session is
    /// the session; none, or several (cookie tossing), is no session.
    async fn load(&self) -> Result<Option<Live>, Error> {
        let shared = &self.inner.shared;
        let now = shared.now();
        let mut found = None;
        for id in &self.inner.candidates {
            let key = id.key();
            match shared.timed(shared.storage.load(&key, now)).await {
                Ok(Some(_)) if found.is_some() => {
                    tracing::debug!("several session cookies name live sessions");
                    if let Some(count) = shared.throttles.ambiguous.count(1, now) {
                        tracing::warn!(
                            count,
                            "requests whose session cookies named several live sessions (cookie tossing?) were given a fresh session, since the last such line"
                        );
                    }
                    return Ok(None);
                }
                Ok(Some(record)) => {
                    found = Some(Live {
                        id: id.clone(),
                        key,
                        record,
                        exact: true,
                        from_cookie: true,
                    });
                }
                Ok(None) => {
                    tracing::debug!(%key, "session cookie names no live session");
                    if let Some(count) = shared.throttles.unknown.count(1, now) {
                        tracing::info!(
                            count,
                            "session cookies named no live session (expired, logged out or forged), since the last such line"
                        );
                    }
                }
                // Bytes only a broken or hostile store holds: no session,
                // and the bytes stay for whoever investigates.
                Err(error @ (Error::Decode(_) | Error::TooLarge { .. })) => {
                    tracing::warn!(%key, %error, "stored session refused; treated as absent and left as it is");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(found)
    }

    /// Whether this session belongs to the layer sharing `shared`.
    pub(crate) fn belongs_to(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.inner.shared, shared)
    }

    /// Marks the session closed: the response is on its way.
    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// Writes what the request changed, now that the handler has answered
    /// with `status`.
    pub(crate) async fn finish(&self, status: StatusCode) -> Finish {
        self.close();
        let mut state = self.inner.state.lock().await;
        let vary = state.accessed;
        let origin = std::mem::replace(&mut state.origin, Origin::Ended);
        let persist = !status.is_server_error() || self.inner.shared.config.persist_on_server_error;
        let settled = match origin {
            Origin::Unloaded | Origin::Ended => Ok(None),
            Origin::Failed => return Finish::Failed,
            Origin::Anonymous => self.settle_anonymous(&state, persist).await,
            Origin::Live(live) => self.settle_live(&state, live, persist).await,
        };
        match settled {
            Ok(set_cookie) => Finish::Done { vary, set_cookie },
            Err(error) => {
                tracing::error!(%error, "session storage failed to save the session");
                Finish::Failed
            }
        }
    }

    async fn settle_anonymous(
        &self,
        state: &State,
        persist: bool,
    ) -> Result<Option<HeaderValue>, SessionError> {
        let shared = &self.inner.shared;
        if persist && !state.view.is_empty() {
            let now = shared.now();
            let live = shared.create(state.view.clone(), now).await?;
            return Ok(shared.cookie(&live.id, live.record.deadlines, now));
        }
        Ok(state
            .removal
            .then(|| cookies::removal_cookie(&shared.config))
            .flatten())
    }

    async fn settle_live(
        &self,
        state: &State,
        live: Live,
        persist: bool,
    ) -> Result<Option<HeaderValue>, SessionError> {
        let shared = &self.inner.shared;
        let now = shared.now();
        let key = live.key;
        // The browser lacks this cookie (a session `update` created), or a
        // persistent cookie's `Max-Age` must follow deadlines an `update`
        // moved: both already happened, so they hold even on a 5xx.
        let owed = !live.from_cookie || (state.refresh_cookie && shared.config.persistent);
        let owed_cookie = || {
            owed.then(|| shared.cookie(&live.id, live.record.deadlines, now))
                .flatten()
        };
        if !persist {
            return Ok(owed_cookie());
        }
        if !state.changes.is_empty() {
            let deadlines = shared.extended(live.record.deadlines, now);
            let storage = &shared.storage;
            let outcome = if live.exact {
                let loaded = &live.record;
                let write = storage.update_from(&key, loaded, &state.changes, deadlines, now);
                shared.timed(write).await
            } else {
                shared
                    .timed(storage.update(&key, &state.changes, deadlines, now))
                    .await
            };
            return Ok(match outcome.map_err(SessionError::Storage)? {
                UpdateOutcome::Updated { .. } => {
                    tracing::debug!(%key, "session updated");
                    let resend = !live.from_cookie || shared.config.persistent;
                    resend
                        .then(|| shared.cookie(&live.id, deadlines, now))
                        .flatten()
                }
                UpdateOutcome::Gone | UpdateOutcome::Conflict { .. } => {
                    tracing::debug!(%key, "session ended during the request; changes dropped");
                    None
                }
            });
        }
        if owed {
            return Ok(owed_cookie());
        }
        self.touch_if_due(&live, now).await
    }

    /// Moves the idle deadline once a quarter of the idle timeout has
    /// passed since it was last moved, so most read-only requests write
    /// nothing.
    async fn touch_if_due(
        &self,
        live: &Live,
        now: Timestamp,
    ) -> Result<Option<HeaderValue>, SessionError> {
        let shared = &self.inner.shared;
        let current = live.record.deadlines;
        let extended = shared.extended(current, now);
        let idle = shared.config.idle_timeout;
        let remaining = current.idle().saturating_duration_since(now);
        if extended.idle() <= current.idle() || remaining >= idle.saturating_mul(3) / 4 {
            return Ok(None);
        }
        let key = live.key;
        let outcome = shared
            .timed(shared.storage.touch(&key, extended.idle(), now))
            .await;
        Ok(match outcome.map_err(SessionError::Storage)? {
            TouchOutcome::Touched => {
                tracing::trace!(%key, "session touched");
                shared
                    .config
                    .persistent
                    .then(|| shared.cookie(&live.id, extended, now))
                    .flatten()
            }
            TouchOutcome::Gone => None,
        })
    }
}

/// What the end of the request decided.
pub(crate) enum Finish {
    /// Storage failed: answer with the failure response, send no cookie.
    Failed,
    /// Done: the cookie to send, if any; whether the response depends on it.
    Done {
        vary: bool,
        set_cookie: Option<HeaderValue>,
    },
}

/// Marks the session unusable after a storage failure: the response
/// becomes the store-failure response and nothing more is written.
fn poison(state: &mut State, error: SessionError) -> SessionError {
    if matches!(
        error,
        SessionError::Storage(_) | SessionError::Randomness(_)
    ) {
        tracing::error!(%error, "session storage failed during the request");
        state.origin = Origin::Failed;
    }
    error
}

/// Waits before retry number `attempt` (from 1): a random time between
/// 2^attempt and 2^(attempt+1) milliseconds, at most 512 to 1024, so
/// writers that collided spread out instead of colliding again. With the
/// default 12 attempts, a request under heavy contention waits a few
/// seconds at worst before giving up with `Contended`.
async fn backoff(attempt: u32) {
    let floor = 1_u64 << attempt.min(9);
    // `RandomState` is seeded randomly per instance: plenty for jitter.
    let jitter = RandomState::new().hash_one(attempt) % floor;
    tokio::time::sleep(Duration::from_millis(floor + jitter)).await;
}

#[cfg(test)]
mod tests {
    use super::Session;

    fn send<T: Send>(_: T) {}

    /// Compiles only if every future a handler can hold is `Send`, as axum
    /// and multi-threaded hyper servers need. Never called: compiling is
    /// the test.
    fn every_future_is_send(session: &Session) {
        /// Neither `Send` nor `Sync`: encoded before any await.
        struct Unsync(std::cell::Cell<u8>);
        impl serde::Serialize for Unsync {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u8(self.0.get())
            }
        }
        send(session.get::<String>("k"));
        send(session.contains("k"));
        send(session.keys());
        send(session.id());
        send(session.insert("k", &Unsync(std::cell::Cell::new(1))));
        send(session.remove("k"));
        send(session.clear());
        send(session.update("k", |n: Option<u8>| n.unwrap_or(0)));
        send(session.cycle_id());
        send(session.cycle_id_keeping(&["k"]));
        send(session.destroy());
    }

    #[test]
    fn session_is_a_shareable_handle() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<Session>();
        let _ = every_future_is_send;
    }
}
