//! The steps the storage operations are made of: SQLite's write lock, and
//! reading, inserting and deleting one row.

use session_core::{Error, Record, SessionData, SessionKey, Timestamp};
use sqlx::{Sqlite, SqliteConnection, SqliteExecutor, Transaction};

use crate::SqliteStorage;
use crate::row::{Columns, ReadStamp, StoredRow, millis, read_error};

/// A write transaction, the row it read and the record that row turns into.
pub(crate) struct Locked<'a> {
    pub(crate) tx: Transaction<'a, Sqlite>,
    pub(crate) read: ReadStamp,
    pub(crate) next: Record,
}

/// A record's transition under the contract's rules ([`Record::updated`],
/// [`Record::cycled`]): the record to write, or the outcome to report.
pub(crate) type Transition<O> = Result<Record, O>;

impl SqliteStorage {
    /// Starts a write transaction that holds the write lock from its first
    /// statement.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>, Error> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(Error::backend)
    }

    /// The longest `data` column a record within the size limit can have:
    /// longer ones are refused without being fetched.
    pub(crate) fn longest_data(&self) -> i64 {
        let longest = SessionData::max_encoded_len(self.max_record_bytes);
        i64::try_from(longest).unwrap_or(i64::MAX)
    }

    /// The record under `key`: with `live_at`, only if its earlier deadline
    /// is after it (the caller checks both); without, whatever its deadlines.
    pub(crate) async fn read<'c>(
        &self,
        executor: impl SqliteExecutor<'c>,
        key: &SessionKey,
        live_at: Option<Timestamp>,
    ) -> Result<Option<Record>, Error> {
        let key = key.as_bytes().as_slice();
        let query = match live_at {
            Some(now) => sqlx::query_as(self.sql.load.get())
                .bind(key)
                .bind(self.longest_data())
                .bind(millis(now)),
            None => sqlx::query_as(self.sql.load_for_write.get())
                .bind(key)
                .bind(self.longest_data()),
        };
        let row: Option<StoredRow> = query.fetch_optional(executor).await.map_err(read_error)?;
        row.map(|row| row.into_record(self.max_record_bytes))
            .transpose()
    }

    /// Reads the row under `key`, whatever its deadlines, and applies
    /// `transition` to its record. `Err` is the outcome to report with
    /// nothing to write: `gone` if there is no row, or the transition's
    /// refusal.
    pub(crate) async fn read_transition<'c, O>(
        &self,
        executor: impl SqliteExecutor<'c>,
        key: &SessionKey,
        gone: O,
        transition: impl FnOnce(Record) -> Transition<O>,
    ) -> Result<Result<(ReadStamp, Record), O>, Error> {
        let Some(current) = self.read(executor, key, None).await? else {
            return Ok(Err(gone));
        };
        let read = ReadStamp::of(&current);
        Ok(transition(current).map(|next| (read, next)))
    }

    /// [`read_transition`](Self::read_transition) holding SQLite's write
    /// lock from the read on; a refusal rolls the transaction back.
    pub(crate) async fn begin_transition<O>(
        &self,
        key: &SessionKey,
        gone: O,
        transition: impl FnOnce(Record) -> Transition<O>,
    ) -> Result<Result<Locked<'static>, O>, Error> {
        let mut tx = self.begin().await?;
        let transitioned = self
            .read_transition(&mut *tx, key, gone, transition)
            .await?;
        Ok(transitioned.map(|(read, next)| Locked { tx, read, next }))
    }

    /// Inserts a row under `key`; `false` if the key is taken.
    pub(crate) async fn insert(
        &self,
        connection: &mut SqliteConnection,
        key: &SessionKey,
        columns: Columns,
    ) -> Result<bool, Error> {
        let inserted = columns
            .into_row_query((&self.sql.insert, &self.sql.insert_bound), key)
            .execute(connection)
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(false),
            Err(error) => Err(Error::backend(error)),
        }
    }

    /// Inserts a row under `key` and commits; `false` (and nothing
    /// committed) if the key is taken.
    pub(crate) async fn insert_and_commit(
        &self,
        mut tx: Transaction<'_, Sqlite>,
        key: &SessionKey,
        columns: Columns,
    ) -> Result<bool, Error> {
        if !self.insert(&mut tx, key, columns).await? {
            return Ok(false);
        }
        tx.commit().await.map_err(Error::backend)?;
        Ok(true)
    }

    /// Whether a row live at `now` is under `key`.
    pub(crate) async fn is_live<'c>(
        &self,
        executor: impl SqliteExecutor<'c>,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<bool, Error> {
        let found: Option<i64> = sqlx::query_scalar(self.sql.is_live.get())
            .bind(key.as_bytes().as_slice())
            .bind(millis(now))
            .fetch_optional(executor)
            .await
            .map_err(Error::backend)?;
        Ok(found.is_some())
    }

    /// Deletes the row under `key`, if any: with `expired_by`, only if it
    /// expired by then.
    pub(crate) async fn delete_row<'c>(
        &self,
        executor: impl SqliteExecutor<'c>,
        key: &SessionKey,
        expired_by: Option<Timestamp>,
    ) -> Result<(), Error> {
        let key = key.as_bytes().as_slice();
        let query = match expired_by {
            Some(now) => sqlx::query(self.sql.delete_if_expired.get())
                .bind(key)
                .bind(millis(now)),
            None => sqlx::query(self.sql.delete.get()).bind(key),
        };
        query
            .execute(executor)
            .await
            .map(|_| ())
            .map_err(Error::backend)
    }
}
