//! Lazy loading: the first call of a request that needs the session looks
//! its cookie's ids up, once.

use session_core::Error;
use tokio::sync::MutexGuard;

use super::Session;
use super::state::{Live, Origin, Source, State};
use crate::SessionError;

impl Session {
    /// The state, loaded.
    pub(super) async fn state(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        self.check_open()?;
        let mut state = self.inner.state.lock().await;
        self.check_open()?;
        state.accessed = true;
        if matches!(state.origin, Origin::Unloaded) {
            match self.load().await {
                Ok(Some(live)) => state.origin = Origin::Live(live),
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
    pub(super) async fn writable(&self) -> Result<MutexGuard<'_, State>, SessionError> {
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
            // Joined before the load, so that a write of the layer that
            // ends while it runs leaves this request its record: the copy
            // loaded may predate it.
            let ticket = shared.turns.join(key);
            match shared.lookup(&key, now).await {
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
                Ok(Some((at, record))) => {
                    let mut live = Live {
                        id: id.clone(),
                        key,
                        ticket,
                        record,
                        exact: true,
                        source: Source::Cookie,
                    };
                    if at != key {
                        tracing::debug!(%key, to = %at, "session cookie names a rotated id");
                        live.forward_to((at, live.record.clone()), &shared.turns);
                    }
                    found = Some(live);
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
}
