//! [`Session::update`]: a conditioned read-modify-write, written now and
//! retried on conflict, and its retry policy.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use session_core::{ChangeSet, UpdateOutcome, Value};

use super::Session;
use super::state::{Origin, State, poison};
use crate::SessionError;

impl Session {
    /// Replaces the value under `name` with `next(current)`, now, atomically.
    ///
    /// The write is conditioned on the stored value being the one `next`
    /// saw; if another request changed it meanwhile, `next` runs again on
    /// the new value (a few times, with jitter). So concurrent requests
    /// incrementing a counter never lose an increment. The request's other
    /// changes so far are written in the same atomic step. With no session
    /// yet, this creates one. Unlike [`insert`](Self::insert), the write has
    /// happened when this returns, whatever the response.
    ///
    /// Requests of one layer take turns per session: an `update` waits
    /// until those of the same session that other requests of the layer
    /// started before it are done, in the order they came, and starts from
    /// the record the last write of the layer left. Within one process
    /// they never race each other, so retries (and
    /// [`SessionError::Contended`]) are left to writers in other processes
    /// sharing the storage, or to another request's deferred write of the
    /// same name at its end, which takes no turn.
    ///
    /// # Errors
    ///
    /// [`SessionError::Contended`] if every attempt met a conflicting write;
    /// [`SessionError::Gone`] if the session ended during the request;
    /// [`SessionError::Storage`] if the write failed or timed out (a timed
    /// out write may or may not have happened). A storage failure poisons
    /// the session like a failed load: the response becomes the
    /// store-failure response and nothing more is written.
    pub async fn update<T, F>(&self, name: &str, mut next: F) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnMut(Option<T>) -> T + Send,
    {
        let mut state = self.writable().await?;
        let result = if matches!(state.origin, Origin::Live(_)) {
            self.update_live(&mut state, name, &mut next).await
        } else {
            self.create_with(&mut state, name, &mut next).await
        };
        result.map_err(|error| poison(&mut state, error))
    }

    /// `update` with no session yet: creates one now, holding the request's
    /// changes so far and the new value.
    async fn create_with<T, F>(
        &self,
        state: &mut State,
        name: &str,
        next: &mut F,
    ) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let shared = &self.inner.shared;
        let value = next(state.get(name)?);
        let mut data = state.view();
        data.insert_value(
            name.to_owned(),
            Value::encode(&value).map_err(SessionError::Value)?,
        );
        let live = shared
            .create(data, state.own_lifetime(), shared.now())
            .await?;
        state.changes = ChangeSet::new();
        state.origin = Origin::Live(live);
        Ok(value)
    }

    /// `update` of a live session: the request's changes so far and the new
    /// value, conditioned on the stored value, retried on conflict, during
    /// the session's turn.
    async fn update_live<T, F>(
        &self,
        state: &mut State,
        name: &str,
        next: &mut F,
    ) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let shared = &self.inner.shared;
        let attempts = shared.config.update_attempts;
        let Origin::Live(live) = &state.origin else {
            return Err(SessionError::Contended { attempts });
        };
        // Held across every attempt and backoff: no other request of this
        // layer writes the value meanwhile, so a conflict after the first
        // attempt comes from another process.
        let turn = live.ticket.turn().await;
        let latest = live.ticket.latest(&live.record);
        state.catch_up(latest);
        let result = self.attempts(state, name, next).await;
        turn.pass_on(|| state.exact_record());
        result
    }

    /// The attempts of `update_live`, during the session's turn.
    async fn attempts<T, F>(
        &self,
        state: &mut State,
        name: &str,
        next: &mut F,
    ) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let attempts = self.inner.shared.config.update_attempts;
        for attempt in 1..=attempts {
            if let Some(value) = self.attempt(state, name, next, attempt).await? {
                return Ok(value);
            }
            // The first attempt wrote against the value as last known,
            // which the requests ahead in the queue may have changed
            // since; its conflict told the value as it is now (or it found
            // the session rotated to a new key): retry that at once.
            if attempt > 1 && attempt < attempts {
                backoff(attempt - 1).await;
            }
        }
        Err(SessionError::Contended { attempts })
    }

    /// One conditioned write of `update_live`: the value it wrote, or
    /// `None` on a conflict, the record then holding the stored value.
    async fn attempt<T, F>(
        &self,
        state: &mut State,
        name: &str,
        next: &mut F,
        attempt: u32,
    ) -> Result<Option<T>, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let shared = &self.inner.shared;
        let value = next(state.get(name)?);
        let State {
            origin: Origin::Live(live),
            changes,
            refresh_cookie,
            lifetime_written,
            ..
        } = state
        else {
            // Not reached: `update_live` starts live, and only `Gone`
            // (which ends the loop) leaves it.
            return Err(SessionError::Contended { attempts: attempt });
        };
        let encoded = Value::encode(&value).map_err(SessionError::Value)?;
        let mut write = changes.clone();
        write.require(name, live.record.data.get_value(name).cloned());
        write.insert(name, encoded);
        let now = shared.now();
        let deadlines = live.extended(shared.policy, &write, now);
        let key = live.key;
        let outcome = shared.update(live, &write, deadlines, now).await;
        match outcome.map_err(SessionError::Storage)? {
            UpdateOutcome::Updated { version } => {
                match live.stored_after(&write, (deadlines, now), version) {
                    Some(stored) => live.record = stored,
                    None => {
                        write.apply(&mut live.record.data);
                        live.record.lifetime = live.own_lifetime(&write);
                        live.record.version = version;
                        live.exact = false;
                        live.record.deadlines = live.record.deadlines.narrowed_by(deadlines);
                    }
                }
                *lifetime_written |= write.lifetime().is_some();
                *changes = ChangeSet::new();
                *refresh_cookie = true;
                Ok(Some(value))
            }
            UpdateOutcome::Conflict { current } => {
                tracing::debug!(%key, attempt, "session update conflicted");
                match current.value(name) {
                    Some(value) => live
                        .record
                        .data
                        .insert_value(name.to_owned(), value.clone()),
                    None => live.record.data.remove(name),
                };
                live.exact = false;
                Ok(None)
            }
            UpdateOutcome::Gone => {
                // An id rotated since the load: the same session, through
                // its forward; tried again at once, as after a conflict.
                let forward = shared.follow(&key, now).await;
                if let Some(target) = forward.map_err(SessionError::Storage)? {
                    live.forward_to(target, &shared.turns);
                    return Ok(None);
                }
                tracing::debug!(%key, "session ended during the request");
                state.end();
                Err(SessionError::Gone)
            }
        }
    }
}

/// Waits before backed-off retry number `attempt` (from 1): a random time
/// between 2^attempt and 2^(attempt+1) milliseconds, at most 512 to 1024,
/// so writers of different processes that collided spread out instead of
/// colliding again. With the default 12 attempts, a request under heavy
/// contention waits a few seconds at worst before giving up with
/// `Contended`.
async fn backoff(attempt: u32) {
    let floor = 1_u64 << attempt.min(9);
    // `RandomState` is seeded randomly per instance: plenty for jitter.
    let jitter = RandomState::new().hash_one(attempt) % floor;
    tokio::time::sleep(Duration::from_millis(floor + jitter)).await;
}
