//! The end of the request: what the handler changed is written, and what
//! the browser is owed goes to the cookie rules.

use http::{HeaderValue, StatusCode};
use session_core::{Deadlines, Lifetime, Timestamp, TouchOutcome, UpdateOutcome};

use super::Session;
use super::shared::Rotation;
use super::state::{Live, Origin, Source, State};
use super::turns::Beside;
use crate::SessionError;
use crate::cookie::rules::{Outcome, resent};

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
        let own = state.own_lifetime();
        let live = shared.create(data, own, now).await?;
        let deadlines = live.record.deadlines;
        Ok(self.outcome(Kept::new(live, own, deadlines), now))
    }

    /// A live session: the deferred changes are written, or the session is
    /// touched if that is due; then its id is rotated if that is due.
    async fn settle_live(
        &self,
        state: &State,
        live: Live,
        persist: bool,
    ) -> Result<Outcome, SessionError> {
        let now = self.inner.shared.now();
        let kept = if persist && !state.changes.is_empty() {
            self.write_changes(state, live, now).await?
        } else if !persist || live.source == Source::Fresh || state.refresh_cookie {
            // Writes made during the request (an `update`, a login) hold
            // even on a 5xx, and already moved the deadlines: nothing to
            // touch.
            let (own, deadlines) = (live.record.lifetime, live.record.deadlines);
            let mut kept = Kept::new(live, own, deadlines);
            (kept.moved, kept.reshaped) = (state.refresh_cookie, state.lifetime_written);
            Some(kept)
        } else {
            self.touch_if_due(live, now).await?
        };
        let Some(kept) = kept else {
            return Ok(Outcome::NoSession { removal: false });
        };
        let kept = if persist {
            self.rotate_if_due(kept, now).await
        } else {
            Some(kept)
        };
        let Some(kept) = kept else {
            return Ok(Outcome::NoSession { removal: false });
        };
        Ok(self.outcome(self.unless_rotated(kept, now).await, now))
    }

    /// `kept`, told nothing if the cookie it would be sent again names an
    /// id another request rotated meanwhile: that response carries the new
    /// id, which this one must not overwrite with the old.
    async fn unless_rotated(&self, mut kept: Kept, now: Timestamp) -> Kept {
        let shared = &self.inner.shared;
        let persistent = shared.policy.terms(kept.own).persistent;
        let resends = resent(persistent, kept.moved, kept.reshaped);
        if !(shared.rotates && resends && kept.live.source == Source::Cookie) {
            return kept;
        }
        if let Ok(Some((at, _))) = shared.lookup(&kept.live.key, now).await
            && at != kept.live.key
        {
            kept.live.source = Source::Forward;
        }
        kept
    }

    /// Writes the deferred changes, moving the idle deadline; `None` if
    /// the session ended meanwhile. They carry no conditions, so the write
    /// takes no turn; it starts from the record the last write of the
    /// layer left, unless another is under way, which makes any copy
    /// likely stale: then the store is not given one. A session whose id
    /// was rotated meanwhile is written through its forward.
    async fn write_changes(
        &self,
        state: &State,
        mut live: Live,
        now: Timestamp,
    ) -> Result<Option<Kept>, SessionError> {
        let shared = &self.inner.shared;
        let (writer, start) = live.ticket.write_beside(&live.record);
        match start {
            Beside::Busy => live.exact = false,
            Beside::Free(latest) => live.catch_up(latest),
        }
        let (mut outcome, mut deadlines) = self.write_deferred(state, &live, now).await?;
        writer.pass_on(|| match outcome {
            UpdateOutcome::Updated { version } => {
                live.stored_after(&state.changes, (deadlines, now), version)
            }
            _ => None,
        });
        if outcome == UpdateOutcome::Gone
            && let Some(target) = shared
                .follow(&live.key, now)
                .await
                .map_err(SessionError::Storage)?
        {
            live.forward_to(target, &shared.turns);
            (outcome, deadlines) = self.write_deferred(state, &live, now).await?;
        }
        let key = live.key;
        Ok(match outcome {
            UpdateOutcome::Updated { .. } => {
                tracing::debug!(%key, "session updated");
                let own = live.own_lifetime(&state.changes);
                let mut kept = Kept::new(live, own, deadlines);
                kept.moved = true;
                kept.reshaped = state.lifetime_written || state.changes.lifetime().is_some();
                Some(kept)
            }
            UpdateOutcome::Gone | UpdateOutcome::Conflict { .. } => {
                tracing::debug!(%key, "session ended during the request; changes dropped");
                None
            }
        })
    }

    /// One write of the deferred changes to `live`, and the deadlines it
    /// wrote.
    async fn write_deferred(
        &self,
        state: &State,
        live: &Live,
        now: Timestamp,
    ) -> Result<(UpdateOutcome, Deadlines), SessionError> {
        let shared = &self.inner.shared;
        let deadlines = live.extended(shared.policy, &state.changes, now);
        let outcome = shared.update(live, &state.changes, deadlines, now).await;
        Ok((outcome.map_err(SessionError::Storage)?, deadlines))
    }

    /// Moves the idle deadline if the lifetime policy says a touch is due
    /// (through the forward, if the id was rotated meanwhile); `None` if
    /// the session ended.
    async fn touch_if_due(
        &self,
        mut live: Live,
        now: Timestamp,
    ) -> Result<Option<Kept>, SessionError> {
        let shared = &self.inner.shared;
        let (own, current) = (live.record.lifetime, live.record.deadlines);
        let Some(extended) = shared.policy.touch_due(own, current, now) else {
            return Ok(Some(Kept::new(live, own, current)));
        };
        let mut touched = self.touch(&live, extended, now).await?;
        if touched == TouchOutcome::Gone
            && let Some(target) = shared
                .follow(&live.key, now)
                .await
                .map_err(SessionError::Storage)?
        {
            live.forward_to(target, &shared.turns);
            touched = self.touch(&live, extended, now).await?;
        }
        Ok(match touched {
            TouchOutcome::Touched => {
                tracing::trace!(key = %live.key, "session touched");
                let mut kept = Kept::new(live, own, extended);
                kept.moved = true;
                Some(kept)
            }
            TouchOutcome::Gone => None,
        })
    }

    /// One touch of `live` to `extended`.
    async fn touch(
        &self,
        live: &Live,
        extended: Deadlines,
        now: Timestamp,
    ) -> Result<TouchOutcome, SessionError> {
        let shared = &self.inner.shared;
        let (storage, key) = (&shared.storage, &live.key);
        // The record as loaded is a hint a store may use (Redis extends
        // the user's index in the same round trip); only an exact one.
        let outcome = if live.exact {
            let touch = storage.touch_from(key, &live.record, extended.idle(), now);
            shared.timed(touch).await
        } else {
            shared.timed(storage.touch(key, extended.idle(), now)).await
        };
        outcome.map_err(SessionError::Storage)
    }

    /// Gives the session a new id if ids rotate and its own is old enough;
    /// `None` if the session ended meanwhile. A rotation that fails keeps
    /// the old id: it is tried again by a later request.
    async fn rotate_if_due(&self, mut kept: Kept, now: Timestamp) -> Option<Kept> {
        let shared = &self.inner.shared;
        let due = shared
            .config
            .rotate_after
            .is_some_and(|after| now >= kept.live.record.issued_at.saturating_add(after));
        if !(shared.rotates && due && kept.live.source == Source::Cookie) {
            return Some(kept);
        }
        match shared.rotate(&kept.live, now).await {
            Rotation::Rotated(live) => Some(Kept { live, ..kept }),
            Rotation::Kept => Some(kept),
            Rotation::Elsewhere => {
                kept.live.source = Source::Forward;
                Some(kept)
            }
            Rotation::Gone => None,
        }
    }

    /// What the browser is owed for `kept` at `now`.
    fn outcome(&self, kept: Kept, now: Timestamp) -> Outcome {
        let Kept {
            live,
            own,
            deadlines,
            moved,
            reshaped,
        } = kept;
        if live.source == Source::Forward {
            return Outcome::NoSession { removal: false };
        }
        Outcome::Live {
            id: live.id,
            deadlines,
            persistent: self.inner.shared.policy.terms(own).persistent,
            known: live.source == Source::Cookie,
            moved,
            reshaped,
            now,
        }
    }
}

/// A live session once its request's writes are done: living by `own`
/// with `deadlines`; `moved`, the request moved them; `reshaped`, it wrote
/// the session a new lifetime.
struct Kept {
    live: Live,
    own: Lifetime,
    deadlines: Deadlines,
    moved: bool,
    reshaped: bool,
}

impl Kept {
    fn new(live: Live, own: Lifetime, deadlines: Deadlines) -> Self {
        Self {
            live,
            own,
            deadlines,
            moved: false,
            reshaped: false,
        }
    }
}
