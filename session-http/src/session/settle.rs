//! The end of the request: what the handler changed is written, and what
//! the browser is owed goes to the cookie rules.

use http::{HeaderValue, StatusCode};
use session_core::{Deadlines, Lifetime, Timestamp, TouchOutcome, UpdateOutcome};

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
        let own = state.changes.lifetime().unwrap_or_default();
        let live = shared.create(data, own, now).await?;
        let deadlines = live.record.deadlines;
        Ok(self.live_outcome(live, own, deadlines, (true, false), now))
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
            let (own, deadlines) = (live.record.lifetime, live.record.deadlines);
            let written = (state.refresh_cookie, state.lifetime_written);
            return Ok(self.live_outcome(live, own, deadlines, written, now));
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
        now: Timestamp,
    ) -> Result<Outcome, SessionError> {
        let shared = &self.inner.shared;
        let key = live.key;
        let (writer, start) = live.ticket.write_beside(&live.record);
        match start {
            Beside::Busy => live.exact = false,
            Beside::Free(latest) => live.catch_up(latest),
        }
        let own = live.own_lifetime(&state.changes);
        let lifetimes = (live.record.lifetime, own);
        let deadlines = shared
            .policy
            .extended(lifetimes, live.record.deadlines, now);
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
                let reshaped = state.lifetime_written || state.changes.lifetime().is_some();
                self.live_outcome(live, own, deadlines, (true, reshaped), now)
            }
            UpdateOutcome::Gone | UpdateOutcome::Conflict { .. } => {
                tracing::debug!(%key, "session ended during the request; changes dropped");
                Outcome::NoSession { removal: false }
            }
        })
    }

    /// Moves the idle deadline if the lifetime policy says a touch is due.
    async fn touch_if_due(&self, live: Live, now: Timestamp) -> Result<Outcome, SessionError> {
        let shared = &self.inner.shared;
        let (own, current) = (live.record.lifetime, live.record.deadlines);
        let Some(extended) = shared.policy.touch_due(own, current, now) else {
            return Ok(self.live_outcome(live, own, current, (false, false), now));
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
                self.live_outcome(live, own, extended, (true, false), now)
            }
            TouchOutcome::Gone => Outcome::NoSession { removal: false },
        })
    }

    /// What the browser is owed for `live`, living by `own` with
    /// `deadlines` at `now`: `moved`, this request moved them; `reshaped`,
    /// it wrote the session a new lifetime.
    fn live_outcome(
        &self,
        live: Live,
        own: Lifetime,
        deadlines: Deadlines,
        (moved, reshaped): (bool, bool),
        now: Timestamp,
    ) -> Outcome {
        Outcome::Live {
            id: live.id,
            deadlines,
            persistent: self.inner.shared.policy.terms(own).persistent,
            known: live.from_cookie,
            moved,
            reshaped,
            now,
        }
    }
}
