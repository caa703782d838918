//! Accounts: `login`, `list` and `revoke`, over the rows of one user that
//! the `user_key` index finds. The two writes are each one `BEGIN
//! IMMEDIATE` transaction, so a dropped future rolls back all of it, and a
//! login and a revoke of the same user never interleave.

use std::iter;

use session_core::{
    ChangeSet, Deadlines, Error, Listed, Login, LoginOutcome, Record, Revoke, SessionKey,
    Timestamp, UserKey,
};
use sqlx::SqliteConnection;

use crate::SqliteStorage;
use crate::row::{Columns, KeyedRow, millis, read_error, session_key, timestamp};

impl SqliteStorage {
    /// `login`, in this process's turn to write.
    pub(crate) async fn login_in_turn(
        &self,
        old: Option<&SessionKey>,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        let mut tx = self.begin().await?;
        let transition = |current| Record::logged_in(current, changes, deadlines, login, now);
        let next = match old {
            Some(old) => self
                .read_transition(&mut *tx, old, LoginOutcome::Gone, |current| {
                    transition(Some(current))
                })
                .await?
                .map(|(_, next)| next),
            None => transition(None),
        };
        let next = match next {
            Ok(next) => next,
            Err(refused) => return Ok(refused),
        };
        let columns = Columns::of(&next, self.max_record_bytes)?;
        if self.is_live(&mut *tx, new, now).await? {
            return Ok(LoginOutcome::Collision);
        }
        // An expired row under the new key goes, as `create` replaces it.
        for key in iter::once(new).chain(old) {
            self.delete_row(&mut *tx, key, None).await?;
        }
        // The old row is gone and the new one not yet there: what is left
        // of the user's live rows are the others.
        let revoked = self.revoke_excess(&mut tx, login, now).await?;
        Ok(if self.insert_and_commit(tx, new, columns).await? {
            LoginOutcome::LoggedIn { revoked }
        } else {
            LoginOutcome::Collision
        })
    }

    /// Deletes the user's live sessions beyond the login's limit, least
    /// recently seen first ([`Login::excess`]), and returns how many.
    async fn revoke_excess(
        &self,
        connection: &mut SqliteConnection,
        login: &Login,
        now: Timestamp,
    ) -> Result<u64, Error> {
        if login.session_limit().is_none() {
            return Ok(0);
        }
        let rows: Vec<(Vec<u8>, Option<i64>)> = sqlx::query_as(self.sql.user_seen.get())
            .bind(login.user().as_bytes().as_slice())
            .bind(millis(now))
            .fetch_all(&mut *connection)
            .await
            .map_err(read_error)?;
        let others = rows
            .into_iter()
            .map(|(key, seen)| {
                let seen =
                    seen.ok_or_else(|| Error::decode("a bound row has no last seen time"))?;
                Ok((session_key(key)?, timestamp(seen)?))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let excess = login.excess(others);
        for key in &excess {
            self.delete_row(&mut *connection, key, None).await?;
        }
        Ok(u64::try_from(excess.len()).unwrap_or(u64::MAX))
    }

    /// `list`: one read of the user's rows that are live by `expires_at`,
    /// each then checked as `load` checks it.
    pub(crate) async fn list_live(
        &self,
        user: &UserKey,
        now: Timestamp,
    ) -> Result<Vec<Listed>, Error> {
        let rows: Vec<KeyedRow> = sqlx::query_as(self.sql.list.get())
            .bind(user.as_bytes().as_slice())
            .bind(self.longest_data())
            .bind(millis(now))
            .fetch_all(&self.pool)
            .await
            .map_err(read_error)?;
        let mut listed = Vec::with_capacity(rows.len());
        for row in rows {
            let (key, record) = row.into_record(self.max_record_bytes)?;
            if record.is_live(now) {
                listed.extend(Listed::of(&key, &record));
            }
        }
        Listed::sort(&mut listed);
        Ok(listed)
    }

    /// `revoke`, in this process's turn to write: every row of the user
    /// that `which` selects goes (expired ones too: they are garbage
    /// anyway); the live ones are counted.
    pub(crate) async fn revoke_in_turn(
        &self,
        user: &UserKey,
        which: &Revoke,
        now: Timestamp,
    ) -> Result<u64, Error> {
        let mut tx = self.begin().await?;
        let rows: Vec<(Vec<u8>, bool)> = sqlx::query_as(self.sql.user_sessions.get())
            .bind(user.as_bytes().as_slice())
            .bind(millis(now))
            .fetch_all(&mut *tx)
            .await
            .map_err(read_error)?;
        let mut revoked = 0;
        for (key, live) in rows {
            let key = session_key(key)?;
            if which.selects(&key) {
                self.delete_row(&mut *tx, &key, None).await?;
                revoked += u64::from(live);
            }
        }
        tx.commit().await.map_err(Error::backend)?;
        Ok(revoked)
    }
}
