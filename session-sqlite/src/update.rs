//! `update`: read the row, then write the changed record with one statement
//! that matches only the row read; after a few lost races, hold SQLite's
//! write lock from the read to the write.

use session_core::{ChangeSet, Deadlines, Error, Record, SessionKey, Timestamp, UpdateOutcome};
use sqlx::SqliteExecutor;

use crate::SqliteStorage;
use crate::batch::{IfUnchanged, Write};
use crate::row::{Columns, ReadStamp, millis};
use crate::table::Locked;

/// How many times `update` reads and then writes if unchanged before it
/// takes SQLite's write lock for both: each lost race means a writer in
/// another process changed the session in between.
const OPTIMISTIC_ATTEMPTS: u32 = 3;

impl SqliteStorage {
    /// `update_from`: if `loaded` is still the stored record, one
    /// write-if-unchanged in a batch with other requests' writes; else, in
    /// this process's turn to write, what `update` does.
    pub(crate) async fn update_from_loaded(
        &self,
        key: &SessionKey,
        loaded: &Record,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        // A refusal by the loaded record may not hold for the stored one.
        if let Ok(next) = loaded.clone().updated(changes, deadlines, now) {
            let write = self.write_of(key, ReadStamp::of(loaded), &next, now)?;
            if self.write_batched(Write::IfUnchanged(write)).await? {
                return Ok(UpdateOutcome::Updated {
                    version: next.version,
                });
            }
        }
        let _turn = self.writers.turn().await;
        self.update_in_turn(key, changes, deadlines, now).await
    }

    /// `update`, in this process's turn to write: only writers in other
    /// processes can change the row between the read and the write, and if
    /// they keep doing so, SQLite's write lock is held for both.
    pub(crate) async fn update_in_turn(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        for _ in 0..OPTIMISTIC_ATTEMPTS {
            let transition = |current: Record| current.updated(changes, deadlines, now);
            let (read, next) = match self
                .read_transition(&self.pool, key, UpdateOutcome::Gone, transition)
                .await?
            {
                Ok(transitioned) => transitioned,
                // Refused by a consistent read: the answer as of that read.
                Err(refused) => return Ok(refused),
            };
            let write = self.write_of(key, read, &next, now)?;
            if self.write_if_unchanged(&self.pool, write).await? {
                return Ok(UpdateOutcome::Updated {
                    version: next.version,
                });
            }
        }
        self.update_locked(key, changes, deadlines, now).await
    }

    /// `update` holding SQLite's write lock from the read to the write.
    async fn update_locked(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let transition = |current: Record| current.updated(changes, deadlines, now);
        let Locked { mut tx, read, next } = match self
            .begin_transition(key, UpdateOutcome::Gone, transition)
            .await?
        {
            Ok(locked) => locked,
            Err(refused) => return Ok(refused),
        };
        let write = self.write_of(key, read, &next, now)?;
        let written = self.write_if_unchanged(&mut *tx, write).await?;
        if !written {
            // The write lock has been held since the read.
            return Err(Error::backend("row changed under the write lock"));
        }
        tx.commit().await.map_err(Error::backend)?;
        Ok(UpdateOutcome::Updated {
            version: next.version,
        })
    }

    /// `write` in one statement; `false` (nothing written) if the row is
    /// no longer the one it was read from. Call it in this process's turn
    /// to write.
    pub(crate) async fn write_if_unchanged<'c>(
        &self,
        executor: impl SqliteExecutor<'c>,
        write: IfUnchanged,
    ) -> Result<bool, Error> {
        let IfUnchanged {
            key,
            read,
            columns,
            now,
        } = write;
        let statement = match read.user_key() {
            None => &self.sql.write_if_unchanged,
            Some(_) => &self.sql.write_if_unchanged_bound,
        };
        let query = sqlx::query(statement.get())
            .bind(key.as_bytes().as_slice())
            .bind(columns.data)
            .bind(columns.idle)
            .bind(columns.absolute)
            .bind(columns.expires_at)
            .bind(columns.version);
        let query = match columns.binding {
            Some(binding) => query.bind(binding.last_seen),
            None => query,
        };
        let query = query
            .bind(read.version)
            .bind(read.created_at)
            .bind(read.absolute_deadline);
        let query = match read.user_key() {
            Some(user_key) => query.bind(user_key),
            None => query,
        };
        let written = query
            .bind(now)
            .bind(columns.lifetime)
            .execute(executor)
            .await
            .map_err(Error::backend)?;
        Ok(written.rows_affected() == 1)
    }

    /// `next`, read as `read`, as one write-if-unchanged at `now`.
    fn write_of(
        &self,
        key: &SessionKey,
        read: ReadStamp,
        next: &Record,
        now: Timestamp,
    ) -> Result<IfUnchanged, Error> {
        let columns = Columns::of(next, self.max_record_bytes)?;
        IfUnchanged::new(*key, read, columns, millis(now))
    }
}
