//! `cycle` on Redis Cluster, where the old and new keys may live on
//! different nodes, so no one script can move the session.
//!
//! The steps run in a spawned task: seal the old record (it no longer
//! loads or accepts writes), create the new one, then offer the outcome to
//! the caller. Only a caller that takes the offer makes the move final:
//! the task then deletes the sealed record, which is cleanup. A caller that
//! is gone by then (its future dropped, by a request timeout for example)
//! never hears of the new id, so the task rolls back: it deletes the new
//! record and unseals the old one. Every failure before the offer rolls
//! back the same way: the old session stays usable.

use session_core::{
    ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, SessionKey, Timestamp,
};
use tokio::sync::oneshot;

use super::seal;
use crate::answer::{Answer, outcome};
use crate::layout::{self, Fields, decode_record};
use crate::storage::RedisStorage;
use crate::write_token;

/// What the task tells its caller: the outcome, and for a finished move the
/// way to accept it.
struct Offer {
    outcome: Result<CycleOutcome, Error>,
    accept: Option<oneshot::Sender<()>>,
}

impl Offer {
    /// An outcome that needs no acceptance: nothing moved.
    fn settled(outcome: Result<CycleOutcome, Error>) -> Self {
        Self {
            outcome,
            accept: None,
        }
    }
}

/// How the new record came out.
enum Moved {
    /// Created: the move is done once the caller accepts it.
    Done,
    /// Not created, with the outcome to report.
    Refused(CycleOutcome),
    /// Not created, with the error to report.
    Failed(Error),
}

/// The sealed old record: the seal's token, and the record's metadata as
/// it was before the seal.
struct Sealed {
    token: String,
    meta: Vec<u8>,
}

impl RedisStorage {
    /// `cycle` in steps, in a task that outlives the caller's future.
    pub(crate) async fn cycle_in_steps(
        &self,
        keys: (SessionKey, SessionKey),
        changes: ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        let (offers, offered) = oneshot::channel();
        let storage = self.clone();
        tokio::spawn(async move {
            storage
                .run_cycle(keys, changes, deadlines, now, offers)
                .await;
        });
        let offer = offered.await.map_err(Error::backend)?;
        if let Some(accept) = offer.accept {
            // Taken in the same poll that returns the outcome, so a caller
            // that accepts also hears it. The task is waiting for this
            // answer, so it cannot be gone.
            let _ = accept.send(());
        }
        offer.outcome
    }

    /// The task's side: the steps, the offer, then cleanup or rollback.
    async fn run_cycle(
        self,
        (old, new): (SessionKey, SessionKey),
        changes: ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
        offers: oneshot::Sender<Offer>,
    ) {
        let sealed = match self
            .seal_and_create((&old, &new), &changes, deadlines, now)
            .await
        {
            Ok(sealed) => sealed,
            Err(outcome) => {
                // Nothing moved: a caller that is gone loses nothing.
                let _ = offers.send(Offer::settled(outcome));
                return;
            }
        };
        let (accept, accepted) = oneshot::channel();
        // A caller that is gone drops the offer, and `accept` with it.
        let _ = offers.send(Offer {
            outcome: Ok(CycleOutcome::Cycled),
            accept: Some(accept),
        });
        if accepted.await.is_err() {
            self.roll_back(&old, &new, &sealed).await;
            return;
        }
        // Best effort: the sealed record no longer counts, and its TTL
        // removes it anyway.
        if let Err(error) = self.delete_key(&old).await {
            tracing::warn!(%error, key = %old, "could not delete a cycled session's old record");
        }
    }

    /// Seals the old record and creates the new one. `Ok` once the new
    /// record exists; otherwise the outcome to report, the old record
    /// unsealed again.
    async fn seal_and_create(
        &self,
        (old, new): (&SessionKey, &SessionKey),
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<Sealed, Result<CycleOutcome, Error>> {
        let (sealed, fields) = self.seal(old, changes, now).await?;
        let settled = match self
            .move_sealed(new, &sealed.meta, fields, changes, deadlines, now)
            .await
        {
            Ok(Moved::Done) => return Ok(sealed),
            Ok(Moved::Refused(outcome)) => Ok(outcome),
            Ok(Moved::Failed(error)) => Err(error),
            Err(error) => {
                // The create may or may not have happened.
                self.roll_back(old, new, &sealed).await;
                return Err(Err(error));
            }
        };
        self.unseal(old, &sealed).await;
        Err(settled)
    }

    /// Seals the old record: `Ok` with its metadata and data fields, or the
    /// outcome to report (nothing sealed).
    async fn seal(
        &self,
        old: &SessionKey,
        changes: &ChangeSet,
        now: Timestamp,
    ) -> Result<(Sealed, Fields), Result<CycleOutcome, Error>> {
        let limit = self.max_record_bytes();
        let token = write_token::fresh().map_err(Err)?;
        let invocation = seal::seal(self.redis_key(old), &token, changes, now, limit);
        match self.script(invocation).await.map_err(Err)? {
            Answer::Sealed(meta, fields) => Ok((Sealed { token, meta }, fields)),
            answer => Err(outcome(answer, limit)),
        }
    }

    /// Creates the new record from the sealed old one. `Err` only when it
    /// is unknown whether the create happened.
    async fn move_sealed(
        &self,
        new: &SessionKey,
        meta: &[u8],
        mut fields: Fields,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<Moved, Error> {
        let limit = self.max_record_bytes();
        fields.push((layout::META.as_bytes().to_vec(), meta.to_vec()));
        let record = match decode_record(fields, limit) {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(Moved::Refused(CycleOutcome::Gone)),
            Err(error) => return Ok(Moved::Failed(error)),
        };
        let next = match record.cycled(changes, deadlines, now) {
            Ok(next) => next,
            Err(refused) => return Ok(Moved::Refused(refused)),
        };
        if let Err(error) = next.check_size(limit) {
            return Ok(Moved::Failed(error));
        }
        let answer = self.create_record(new, &next, now).await?;
        Ok(match outcome(answer, limit) {
            Ok(CreateOutcome::Created) => Moved::Done,
            Ok(CreateOutcome::Collision) => Moved::Refused(CycleOutcome::Collision),
            Err(error) => Moved::Failed(error),
        })
    }

    /// Undoes a move that will not be reported: the new record goes first,
    /// so the two are never both live; if it cannot be deleted the old one
    /// stays sealed.
    async fn roll_back(&self, old: &SessionKey, new: &SessionKey, sealed: &Sealed) {
        match self.delete_key(new).await {
            Ok(()) => self.unseal(old, sealed).await,
            Err(error) => {
                tracing::error!(%error, key = %new, "could not delete the new record of a cycle that did not happen; its old session stays sealed");
            }
        }
    }

    /// Restores a record sealed by a cycle that did not happen.
    async fn unseal(&self, old: &SessionKey, sealed: &Sealed) {
        let command = seal::unseal(self.redis_key(old), &sealed.token, &sealed.meta);
        let unsealed: Result<Vec<Vec<u8>>, Error> = self
            .call(|mut connection| async move { command.query_async(&mut connection).await })
            .await;
        if let Err(error) = unsealed {
            tracing::error!(%error, key = %old, "could not unseal a session after a failed cycle");
        }
    }
}
