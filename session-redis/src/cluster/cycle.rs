//! `cycle`, `login` and `rotate` on Redis Cluster, where the old key, the
//! new key and the user's index may live on three nodes, so no one script
//! can move the session.
//!
//! The steps run in a spawned task, in this order:
//!
//! 1. seal the old record (it no longer loads or accepts writes); the seal
//!    names the new key, so a revoke that meets it ends the new key too;
//! 2. add the new key to its user's index, if the record is bound: before
//!    it can be live, so it is never live and unlisted;
//! 3. create the new record (a tombstone there, left by a revoke that
//!    found the member before its record, refuses it: the move is `Gone`);
//! 4. for a login with a limit, revoke the excess (as `revoke` does);
//! 5. offer the outcome to the caller;
//! 6. once accepted, delete the sealed record (for a rotation, replace it
//!    with the forward) and take it out of its user's index (cleanup: a
//!    member left behind is harmless, `list` checks every member and
//!    pruning drops it by its score).
//!
//! Between the seal and the forward of a rotation, a plain `load` of the
//! old id finds nothing; `load_following`, which the HTTP layer uses when
//! ids rotate, reads the sealed record again until the move is done. A
//! logout or revoke that meets the sealed record ends the move: its
//! forward step finds the seal gone, deletes the new record and answers
//! `Gone`. One node rotates in one script.
//!
//! A caller that is gone by the offer (its future dropped, by a request
//! timeout for example) never hears of the new id, so the task rolls
//! back: it deletes the new record and unseals the old one. Every failure
//! before the offer rolls back the same way: the old session stays
//! usable. Rollbacks leave the new key's member in the index: a record
//! that a late resend creates there after all is still listed.

use session_core::{
    ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, Login, LoginOutcome, Record,
    RotateOutcome, SessionKey, Timestamp,
};
use tokio::sync::oneshot;

use super::seal;
use crate::answer::{Answer, outcome};
use crate::layout::{self, Fields, decode_record};
use crate::steps;
use crate::storage::RedisStorage;
use crate::{invocation, write_token};

/// What the task tells its caller: the outcome, and for a finished move the
/// way to accept it.
struct Offer {
    outcome: Result<LoginOutcome, Error>,
    accept: Option<oneshot::Sender<()>>,
    /// For a rotation: told once the forward is written (`true`), which the
    /// caller waits for, since its outcome promises that the old key
    /// forwards; `false` if a logout or revoke ended the session while it
    /// moved (the move is then undone, and the outcome is `Gone`).
    forwarded: Option<oneshot::Receiver<bool>>,
}

impl Offer {
    /// An outcome that needs no acceptance: nothing moved.
    fn settled(outcome: Result<LoginOutcome, Error>) -> Self {
        Self {
            outcome,
            accept: None,
            forwarded: None,
        }
    }
}

/// One move: a `cycle` (`login` is `None`: the binding, if any, moves with
/// the record), a `login` (from no old record if `old` is `None`) or a
/// rotation (`rotation` is the end of its grace window).
pub(crate) struct Move {
    pub(crate) old: Option<SessionKey>,
    pub(crate) new: SessionKey,
    pub(crate) changes: ChangeSet,
    pub(crate) deadlines: Deadlines,
    pub(crate) login: Option<Login>,
    pub(crate) rotation: Option<Timestamp>,
    pub(crate) now: Timestamp,
}

/// A seal: the sealed key, the seal (token and new key), and the
/// record's metadata as it was before the seal.
struct Seal {
    key: SessionKey,
    seal: String,
    meta: Vec<u8>,
}

/// The sealed old record: its seal, and the record.
struct Sealed {
    seal: Seal,
    record: Record,
}

/// How far a move got before it stopped.
enum Stopped {
    /// Nothing to undo but the seal: report this.
    Refused(Result<LoginOutcome, Error>),
    /// The create may have happened: undo it, then report this error.
    Unknown(Error),
}

impl RedisStorage {
    /// `cycle` in steps: a [`Move`] without a login.
    pub(crate) async fn cycle_in_steps(
        &self,
        (old, new): (SessionKey, SessionKey),
        changes: ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        let step = Move {
            old: Some(old),
            new,
            changes,
            deadlines,
            login: None,
            rotation: None,
            now,
        };
        Ok(match self.move_in_steps(step).await? {
            LoginOutcome::LoggedIn { .. } => CycleOutcome::Cycled,
            LoginOutcome::Gone => CycleOutcome::Gone,
            LoginOutcome::Collision => CycleOutcome::Collision,
            LoginOutcome::Conflict { current } => CycleOutcome::Conflict { current },
        })
    }

    /// `rotate` in steps: a [`Move`] of the record as it is, which leaves
    /// a forward.
    pub(crate) async fn rotate_in_steps(
        &self,
        (old, new): (SessionKey, SessionKey),
        grace_end: Timestamp,
        now: Timestamp,
    ) -> Result<RotateOutcome, Error> {
        let step = Move {
            old: Some(old),
            new,
            changes: ChangeSet::new(),
            deadlines: Deadlines::new(now, now),
            login: None,
            rotation: Some(grace_end),
            now,
        };
        Ok(match self.move_in_steps(step).await? {
            LoginOutcome::LoggedIn { .. } => RotateOutcome::Rotated,
            LoginOutcome::Collision => RotateOutcome::Collision,
            LoginOutcome::Gone | LoginOutcome::Conflict { .. } => RotateOutcome::Gone,
        })
    }

    /// `login` in steps.
    pub(crate) async fn login_in_steps(
        &self,
        (old, new): (Option<SessionKey>, SessionKey),
        changes: ChangeSet,
        deadlines: Deadlines,
        login: Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        let step = Move {
            old,
            new,
            changes,
            deadlines,
            login: Some(login),
            rotation: None,
            now,
        };
        self.move_in_steps(step).await
    }

    /// A move in a task that outlives the caller's future.
    async fn move_in_steps(&self, step: Move) -> Result<LoginOutcome, Error> {
        let (offers, offered) = oneshot::channel();
        let storage = self.clone();
        tokio::spawn(async move { storage.run_move(step, offers).await });
        let offer = offered.await.map_err(Error::backend)?;
        if let Some(accept) = offer.accept {
            // Taken in the same poll that returns the outcome, so a caller
            // that accepts also hears it. The task is waiting for this
            // answer, so it cannot be gone.
            let _ = accept.send(());
        }
        if let Some(forwarded) = offer.forwarded {
            // The task writes the forward whatever happens to this wait.
            if forwarded.await == Ok(false) {
                return Ok(LoginOutcome::Gone);
            }
        }
        offer.outcome
    }

    /// The task's side: the steps, the offer, then cleanup or rollback.
    async fn run_move(self, step: Move, offers: oneshot::Sender<Offer>) {
        let sealed = match self.seal_step(&step).await {
            Ok(sealed) => sealed,
            Err(outcome) => {
                // Nothing moved: a caller that is gone loses nothing.
                let _ = offers.send(Offer::settled(outcome));
                return;
            }
        };
        let revoked = match self.index_and_create(&step, sealed.as_ref()).await {
            Ok(revoked) => revoked,
            Err(stopped) => {
                let outcome = self.undo(&step, sealed.as_ref(), stopped).await;
                let _ = offers.send(Offer::settled(outcome));
                return;
            }
        };
        if let Err(error) = self.step(steps::OFFER).await {
            self.roll_back(&step.new, sealed.as_ref()).await;
            let _ = offers.send(Offer::settled(Err(error)));
            return;
        }
        let (accept, accepted) = oneshot::channel();
        let (forwarded, cleared) = match step.rotation {
            Some(_) => {
                let (forwarded, cleared) = oneshot::channel::<bool>();
                (Some(forwarded), Some(cleared))
            }
            None => (None, None),
        };
        // A caller that is gone drops the offer, and `accept` with it.
        let _ = offers.send(Offer {
            outcome: Ok(LoginOutcome::LoggedIn { revoked }),
            accept: Some(accept),
            forwarded: cleared,
        });
        if accepted.await.is_err() {
            self.roll_back(&step.new, sealed.as_ref()).await;
            return;
        }
        let forward = step.rotation.map(|end| (step.new, end, step.now));
        let lives = match sealed {
            Some(sealed) => self.clean_up(sealed, forward).await,
            None => true,
        };
        if !lives {
            // Ended while it moved: the new key must not outlive it.
            if let Err(error) = self.delete_key(&step.new).await {
                tracing::error!(%error, key = %step.new, "could not delete the new record of a rotation whose session ended meanwhile");
            }
        }
        if let Some(forwarded) = forwarded {
            let _ = forwarded.send(lives);
        }
    }

    /// Step 1: seals the old record, if there is one.
    async fn seal_step(&self, step: &Move) -> Result<Option<Sealed>, Result<LoginOutcome, Error>> {
        let Some(old) = step.old else {
            return Ok(None);
        };
        self.step(steps::SEAL).await.map_err(Err)?;
        self.seal(&old, &step.new, &step.changes, step.now)
            .await
            .map(Some)
    }

    /// Steps 2 to 4: the new record indexed, created, and the limit kept.
    /// `Ok` with the count the limit revoked once the new record exists.
    async fn index_and_create(&self, step: &Move, sealed: Option<&Sealed>) -> Result<u64, Stopped> {
        let next = self.next_record(step, sealed).map_err(Stopped::Refused)?;
        if let Some(account) = &next.account {
            let user = account.user;
            let score = next.deadlines.expires_at();
            self.step(steps::INDEX_ADD)
                .await
                .map_err(|error| Stopped::Refused(Err(error)))?;
            // A member whose record never comes is harmless: refused.
            self.index_step(&user, "add", &step.new, score, step.now)
                .await
                .map_err(|error| Stopped::Refused(Err(error)))?;
        }
        self.step(steps::CREATE).await.map_err(Stopped::Unknown)?;
        let token = write_token::fresh().map_err(|error| Stopped::Refused(Err(error)))?;
        let invocation =
            invocation::create(self.redis_key(&step.new), &next, (None, &token), step.now);
        let answer = self.script(invocation).await.map_err(Stopped::Unknown)?;
        if let Answer::Revoked = answer {
            // A revoke ended this login before its record came.
            return Err(Stopped::Refused(Ok(LoginOutcome::Gone)));
        }
        match outcome(answer, self.max_record_bytes()) {
            Ok(CreateOutcome::Created) => {}
            Ok(CreateOutcome::Collision) => {
                return Err(Stopped::Refused(Ok(LoginOutcome::Collision)));
            }
            Err(error) => return Err(Stopped::Refused(Err(error))),
        }
        self.keep_limit(step).await.map_err(Stopped::Unknown)
    }

    /// The record to create under the new key: the sealed one (or empty
    /// data) with the changes, as `cycle` or `login` makes it.
    fn next_record(
        &self,
        step: &Move,
        sealed: Option<&Sealed>,
    ) -> Result<Record, Result<LoginOutcome, Error>> {
        let old = sealed.map(|sealed| sealed.record.clone());
        let next = match (&step.login, old) {
            (None, Some(old)) if step.rotation.is_some() => {
                old.rotated(step.now).ok_or(Ok(LoginOutcome::Gone))?
            }
            (Some(login), old) => {
                Record::logged_in(old, &step.changes, step.deadlines, login, step.now)
                    .map_err(Ok)?
            }
            (None, Some(old)) => old
                .cycled(&step.changes, step.deadlines, step.now)
                .map_err(|refused| Ok(login_of_cycle(refused)))?,
            (None, None) => return Err(Ok(LoginOutcome::Gone)),
        };
        next.check_size(self.max_record_bytes()).map_err(Err)?;
        Ok(next)
    }

    /// Step 4: with a limit, revokes the least recently seen others.
    async fn keep_limit(&self, step: &Move) -> Result<u64, Error> {
        let Some(login) = &step.login else {
            return Ok(0);
        };
        let (others, victims) = self
            .limit_choice((step.old.as_ref(), &step.new), login, step.now)
            .await?;
        let mut tally = super::revoke::Tally::default();
        for (member, _) in others
            .iter()
            .filter(|(member, _)| victims.contains(&member.key))
        {
            self.revoke_member(&login.user(), *member, step.now, &mut tally)
                .await?;
        }
        Ok(tally.count())
    }

    /// Undoes what a stopped move did, and says what to report.
    async fn undo(
        &self,
        step: &Move,
        sealed: Option<&Sealed>,
        stopped: Stopped,
    ) -> Result<LoginOutcome, Error> {
        match stopped {
            Stopped::Refused(outcome) => {
                if let Some(sealed) = sealed {
                    self.unseal(&sealed.seal).await;
                }
                outcome
            }
            Stopped::Unknown(error) => {
                self.roll_back(&step.new, sealed).await;
                Err(error)
            }
        }
    }

    /// Seals the old record: `Ok` with the seal and the record, or the
    /// outcome to report (nothing sealed).
    async fn seal(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        now: Timestamp,
    ) -> Result<Sealed, Result<LoginOutcome, Error>> {
        let limit = self.max_record_bytes();
        let token = write_token::fresh().map_err(Err)?;
        let seal = format!("{token};{new}");
        let invocation = seal::seal(self.redis_key(old), &seal, changes, now, limit);
        let (meta, fields) = match self.script(invocation).await.map_err(Err)? {
            Answer::Sealed(meta, fields) => (meta, fields),
            answer => return Err(outcome::<CycleOutcome>(answer, limit).map(login_of_cycle)),
        };
        let record = record_of(&meta, fields, limit);
        let seal = Seal {
            key: *old,
            seal,
            meta,
        };
        match record {
            Ok(Some(record)) => Ok(Sealed { seal, record }),
            refused => {
                // Unreadable, or not a record: nothing can move.
                self.unseal(&seal).await;
                Err(refused.map(|_| LoginOutcome::Gone))
            }
        }
    }

    /// Undoes a move that will not be reported: the new record goes first,
    /// so the two are never both live; if it cannot be deleted the old one
    /// stays sealed.
    async fn roll_back(&self, new: &SessionKey, sealed: Option<&Sealed>) {
        match self.delete_key(new).await {
            Ok(()) => {
                if let Some(sealed) = sealed {
                    self.unseal(&sealed.seal).await;
                }
            }
            Err(error) => {
                tracing::error!(%error, key = %new, "could not delete the new record of a cycle that did not happen; its old session stays sealed");
            }
        }
    }

    /// Step 6: the sealed record goes (replaced by the forward to the new
    /// key until its end, for a rotation), and its member with it. Best
    /// effort: the sealed record no longer counts, and its TTL removes it
    /// anyway. `false` if a rotation found the seal gone: a logout or a
    /// revoke ended the session while it moved.
    async fn clean_up(
        &self,
        sealed: Sealed,
        forward: Option<(SessionKey, Timestamp, Timestamp)>,
    ) -> bool {
        let old = sealed.seal.key;
        if self.step(steps::CLEANUP).await.is_err() {
            return true;
        }
        let cleared = match forward {
            Some(forward) => self.forward(&sealed.seal, forward).await,
            None => self.delete_key(&old).await.map(|()| true),
        };
        match cleared {
            Ok(true) => {}
            Ok(false) => return false,
            Err(error) => {
                tracing::warn!(%error, key = %old, "could not clear a moved session's old record");
                return true;
            }
        }
        let Some(account) = &sealed.record.account else {
            return true;
        };
        let now = Timestamp::now();
        if let Err(error) = self
            .index_step(&account.user, "remove", &old, now, now)
            .await
        {
            tracing::warn!(%error, key = %old, "could not take a cycled session's old key out of its index");
        }
        true
    }

    /// Replaces the record `seal` sealed with a forward to `to` until
    /// `end`, written at `now`, if it is still sealed so: whether it was.
    async fn forward(
        &self,
        seal: &Seal,
        (to, end, now): (SessionKey, Timestamp, Timestamp),
    ) -> Result<bool, Error> {
        let ttl = Deadlines::new(end, end).native_ttl(now);
        let forward = (layout::forward_meta(&to, end), ttl);
        let command = seal::forward(self.redis_key(&seal.key), (&seal.seal, &seal.meta), forward);
        let answer: Vec<Vec<u8>> = self
            .call(|mut connection| async move { command.query_async(&mut connection).await })
            .await?;
        Ok(answer
            .first()
            .is_some_and(|outcome| outcome == b"forwarded"))
    }

    /// Restores a record sealed by a move that did not happen.
    async fn unseal(&self, seal: &Seal) {
        let command = seal::unseal(self.redis_key(&seal.key), &seal.seal, &seal.meta);
        let unsealed: Result<Vec<Vec<u8>>, Error> = self
            .call(|mut connection| async move { command.query_async(&mut connection).await })
            .await;
        if let Err(error) = unsealed {
            tracing::error!(%error, key = %seal.key, "could not unseal a session after a failed cycle");
        }
    }
}

/// The record in a seal's answer: its metadata and data fields.
fn record_of(meta: &[u8], mut fields: Fields, limit: usize) -> Result<Option<Record>, Error> {
    fields.push((layout::META.as_bytes().to_vec(), meta.to_vec()));
    decode_record(fields, limit)
}

/// The login outcome of the same name.
fn login_of_cycle(outcome: CycleOutcome) -> LoginOutcome {
    match outcome {
        CycleOutcome::Cycled => LoginOutcome::LoggedIn { revoked: 0 },
        CycleOutcome::Gone => LoginOutcome::Gone,
        CycleOutcome::Collision => LoginOutcome::Collision,
        CycleOutcome::Conflict { current } => LoginOutcome::Conflict { current },
    }
}
