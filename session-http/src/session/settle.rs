//! The end of the request: what the handler changed is written, and what
//! the browser is owed goes to the cookie rules.

use http::{HeaderValue, StatusCode};
use session_core::{TouchOutcome, UpdateOutcome};

use super::Session;
use super::state::{Live, Origin, State};
use super::turns::Beside;
use crate::SessionError;
use crate::cookie::rules::Outcome;

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

impl Session {
    /// Writes what the request changed, now that the handler has answered
    /// with `status`.
    pub(crate) async fn finish(&self, status: StatusCode) -> Finish {
        self.close();
        let mut state = self.inner.state.lock().await;
        let vary = state.accessed;
        let origin = std::mem::replace(&mut state.origin, Origin::Ended);
        let shared = &self.inner.shared;
        let persist = !status.is_server_error() || shared.config.persist_on_server_error;
        let settled = match origin {
            Origin::Unloaded | Origin::Ended => Ok(Outcome::NoSession { removal: false }),
            Origin::Failed => return Finish::Failed,
            Origin::Anonymous => self.settle_anonymous(&state, persist).await,
            Origin::Live(live) => self.settle_live(&state, live, persist).await,
        };
        match settled {
            Ok(outcome) => Finish::Done {
                vary,
                set_cookie: shared.cookies.set_cookie(&outcome),
            },
            Err(error) => {
                tracing::error!(%error, "session storage failed to save the session");
                Finish::Failed
            }
        }
    }

    /// No session was live: a request that wrote creates one.
    async fn settle_anonymous(
        &self,
        state: &State,
        persist: bool,
    ) -> Result<Outcome, SessionError> {
        // The changes over no data (`finish` has ended the origin, and an
        // anonymous session had none).
        let data = state.view();
        if !persist || data.is_empty() {
            return Ok(Outcome::NoSession {
                removal: state.removal,
            });
        }
        let shared = &self.inner.shared;
        let now = shared.now();
        let live = shared.create(data, now).await?;
        Ok(Outcome::Live {
            deadlines: live.record.deadlines,
            id: live.id,
            known: false,
            moved: true,
            now,
        })
    }

    /// A live session: the deferred changes are written, or the session is
    /// touched if that is due.
    async fn settle_live(
        &self,
        state: &State,
        live: Live,
        persist: bool,
    ) -> Result<Outcome, SessionError> {
        let now = self.inner.shared.now();
        if persist && !state.changes.is_empty() {
            return self.write_changes(state, live, now).await;
        }
        // Writes made during the request (an `update`, a login) hold even
        // on a 5xx, and already moved the deadlines: nothing to touch.
        if !persist || !live.from_cookie || state.refresh_cookie {
            return Ok(Outcome::Live {
                deadlines: live.record.deadlines,
                id: live.id,
                known: live.from_cookie,
                moved: state.refresh_cookie,
                now,
            });
        }
        self.touch_if_due(live, now).await
    }

    /// Writes the deferred changes, moving the idle deadline. They carry
    /// no conditions, so the write takes no turn; it starts from the
    /// record the last write of the layer left, unless another is under
    /// way, which makes any copy likely stale: then the store is not given
    /// one.
    async fn write_changes(
        &self,
        state: &State,
        mut live: Live,
        now: session_core::Timestamp,
    ) -> Result<Outcome, SessionError> {
        let shared = &self.inner.shared;
        let key = live.key;
        let (writer, start) = live.ticket.write_beside(&live.record);
        match start {
            Beside::Busy => live.exact = false,
            Beside::Free(latest) => live.catch_up(latest),
        }
        let deadlines = shared.lifetime.extended(live.record.deadlines, now);
        let outcome = shared.update(&live, &state.changes, deadlines, now).await;
        let outcome = outcome.map_err(SessionError::Storage)?;
        writer.pass_on(|| match outcome {
            UpdateOutcome::Updated { version } => {
                live.stored_after(&state.changes, (deadlines, now), version)
            }
            _ => None,
        });
        Ok(match outcome {
            UpdateOutcome::Updated { .. } => {
                tracing::debug!(%key, "session updated");
                Outcome::Live {
                    deadlines,
                    id: live.id,
                    known: live.from_cookie,
                    moved: true,
                    now,
                }
            }
            UpdateOutcome::Gone | UpdateOutcome::Conflict { .. } => {
                tracing::debug!(%key, "session ended during the request; changes dropped");
                Outcome::NoSession { removal: false }
            }
        })
    }

    /// Moves the idle deadline if the lifetime policy says a touch is due.
    async fn touch_if_due(
        &self,
        live: Live,
        now: session_core::Timestamp,
    ) -> Result<Outcome, SessionError> {
        let shared = &self.inner.shared;
        let current = live.record.deadlines;
        let Some(extended) = shared.lifetime.touch_due(current, now) else {
            return Ok(Outcome::Live {
                deadlines: current,
                id: live.id,
                known: true,
                moved: false,
                now,
            });
        };
        let key = live.key;
        let storage = &shared.storage;
        // The record as loaded is a hint a store may use (Redis extends
        // the user's index in the same round trip); only an exact one.
        let outcome = if live.exact {
            let touch = storage.touch_from(&key, &live.record, extended.idle(), now);
            shared.timed(touch).await
        } else {
            shared
                .timed(storage.touch(&key, extended.idle(), now))
                .await
        };
        Ok(match outcome.map_err(SessionError::Storage)? {
            TouchOutcome::Touched => {
                tracing::trace!(%key, "session touched");
                Outcome::Live {
                    deadlines: extended,
                    id: live.id,
                    known: true,
                    moved: true,
                    now,
                }
            }
            TouchOutcome::Gone => Outcome::NoSession { removal: false },
        })
    }
}
