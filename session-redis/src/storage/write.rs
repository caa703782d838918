//! The writes of a record that may be bound to a user: each keeps the
//! user's index with it. On one node the index is a declared key of the
//! same script; on Redis Cluster it lives on another node, so its step
//! runs first (an index that outlives a write is harmless, a live session
//! missing from it is not).
//!
//! A write that does not know whether the record is bound (no `loaded`
//! hint) runs as before; a bound record answers `bound <user>` without
//! writing, and the write runs again with that user's index. So an
//! unbound request costs what it did; a hinted bound one, one script on
//! one node.
//!
//! A `create` onto a free key and an `update_from` of an unbound record
//! still as loaded take the short scripts of [`fast`](crate::fast) first;
//! when one answers `stale` (it wrote nothing), the full script runs with
//! the same write token, so a resend of the short one that did write is
//! recognised by the full one.

use session_core::{
    ChangeSet, CycleOutcome, Deadlines, Error, Record, RotateOutcome, SessionKey, Timestamp,
    TouchOutcome, UpdateOutcome, UserKey,
};

use super::RedisStorage;
use crate::answer::{Answer, Outcome, outcome};
use crate::index::INDEX_STEP_SCRIPT;
use crate::invocation::{self, Index};
use crate::layout::forward_meta;
use crate::{fast, write_token};

/// How often a write follows `bound` answers before giving up (a record
/// changes its user only by moving to a new key, so twice is plenty).
const BINDINGS_FOLLOWED: usize = 3;

/// The user and absolute deadline of a loaded record, if it is bound:
/// what a write needs to extend the index before the record is read.
pub(super) fn binding(loaded: &Record) -> Option<(UserKey, Timestamp)> {
    let account = loaded.account.as_ref()?;
    Some((account.user, loaded.deadlines.absolute()))
}

impl RedisStorage {
    /// Creates `record` under `key` (the create script), indexing it if it
    /// is bound: the answer, for the cluster's `cycle` to tell a refused
    /// create from a failed call.
    pub(crate) async fn create_record(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<Answer, Error> {
        record.check_size(self.max_record_bytes())?;
        let token = write_token::fresh()?;
        if let Some(short) = fast::create(self.redis_key(key), record, &token, now) {
            match self.script(short).await? {
                Answer::Stale => {}
                answer => return Ok(answer),
            }
        }
        let user = record.account.as_ref().map(|account| account.user);
        let index = match user {
            Some(user) if self.is_cluster() => {
                // Indexed before it can be live.
                let score = record.deadlines.expires_at();
                self.index_step(&user, "add", key, score, now).await?;
                None
            }
            Some(user) => Some(self.index_key(&user)),
            None => None,
        };
        self.script(invocation::create(
            self.redis_key(key),
            record,
            (index, &token),
            now,
        ))
        .await
    }

    /// `update_from`: the short script if it can decide, else `update`
    /// with the binding `loaded` names.
    pub(super) async fn update_loaded(
        &self,
        (key, loaded): (&SessionKey, &Record),
        changes: &ChangeSet,
        (deadlines, now): (Deadlines, Timestamp),
    ) -> Result<UpdateOutcome, Error> {
        let limit = self.max_record_bytes();
        let token = write_token::fresh()?;
        let short = fast::update(
            self.redis_key(key),
            loaded,
            changes,
            (deadlines, now),
            (&token, limit),
        );
        if let Some(short) = short {
            match self.script(short).await? {
                Answer::Stale => {}
                answer => return outcome(answer, limit),
            }
        }
        let bound = binding(loaded);
        self.update_bound((key, &token), bound, changes, deadlines, now)
            .await
    }

    /// `update` with the write `token`, and the binding if the caller
    /// knows it. Every try sends the same token: one that answered `bound`
    /// wrote nothing.
    pub(super) async fn update_bound(
        &self,
        (key, token): (&SessionKey, &str),
        mut bound: Option<(UserKey, Timestamp)>,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let limit = self.max_record_bytes();
        for _ in 0..BINDINGS_FOLLOWED {
            let expiry =
                |absolute: Timestamp| deadlines.idle().min(deadlines.absolute()).min(absolute);
            let index = self.index_for(key, bound, expiry, now).await?;
            let invocation = invocation::update(
                (self.redis_key(key), token),
                changes,
                (deadlines, &index),
                now,
                limit,
            );
            match self.script(invocation).await? {
                Answer::Bound(user, absolute) => bound = Some((user, absolute)),
                answer => return outcome(answer, limit),
            }
        }
        Err(rebound())
    }

    /// `touch`, with the binding if the caller knows it.
    pub(super) async fn touch_bound(
        &self,
        key: &SessionKey,
        mut bound: Option<(UserKey, Timestamp)>,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        for _ in 0..BINDINGS_FOLLOWED {
            let expiry = |absolute: Timestamp| idle_deadline.min(absolute);
            let index = self.index_for(key, bound, expiry, now).await?;
            let invocation = invocation::touch(self.redis_key(key), idle_deadline, &index, now);
            match self.script(invocation).await? {
                Answer::Bound(user, absolute) => bound = Some((user, absolute)),
                answer => return outcome(answer, self.max_record_bytes()),
            }
        }
        Err(rebound())
    }

    /// `cycle` on one node: one script, which moves the index's member
    /// with the record.
    pub(super) async fn cycle_on_node(
        &self,
        (old, new): (&SessionKey, &SessionKey),
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        let limit = self.max_record_bytes();
        let mut index = Index::Unknown;
        for _ in 0..BINDINGS_FOLLOWED {
            let keys = (self.redis_key(old), self.redis_key(new));
            let invocation = invocation::cycle(keys, changes, (deadlines, &index), now, limit)?;
            match self.script(invocation).await? {
                Answer::Bound(user, _) => index = Index::Declared(self.index_key(&user)),
                answer => return outcome(answer, limit),
            }
        }
        Err(rebound())
    }

    /// `rotate` on one node: one script, which moves the index's member
    /// with the record.
    pub(super) async fn rotate_on_node(
        &self,
        (old, new): (&SessionKey, &SessionKey),
        grace_end: Timestamp,
        now: Timestamp,
    ) -> Result<RotateOutcome, Error> {
        let forward = (forward_meta(new, grace_end), grace_end);
        let mut index = Index::Unknown;
        for _ in 0..BINDINGS_FOLLOWED {
            let keys = (self.redis_key(old), self.redis_key(new));
            let invocation = invocation::rotate(keys, forward.clone(), &index, now);
            match self.script(invocation).await? {
                Answer::Bound(user, _) => index = Index::Declared(self.index_key(&user)),
                answer => return outcome(answer, self.max_record_bytes()),
            }
        }
        Err(rebound())
    }

    /// `delete`, and for a forward the record it names too: that record
    /// first, so that a call dropped in between leaves a forward to
    /// nothing, which is what the whole call leaves.
    pub(super) async fn delete_through(&self, key: &SessionKey) -> Result<(), Error> {
        let Some(to) = self.delete_bound(key).await? else {
            return Ok(());
        };
        self.delete_bound(&to).await?;
        self.delete_key(key).await
    }

    /// `delete`, taking a bound record out of its index: in the same
    /// script on one node; on Redis Cluster after it (a member left behind
    /// by a failure is harmless: `list` checks every member). A forward
    /// is left alone: the key it names is returned.
    async fn delete_bound(&self, key: &SessionKey) -> Result<Option<SessionKey>, Error> {
        let steps = self.is_cluster();
        let mut index = Index::Unknown;
        for _ in 0..BINDINGS_FOLLOWED {
            let invocation = invocation::delete(self.redis_key(key), &index, steps);
            match self.script(invocation).await? {
                Answer::Bound(user, _) if steps => {
                    let now = Timestamp::now();
                    return self
                        .index_step(&user, "remove", key, now, now)
                        .await
                        .map(|()| None);
                }
                Answer::Bound(user, _) => index = Index::Declared(self.index_key(&user)),
                Answer::Forward(to) => return Ok(Some(to)),
                answer => return outcome::<Deleted>(answer, 0).map(|Deleted| None),
            }
        }
        Err(rebound())
    }

    /// How a write keeps the index of a record bound to `bound` (the user
    /// and its absolute deadline), whose expiry after the write is at most
    /// `expiry(absolute)`.
    async fn index_for(
        &self,
        key: &SessionKey,
        bound: Option<(UserKey, Timestamp)>,
        expiry: impl Fn(Timestamp) -> Timestamp,
        now: Timestamp,
    ) -> Result<Index, Error> {
        let Some((user, absolute)) = bound else {
            return Ok(Index::Unknown);
        };
        if !self.is_cluster() {
            return Ok(Index::Declared(self.index_key(&user)));
        }
        // The index first: a write never makes a session outlive its
        // member. `XX` never re-adds a member a revoke took out.
        self.index_step(&user, "extend", key, expiry(absolute), now)
            .await?;
        Ok(Index::Extended(user))
    }

    /// One step on `user`'s index alone (`add`, `extend` or `remove` the
    /// member `key` with `score`), then pruned and its TTL set.
    pub(crate) async fn index_step(
        &self,
        user: &UserKey,
        step: &'static str,
        key: &SessionKey,
        score: Timestamp,
        now: Timestamp,
    ) -> Result<(), Error> {
        let mut invocation = INDEX_STEP_SCRIPT.prepare_invoke();
        invocation
            .key(self.index_key(user))
            .arg(step)
            .arg(now.as_unix_millis())
            .arg(key.to_string())
            .arg(score.as_unix_millis());
        match self.script(invocation).await? {
            Answer::Indexed => Ok(()),
            other => Err(Error::backend(format!("unexpected index answer {other:?}"))),
        }
    }
}

/// The error of a write whose record kept changing its user.
fn rebound() -> Error {
    Error::backend("the session's binding kept changing under the write")
}

/// The outcome of the delete script.
struct Deleted;

impl Outcome for Deleted {
    fn from_answer(answer: Answer) -> Result<Self, Answer> {
        match answer {
            Answer::Deleted => Ok(Self),
            other => Err(other),
        }
    }
}
