//! [`SqliteStorage`] and its [`SessionStorage`] implementation.

use std::fmt;

use session_core::{
    Capabilities, ChangeSet, Clock, CreateOutcome, CycleOutcome, Deadlines, Error, Listed, Login,
    LoginOutcome, Record, Revoke, RotateOutcome, SessionKey, SessionStorage, Timestamp,
    TouchOutcome, UpdateOutcome, UserKey, async_trait,
};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use crate::SqliteStorageBuilder;
use crate::batch::{Batches, Write};
use crate::loads::Loads;
use crate::row::{Columns, millis};
use crate::schema::{self, Statements};
use crate::table::Locked;
use crate::writers::Writers;

/// Sessions in a SQLite database. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct SqliteStorage {
    pub(crate) pool: SqlitePool,
    /// Every write waits for its turn here.
    pub(crate) writers: Writers,
    /// Where creates and updates from a loaded record queue to be written
    /// in batches.
    pub(crate) batches: Batches,
    /// Where loads queue to be read in batches.
    pub(crate) loads: Loads,
    pub(crate) sql: Statements,
    pub(crate) max_record_bytes: usize,
    /// Where the cleanup task reads the time.
    pub(crate) clock: Clock,
}

impl fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("max_record_bytes", &self.max_record_bytes)
            .finish_non_exhaustive()
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `url`, such as
    /// `sqlite://sessions.db`, with the defaults.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the file cannot be opened or the table created.
    pub async fn open(url: &str) -> Result<Self, Error> {
        Self::builder().open(url).await
    }

    /// Storage on a pool the application already has, with the defaults.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the table cannot be created.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, Error> {
        Self::builder().from_pool(pool).await
    }

    /// A builder for the table name, record limit, busy timeout and clock.
    pub fn builder() -> SqliteStorageBuilder {
        SqliteStorageBuilder::new()
    }

    /// The pool, for the application's own use of the database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A copy for a task of this storage (the batch writer, the loader):
    /// it has no queues of its own, so the task ends once every storage
    /// holding its queue has been dropped.
    pub(crate) fn detached(&self) -> Self {
        Self {
            batches: Batches::default(),
            loads: Loads::default(),
            ..self.clone()
        }
    }

    /// A task's connection of its own, opened if it has none (at its first
    /// call, and again after a failed one): not from the pool, so that it
    /// keeps its page cache from call to call and closing the pool never
    /// waits for the task.
    pub(crate) async fn own_connection<'c>(
        &self,
        connection: &'c mut Option<SqliteConnection>,
    ) -> Result<&'c mut SqliteConnection, Error> {
        Ok(match connection {
            Some(connection) => connection,
            None => connection
                .insert((self.pool.connect_options().connect().await).map_err(Error::backend)?),
        })
    }
}

#[async_trait]
impl SessionStorage for SqliteStorage {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        let found = self.load_batched(key, now).await?;
        // `expires_at` found the row; both deadlines decide.
        Ok(found.filter(|record| record.is_live(now)))
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        let columns = Columns::of(record, self.max_record_bytes)?;
        // A fresh key is free: one row of a batched insert.
        let insert = Write::Insert {
            key: *key,
            columns: columns.clone(),
        };
        if self.write_batched(insert).await? {
            return Ok(CreateOutcome::Created);
        }
        // Taken: an expired row may be replaced, a live one never is.
        let _turn = self.writers.turn().await;
        let mut tx = self.begin().await?;
        self.delete_row(&mut *tx, key, Some(now)).await?;
        Ok(if self.insert_and_commit(tx, key, columns).await? {
            CreateOutcome::Created
        } else {
            CreateOutcome::Collision
        })
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let _turn = self.writers.turn().await;
        self.update_in_turn(key, changes, deadlines, now).await
    }

    async fn update_from(
        &self,
        key: &SessionKey,
        loaded: &Record,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        self.update_from_loaded(key, loaded, changes, deadlines, now)
            .await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        let _turn = self.writers.turn().await;
        let touched = sqlx::query(self.sql.touch.get())
            .bind(key.as_bytes().as_slice())
            .bind(millis(idle_deadline))
            .bind(millis(now))
            .execute(&self.pool)
            .await
            .map_err(Error::backend)?;
        Ok(if touched.rows_affected() == 1 {
            TouchOutcome::Touched
        } else {
            TouchOutcome::Gone
        })
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        let _turn = self.writers.turn().await;
        let transition = |current: Record| current.cycled(changes, deadlines, now);
        let Locked { mut tx, next, .. } = match self
            .begin_transition(old, CycleOutcome::Gone, transition)
            .await?
        {
            Ok(locked) => locked,
            Err(refused) => return Ok(refused),
        };
        let columns = Columns::of(&next, self.max_record_bytes)?;
        if self.is_live(&mut *tx, new, now).await? {
            return Ok(CycleOutcome::Collision);
        }
        for key in [new, old] {
            self.delete_row(&mut *tx, key, None).await?;
        }
        Ok(if self.insert_and_commit(tx, new, columns).await? {
            CycleOutcome::Cycled
        } else {
            CycleOutcome::Collision
        })
    }

    /// With the record a forward under `key` names: a logout through a
    /// rotated id ends the session.
    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        let _turn = self.writers.turn().await;
        sqlx::query(self.sql.delete_through.get())
            .bind(key.as_bytes().as_slice())
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(Error::backend)
    }

    /// Deletes in batches, so other writers never wait behind one huge
    /// delete.
    async fn delete_expired(&self, now: Timestamp) -> Result<u64, Error> {
        let full_batch = u64::try_from(schema::CLEANUP_BATCH).unwrap_or(u64::MAX);
        let mut deleted = 0;
        loop {
            let turn = self.writers.turn().await;
            let batch = sqlx::query(self.sql.delete_expired.get())
                .bind(millis(now))
                .bind(schema::CLEANUP_BATCH)
                .execute(&self.pool)
                .await
                .map_err(Error::backend)?
                .rows_affected();
            drop(turn);
            deleted += batch;
            if batch < full_batch {
                return Ok(deleted);
            }
        }
    }

    async fn login(
        &self,
        old: Option<&SessionKey>,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        let _turn = self.writers.turn().await;
        self.login_in_turn(old, new, changes, deadlines, login, now)
            .await
    }

    async fn list(&self, user: &UserKey, now: Timestamp) -> Result<Vec<Listed>, Error> {
        self.list_live(user, now).await
    }

    async fn revoke(&self, user: &UserKey, which: &Revoke, now: Timestamp) -> Result<u64, Error> {
        let _turn = self.writers.turn().await;
        self.revoke_in_turn(user, which, now).await
    }

    async fn rotate(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        grace_end: Timestamp,
        now: Timestamp,
    ) -> Result<RotateOutcome, Error> {
        let _turn = self.writers.turn().await;
        self.rotate_in_turn((old, new), grace_end, now).await
    }

    async fn load_following(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<(SessionKey, Record)>, Error> {
        self.load_through(key, now).await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default().with_accounts().with_rotation()
    }
}
