//! The handle's API: what a handler calls on its [`Session`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use session_core::{SessionId, Value};

use super::Session;
use super::state::{Origin, Source, State, moved, poison};
use crate::SessionError;

impl Session {
    /// The value under `name`, decoded as a `T`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Value`] if the value is not a `T`; a storage error if
    /// the session cannot be loaded.
    pub async fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, SessionError> {
        self.state().await?.get(name)
    }

    /// Whether the session holds `name`.
    ///
    /// # Errors
    ///
    /// A storage error if the session cannot be loaded.
    pub async fn contains(&self, name: &str) -> Result<bool, SessionError> {
        Ok(self.state().await?.value(name).is_some())
    }

    /// The names of the values the session holds.
    ///
    /// # Errors
    ///
    /// A storage error if the session cannot be loaded.
    pub async fn names(&self) -> Result<Vec<String>, SessionError> {
        Ok(self
            .state()
            .await?
            .view()
            .names()
            .map(str::to_owned)
            .collect())
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

    /// Sets `name` to `value`; written at the end of the request (creating
    /// the session if there is none), unless the response is a server error
    /// (5xx).
    ///
    /// # Errors
    ///
    /// [`SessionError::Value`] if `value` cannot be encoded,
    /// [`SessionError::Gone`] if the session ended during the request.
    pub fn insert<'s, T: Serialize + ?Sized>(
        &'s self,
        name: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), SessionError>> + Send + use<'s, T> {
        // Encoded before the future starts, so the future holds no `&T` and
        // is `Send` whatever `T` is.
        let encoded = Value::encode(value).map_err(SessionError::Value);
        let name = name.to_owned();
        async move {
            let value = encoded?;
            let mut state = self.writable().await?;
            state.changes.insert(name, value);
            Ok(())
        }
    }

    /// Removes `name`; written at the end of the request unless the response
    /// is a server error (5xx).
    ///
    /// # Errors
    ///
    /// [`SessionError::Gone`] if the session ended during the request.
    pub async fn remove(&self, name: &str) -> Result<(), SessionError> {
        let mut state = self.writable().await?;
        state.changes.remove(name);
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
        Ok(())
    }

    /// Gives the session a new id now, keeping its data: call it on login,
    /// so an id an attacker planted before login is worth nothing after.
    ///
    /// When this returns `Ok`, the old id no longer loads, and everything
    /// the request changes afterwards goes to the new id only, whatever
    /// happens next (a 5xx, a store failure, the client going away). The
    /// request's changes so far move with the session. The new id's cookie
    /// goes out with the response, even a 5xx one from the handler, since
    /// the old cookie is dead; but if storage fails later in the request,
    /// the response is the store-failure response, with no cookie, and the
    /// user has to log in again (never logged in under the old id). A
    /// session the browser did not name (none yet, or one created
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
        if !matches!(&state.origin, Origin::Live(live) if live.source != Source::Fresh) {
            return Ok(());
        }
        let view = state.view();
        // Until the cycle's fate is known the session is unusable, so that
        // if this future is dropped half way, the request writes nothing
        // more under either id.
        let live = match std::mem::replace(&mut state.origin, Origin::Failed) {
            Origin::Live(live) => live,
            other => {
                state.origin = other;
                return Ok(());
            }
        };
        let shared = &self.inner.shared;
        let outcome = shared.cycle(&live, &state.changes, view).await;
        moved(state, outcome)
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
        state.logged_out(self.inner.had_cookie);
        Ok(())
    }
}
