//! `rotate` and its forwards: in one transaction, the record moves to its
//! new key and its old row becomes a forward (a row of version 0 naming
//! the new key, see [`Statements`](crate::schema::Statements)).

use session_core::{Error, Record, RotateOutcome, SessionKey, Timestamp};
use sqlx::FromRow;

use crate::SqliteStorage;
use crate::row::{Columns, KeyedRow, millis, read_error};
use crate::table::Locked;

impl SqliteStorage {
    /// `rotate` of `old` to `new`, the forward ending at `grace_end`. Call
    /// it in this process's turn to write.
    pub(crate) async fn rotate_in_turn(
        &self,
        (old, new): (&SessionKey, &SessionKey),
        grace_end: Timestamp,
        now: Timestamp,
    ) -> Result<RotateOutcome, Error> {
        let transition = |current: Record| current.rotated(now).ok_or(RotateOutcome::Gone);
        let locked = self.begin_transition(old, RotateOutcome::Gone, transition);
        let Locked { mut tx, next, .. } = match locked.await? {
            Ok(locked) => locked,
            Err(refused) => return Ok(refused),
        };
        if old == new || self.is_live(&mut *tx, new, now).await? {
            return Ok(RotateOutcome::Collision);
        }
        self.delete_row(&mut *tx, new, None).await?;
        let columns = Columns::of(&next, self.max_record_bytes)?;
        if !self.insert(&mut tx, new, columns).await? {
            return Ok(RotateOutcome::Collision);
        }
        sqlx::query(self.sql.forward.get())
            .bind(old.as_bytes().as_slice())
            .bind(new.as_bytes().as_slice())
            .bind(millis(now))
            .bind(millis(grace_end))
            .execute(&mut *tx)
            .await
            .map_err(Error::backend)?;
        tx.commit().await.map_err(Error::backend)?;
        Ok(RotateOutcome::Rotated)
    }

    /// The live record under `key`, or under the key a live forward there
    /// names, with the key it is under: one statement.
    pub(crate) async fn load_through(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<(SessionKey, Record)>, Error> {
        let row = sqlx::query(self.sql.load_following.get())
            .bind(key.as_bytes().as_slice())
            .bind(self.longest_data())
            .bind(millis(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(read_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let found = KeyedRow::from_row(&row).map_err(read_error)?;
        let (at, record) = found.into_record(self.max_record_bytes)?;
        // `expires_at` found the row; both deadlines decide.
        Ok(record.is_live(now).then_some((at, record)))
    }
}
