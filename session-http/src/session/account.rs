//! Accounts: logging a user in, the user's list of sessions ("your
//! devices"), and revoking them. Each call needs a store with
//! [`Capabilities::accounts`](session_core::Capabilities::accounts).

use session_core::{
    Account, ChangeSet, Deadlines, Device, Listed, Login, Revoke, SessionData, SessionHandle,
    SessionKey, Timestamp, UserKey,
};

use super::Session;
use super::state::{Origin, moved, poison};
use crate::SessionError;

/// One live session of the current user, as [`Session::sessions`] lists
/// it: what a "your devices" page shows, and the handle to revoke it by.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session's name in the list, for [`Session::revoke`]; never
    /// usable as a session id. It names the session's current key, so with
    /// [`rotate_after`](crate::SessionConfigBuilder::rotate_after) a handle
    /// listed before the session's id rotated revokes nothing (`false`):
    /// list again.
    pub handle: SessionHandle,
    /// Whether it is the session of this request.
    pub current: bool,
    /// When it was logged in.
    pub created_at: Timestamp,
    /// Its last write ([`Account::last_seen`]), as exact as the layer's
    /// throttled touches.
    pub last_seen: Timestamp,
    /// When it ends unless used again ([`Deadlines::expires_at`]).
    pub deadlines: Deadlines,
    /// What the application recorded at login ([`Login::device`]).
    pub device: Device,
}

impl SessionInfo {
    /// The listing of a session, `current` if its handle is `current`'s.
    fn new(listed: Listed, current: SessionHandle) -> Self {
        Self {
            current: listed.handle == current,
            handle: listed.handle,
            created_at: listed.created_at,
            last_seen: listed.last_seen,
            deadlines: listed.deadlines,
            device: listed.device,
        }
    }
}

impl Session {
    /// Logs `login`'s user in, now: the session moves to a fresh id bound
    /// to the user, with its data, as [`cycle_id`](Self::cycle_id) moves
    /// it; with no stored session yet (none, or only values set in this
    /// request), one is created, bound, holding the request's values.
    ///
    /// Everything [`cycle_id`](Self::cycle_id) says holds: the old id no
    /// longer loads when this returns, later changes go to the new id
    /// only, the new cookie goes out even with a 5xx. The absolute
    /// timeout restarts (unless the layer's
    /// [`reset_absolute_on_login`](crate::SessionConfigBuilder::reset_absolute_on_login)
    /// says otherwise). The session then lists among the user's
    /// [`sessions`](Self::sessions) until it ends; with a
    /// [limit](Login::limit), the user's least recently seen other
    /// sessions beyond it are revoked in the same step. A session bound
    /// to another user is bound to this one instead.
    ///
    /// ```
    /// use axum::{Router, body::Body, routing::{get, post}};
    /// use http::{Request, header};
    /// use http_body_util::BodyExt;
    /// use session_http::{Login, Session, SessionError, SessionLayer, UserKey, memory::MemoryStorage};
    /// use tower::ServiceExt;
    ///
    /// async fn login(session: Session) -> Result<&'static str, SessionError> {
    ///     // After checking the password of "ada".
    ///     session.login(&Login::new(UserKey::of("ada"))).await?;
    ///     Ok("welcome")
    /// }
    ///
    /// async fn devices(session: Session) -> Result<String, SessionError> {
    ///     Ok(session.sessions().await?.len().to_string())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = Router::new()
    ///     .route("/login", post(login))
    ///     .route("/devices", get(devices))
    ///     .layer(SessionLayer::new(MemoryStorage::new()));
    ///
    /// let response = app.clone().oneshot(Request::post("/login").body(Body::empty())?).await?;
    /// let set_cookie = response.headers()[header::SET_COOKIE].to_str()?;
    /// let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();
    ///
    /// let request = Request::get("/devices").header(header::COOKIE, cookie).body(Body::empty())?;
    /// let body = app.oneshot(request).await?.into_body().collect().await?.to_bytes();
    /// assert_eq!(body, "1");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SessionError::Unsupported`] from a store without accounts, before
    /// any storage call and without poisoning the session;
    /// otherwise as [`cycle_id`](Self::cycle_id).
    pub async fn login(&self, login: &Login) -> Result<(), SessionError> {
        self.log_in(login, None).await
    }

    /// [`login`](Self::login), starting the logged-in session from a clean
    /// record that keeps only the values under `keep`, as
    /// [`cycle_id_keeping`](Self::cycle_id_keeping) does: nothing planted
    /// before login survives it.
    ///
    /// # Errors
    ///
    /// As [`login`](Self::login).
    pub async fn login_keeping(&self, login: &Login, keep: &[&str]) -> Result<(), SessionError> {
        self.log_in(login, Some(keep)).await
    }

    async fn log_in(&self, login: &Login, keep: Option<&[&str]>) -> Result<(), SessionError> {
        self.check_accounts()?;
        let mut state = self.writable().await?;
        if let Some(keep) = keep {
            state.keep_only(keep);
        }
        let view = state.view();
        // Until the login's fate is known the session is unusable, so that
        // if this future is dropped half way, the request writes nothing
        // more under either id.
        let old = match std::mem::replace(&mut state.origin, Origin::Failed) {
            Origin::Live(live) => Some(live),
            Origin::Anonymous => None,
            // `writable` lets only live and anonymous sessions through.
            other => {
                state.origin = other;
                return Err(SessionError::Gone);
            }
        };
        // A login from no stored session starts from empty data.
        let created = old.is_none().then(|| inserts(&view, &state.changes));
        let changes = created.as_ref().unwrap_or(&state.changes);
        let shared = &self.inner.shared;
        let outcome = shared.login(old.as_ref(), changes, view, login).await;
        moved(&mut state, outcome)
    }

    /// The user the session is logged in as, if any: from the session as
    /// loaded (no storage call beyond the load).
    ///
    /// # Errors
    ///
    /// A storage error if the session cannot be loaded.
    pub async fn user(&self) -> Result<Option<UserKey>, SessionError> {
        Ok(self.account().await?.map(|account| account.user))
    }

    /// The session's binding to its user, if it is logged in: the user,
    /// the device facts recorded at login, and when it was last seen (as
    /// of the load, or of this request's login).
    ///
    /// # Errors
    ///
    /// A storage error if the session cannot be loaded.
    pub async fn account(&self) -> Result<Option<Account>, SessionError> {
        Ok(match &self.state().await?.origin {
            Origin::Live(live) => live.record.account.as_deref().cloned(),
            _ => None,
        })
    }

    /// The live sessions of the user this session is logged in as, most
    /// recently seen first, this one marked
    /// [`current`](SessionInfo::current); empty if it is not logged in.
    ///
    /// # Errors
    ///
    /// [`SessionError::Unsupported`] from a store without accounts (no
    /// storage call, not poisoned); a storage error if the session cannot
    /// be loaded or the list fails, which poisons the session.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, SessionError> {
        self.check_accounts()?;
        let mut state = self.state().await?;
        let Some((user, key)) = state.bound() else {
            return Ok(Vec::new());
        };
        let shared = &self.inner.shared;
        let listed = shared.timed(shared.storage.list(&user, shared.now())).await;
        let listed = listed.map_err(|error| poison(&mut state, SessionError::Storage(error)))?;
        let current = SessionHandle::of(&key);
        Ok(listed
            .into_iter()
            .map(|listed| SessionInfo::new(listed, current))
            .collect())
    }

    /// Ends the user's session with `handle` (one of [`sessions`](Self::sessions)),
    /// now: `false` if no session of this user has it (or none is logged
    /// in), so a handle of another user's session revokes nothing. A
    /// request in flight on the revoked session writes nothing more.
    /// Revoking this session's own handle ends it as
    /// [`destroy`](Self::destroy) does: the response removes the cookie.
    ///
    /// # Errors
    ///
    /// [`SessionError::Unsupported`] from a store without accounts (no
    /// storage call, not poisoned); [`SessionError::Storage`] if the
    /// revoke failed, which poisons the session as a failed
    /// [`destroy`](Self::destroy) does (the response becomes the
    /// store-failure response; the revoke can be retried).
    pub async fn revoke(&self, handle: SessionHandle) -> Result<bool, SessionError> {
        let revoked = self.revoke_selected(|_| Revoke::One(handle)).await?;
        Ok(revoked > 0)
    }

    /// Ends every other session of the user, now ("log out my other
    /// devices"), and returns how many; this one stays. `0` if none is
    /// logged in.
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke).
    pub async fn revoke_others(&self) -> Result<u64, SessionError> {
        self.revoke_selected(Revoke::AllBut).await
    }

    /// Ends every session of the user, this one included, now ("log out
    /// everywhere", or after a password change), and returns how many. This
    /// session ends as [`destroy`](Self::destroy) ends it: the response
    /// removes the cookie, and later changes start a new, anonymous
    /// session. `0`, and nothing ends, if none is logged in.
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke).
    pub async fn revoke_all(&self) -> Result<u64, SessionError> {
        self.revoke_selected(|_| Revoke::All).await
    }

    /// Revokes what `which` (given this session's key) selects among the
    /// user's sessions, ending this one too if it is selected.
    async fn revoke_selected(
        &self,
        which: impl FnOnce(SessionKey) -> Revoke,
    ) -> Result<u64, SessionError> {
        self.check_accounts()?;
        let mut state = self.state().await?;
        let Some((user, key)) = state.bound() else {
            return Ok(0);
        };
        let shared = &self.inner.shared;
        let mut which = which(key);
        if let Revoke::AllBut(spared) = &mut which {
            // Another request of this session may have rotated its id since
            // this one loaded it: spare it under its new key.
            let moved = shared.follow(spared, shared.now()).await;
            let moved = moved.map_err(|error| poison(&mut state, SessionError::Storage(error)))?;
            if let Some((to, _)) = moved {
                *spared = to;
            }
        }
        let revoked = shared.storage.revoke(&user, &which, shared.now());
        let revoked = shared.timed(revoked).await;
        let revoked = revoked.map_err(|error| poison(&mut state, SessionError::Storage(error)))?;
        if which.selects(&key) {
            tracing::debug!(%key, "session revoked by its own request");
            state.logged_out(self.inner.had_cookie);
        }
        Ok(revoked)
    }

    /// Fails unless the store keeps accounts: before any storage call, so
    /// that a wiring mistake neither costs I/O nor poisons the session.
    fn check_accounts(&self) -> Result<(), SessionError> {
        if self.inner.shared.storage.capabilities().accounts {
            Ok(())
        } else {
            Err(SessionError::Unsupported("accounts"))
        }
    }
}

/// A change set that creates `view` from empty data, with the lifetime
/// `pending` sets, if any.
fn inserts(view: &SessionData, pending: &ChangeSet) -> ChangeSet {
    let mut changes = ChangeSet::new();
    for (name, value) in view.iter() {
        changes.insert(name, value.clone());
    }
    if let Some(lifetime) = pending.lifetime() {
        changes.set_lifetime(lifetime);
    }
    changes
}
