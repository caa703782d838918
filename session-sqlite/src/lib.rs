//! Durable session storage in an embedded SQLite file, on sqlx.
//!
//! Sessions survive a restart with no server to run. The file is opened in
//! WAL mode with `synchronous = NORMAL` and a busy timeout, so readers never
//! wait for writers and writers wait for each other instead of failing.
//! Writers in one process take turns (a fair queue), so they never meet in
//! SQLite's busy handler, which sleeps rather than queues. `update` reads
//! the row, then writes the changed record with one statement that matches
//! only if the row is still the one read (its version, creation time and
//! absolute deadline; a touch in between changes none of them and is
//! overwritten by the later deadlines anyway), which guards against
//! writers in other processes; after a few lost races it takes the write
//! lock for the whole read and write, in a `BEGIN IMMEDIATE` transaction (a
//! deferred transaction that upgrades to a write would fail without
//! waiting). `update_from` skips the read when the caller's record is
//! still current. `cycle` runs in a `BEGIN IMMEDIATE`
//! transaction; `touch` and `delete` are single statements, and so is
//! `create` unless the key is taken (then a transaction replaces an expired
//! row). Each row holds the hash of the session id, never the id.
//!
//! Rows are not trusted to be what this library wrote: data over the size
//! limit is [`Error::TooLarge`] on every read, and data longer than any
//! within the limit can be encoded is refused by its length, without being
//! fetched.
//!
//! A statement already waiting for SQLite's lock when its caller times out
//! still runs once the lock is free: the caller sees `Timeout` for a write
//! that may then happen, whole (never half).
//!
//! [`SqliteStorage::from_pool`] takes the pool as it is: open it in WAL mode
//! with a busy timeout (as [`SqliteStorage::open`] does), or writers will
//! fail instead of waiting. The storage keeps its schema version in the
//! database's `PRAGMA user_version`.
//!
//! ```no_run
//! use std::time::Duration;
//! use session_sqlite::SqliteStorage;
//!
//! # async fn run() -> Result<(), session_core::Error> {
//! let storage = SqliteStorage::open("sqlite://sessions.db").await?;
//! // Expired rows are never loaded; this deletes them once a minute.
//! let _cleanup = storage.spawn_cleanup(Duration::from_secs(60));
//! # Ok(())
//! # }
//! ```
//!
//! Every write is its own statement or transaction, so every request gets
//! its own outcome; no writer task batches them.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "conformance")]
mod harness;
mod schema;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use session_core::{
    Capabilities, ChangeSet, Clock, CreateOutcome, CycleOutcome, DEFAULT_MAX_RECORD_BYTES,
    Deadlines, Error, Record, SessionData, SessionKey, SessionStorage, Timestamp, TouchOutcome,
    UpdateOutcome, async_trait,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection, SqliteExecutor, Transaction};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

#[cfg(feature = "conformance")]
pub use harness::SqliteHarness;
pub use schema::InvalidTableName;
use schema::{SCHEMA_VERSION, Statements};

/// The default table name.
pub const DEFAULT_TABLE: &str = "sessions";
/// How long a writer waits for another by default.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times `update` reads and then writes if unchanged before it
/// takes SQLite's write lock for both: each lost race means a writer in
/// another process changed the session in between.
const OPTIMISTIC_ATTEMPTS: u32 = 3;

/// Sessions in a SQLite database. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
    /// Whose turn it is to write, in this process (a fair queue). SQLite
    /// runs one writer at a time, and one that finds the database locked
    /// sleeps in the busy handler (1 ms, then longer, up to 100 ms) rather
    /// than waiting its turn: under load, unlucky writers kept losing and
    /// waited for seconds. The process queues its own writers here; the
    /// busy timeout is left to writers in other processes.
    writing: Arc<Mutex<()>>,
    sql: Statements,
    max_record_bytes: usize,
    /// Where the cleanup task reads the time.
    clock: Clock,
}

impl fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("max_record_bytes", &self.max_record_bytes)
            .finish_non_exhaustive()
    }
}

/// A row: data (`None` when longer than [`SqliteStorage::longest_data`]),
/// its length, created, idle, absolute, version.
type Row = (Option<Vec<u8>>, i64, i64, i64, i64, i64);

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
        SqliteStorageBuilder {
            table: DEFAULT_TABLE.to_owned(),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            clock: Clock::system(),
        }
    }

    /// The pool, for the application's own use of the database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Deletes rows expired by the configured clock
    /// ([`SqliteStorageBuilder::clock`]) every `period` (at least a
    /// millisecond) until the returned handle is dropped or the pool is
    /// closed. A failure is logged and the next period tries again.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    #[must_use = "the cleanup task stops when its handle is dropped"]
    pub fn spawn_cleanup(&self, period: Duration) -> CleanupTask {
        let storage = self.clone();
        let period = period.max(Duration::from_millis(1));
        CleanupTask(tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                if storage.pool.is_closed() {
                    return;
                }
                match storage.delete_expired(storage.clock.now()).await {
                    Ok(deleted) => tracing::debug!(deleted, "expired sessions deleted"),
                    Err(error) => {
                        tracing::error!(%error, "deleting expired sessions failed; retrying next period")
                    }
                }
            }
        }))
    }

    /// Starts a write transaction that holds the write lock from its first
    /// statement.
    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, Error> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(Error::backend)
    }

    /// The longest `data` column a record within the size limit can have:
    /// longer ones are refused without being fetched.
    fn longest_data(&self) -> i64 {
        let longest = SessionData::max_encoded_len(self.max_record_bytes);
        i64::try_from(longest).unwrap_or(i64::MAX)
    }

    /// The record in a row; a row whose data is over the size limit is
    /// [`Error::TooLarge`] (a store someone else can write to may hold
    /// anything), anything that is not a record [`Error::Decode`].
    fn record(&self, row: Row) -> Result<Record, Error> {
        let (data, length, created_at, idle, absolute, version) = row;
        let limit = self.max_record_bytes;
        let Some(data) = data else {
            let size = usize::try_from(length).unwrap_or(usize::MAX);
            return Err(Error::TooLarge { size, limit });
        };
        let record = Record::from_parts(
            SessionData::decode(&data)?,
            timestamp(created_at)?,
            Deadlines::new(timestamp(idle)?, timestamp(absolute)?),
            u64::try_from(version).map_err(Error::decode)?,
        );
        record.check_size(limit)?;
        Ok(record)
    }

    /// The row under `key`, whatever its deadlines.
    async fn row<'c>(
        &self,
        executor: impl SqliteExecutor<'c>,
        key: &SessionKey,
    ) -> Result<Option<Record>, Error> {
        let row: Option<Row> = sqlx::query_as(self.sql.load_for_write.get())
            .bind(key.as_bytes().as_slice())
            .bind(self.longest_data())
            .fetch_optional(executor)
            .await
            .map_err(read_error)?;
        row.map(|row| self.record(row)).transpose()
    }

    /// Writes `read` with `changes` applied, if the row under `key` is still
    /// the one `read` came from, in one statement. Call it in this process's
    /// turn to write.
    async fn write_if_unchanged<'c>(
        &self,
        executor: impl SqliteExecutor<'c>,
        key: &SessionKey,
        read: &Record,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<Attempt, Error> {
        let next = match read.clone().updated(changes, deadlines, now) {
            Ok(next) => next,
            Err(refused) => return Ok(Attempt::Refused(refused)),
        };
        let columns = Columns::of(&next, self.max_record_bytes)?;
        let written = sqlx::query(self.sql.write_if_unchanged.get())
            .bind(key.as_bytes().as_slice())
            .bind(columns.data)
            .bind(columns.idle)
            .bind(columns.absolute)
            .bind(columns.expires_at)
            .bind(columns.version)
            .bind(version(read.version))
            .bind(millis(read.created_at))
            .bind(millis(read.deadlines.absolute()))
            .bind(millis(now))
            .execute(executor)
            .await
            .map_err(Error::backend)?;
        Ok(if written.rows_affected() == 1 {
            Attempt::Written(UpdateOutcome::Updated {
                version: next.version,
            })
        } else {
            Attempt::Stale
        })
    }

    /// `update`, in this process's turn to write: only writers in other
    /// processes can change the row between the read and the write, and if
    /// they keep doing so, SQLite's write lock is held for both.
    async fn update_in_turn(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        for _ in 0..OPTIMISTIC_ATTEMPTS {
            let Some(current) = self.row(&self.pool, key).await? else {
                return Ok(UpdateOutcome::Gone);
            };
            match self
                .write_if_unchanged(&self.pool, key, &current, changes, deadlines, now)
                .await?
            {
                // Refused by a consistent read: the answer as of that read.
                Attempt::Written(outcome) | Attempt::Refused(outcome) => return Ok(outcome),
                Attempt::Stale => {}
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
        let mut tx = self.begin().await?;
        let Some(current) = self.row(&mut *tx, key).await? else {
            return Ok(UpdateOutcome::Gone);
        };
        let attempt = self
            .write_if_unchanged(&mut *tx, key, &current, changes, deadlines, now)
            .await?;
        let outcome = match attempt {
            Attempt::Written(outcome) | Attempt::Refused(outcome) => outcome,
            // The write lock has been held since the read.
            Attempt::Stale => return Err(Error::backend("row changed under the write lock")),
        };
        tx.commit().await.map_err(Error::backend)?;
        Ok(outcome)
    }

    /// Inserts a row under `key`; `false` if the key is taken.
    async fn insert(
        &self,
        connection: &mut SqliteConnection,
        key: &SessionKey,
        columns: Columns,
    ) -> Result<bool, Error> {
        let inserted = columns
            .bind_row(sqlx::query(self.sql.insert.get()), key)
            .execute(connection)
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(false),
            Err(error) => Err(Error::backend(error)),
        }
    }
}

/// What an optimistic write of a change set came to.
enum Attempt {
    /// Written: the outcome to report.
    Written(UpdateOutcome),
    /// The record read refused the changes (gone, or a condition failed);
    /// nothing written.
    Refused(UpdateOutcome),
    /// The row changed between the read and the write; nothing written.
    Stale,
}

/// A record's column values.
#[derive(Clone)]
struct Columns {
    data: Vec<u8>,
    created_at: i64,
    idle: i64,
    absolute: i64,
    expires_at: i64,
    version: i64,
}

impl Columns {
    /// The columns of `record`, refused if its data is over `limit`.
    fn of(record: &Record, limit: usize) -> Result<Self, Error> {
        record.check_size(limit)?;
        Ok(Self {
            data: record.data.encode()?,
            created_at: millis(record.created_at),
            idle: millis(record.deadlines.idle()),
            absolute: millis(record.deadlines.absolute()),
            expires_at: millis(record.deadlines.expires_at()),
            version: version(record.version),
        })
    }

    /// Binds a whole row, key first, in the column order of the table.
    fn bind_row<'q>(
        self,
        query: sqlx::query::Query<'q, Sqlite, <Sqlite as sqlx::Database>::Arguments>,
        key: &'q SessionKey,
    ) -> sqlx::query::Query<'q, Sqlite, <Sqlite as sqlx::Database>::Arguments> {
        query
            .bind(key.as_bytes().as_slice())
            .bind(self.data)
            .bind(self.created_at)
            .bind(self.idle)
            .bind(self.absolute)
            .bind(self.expires_at)
            .bind(self.version)
    }
}

/// A failed read: a column of the wrong type is a corrupt row, not a
/// backend failure.
fn read_error(error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => Error::decode(error),
        error => Error::backend(error),
    }
}

/// A version as SQLite's integer, saturating (versions never get there).
fn version(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

/// A timestamp as SQLite's integer; every [`Timestamp`] fits.
fn millis(at: Timestamp) -> i64 {
    i64::try_from(at.as_unix_millis()).unwrap_or(i64::MAX)
}

/// A timestamp read back from a column.
fn timestamp(millis: i64) -> Result<Timestamp, Error> {
    u64::try_from(millis)
        .map(Timestamp::from_unix_millis)
        .map_err(Error::decode)
}

#[async_trait]
impl SessionStorage for SqliteStorage {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        let row: Option<Row> = sqlx::query_as(self.sql.load.get())
            .bind(key.as_bytes().as_slice())
            .bind(millis(now))
            .bind(self.longest_data())
            .fetch_optional(&self.pool)
            .await
            .map_err(read_error)?;
        // `expires_at` found the row; both deadlines decide.
        Ok(row
            .map(|row| self.record(row))
            .transpose()?
            .filter(|record| record.is_live(now)))
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        let columns = Columns::of(record, self.max_record_bytes)?;
        let _turn = self.writing.lock().await;
        let mut connection = self.pool.acquire().await.map_err(Error::backend)?;
        // A fresh key is free: one statement.
        if self.insert(&mut connection, key, columns.clone()).await? {
            return Ok(CreateOutcome::Created);
        }
        drop(connection);
        // Taken: an expired row may be replaced, a live one never is.
        let mut tx = self.begin().await?;
        sqlx::query(self.sql.delete_if_expired.get())
            .bind(key.as_bytes().as_slice())
            .bind(millis(now))
            .execute(&mut *tx)
            .await
            .map_err(Error::backend)?;
        if !self.insert(&mut tx, key, columns).await? {
            return Ok(CreateOutcome::Collision);
        }
        tx.commit().await.map_err(Error::backend)?;
        Ok(CreateOutcome::Created)
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let _turn = self.writing.lock().await;
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
        let _turn = self.writing.lock().await;
        match self
            .write_if_unchanged(&self.pool, key, loaded, changes, deadlines, now)
            .await?
        {
            Attempt::Written(outcome) => Ok(outcome),
            // A refusal by the loaded record may not hold for the stored one.
            Attempt::Refused(_) | Attempt::Stale => {
                self.update_in_turn(key, changes, deadlines, now).await
            }
        }
    }

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        let _turn = self.writing.lock().await;
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
        let _turn = self.writing.lock().await;
        let mut tx = self.begin().await?;
        let Some(current) = self.row(&mut *tx, old).await? else {
            return Ok(CycleOutcome::Gone);
        };
        let next = match current.cycled(changes, deadlines, now) {
            Ok(next) => next,
            Err(refused) => return Ok(refused),
        };
        let columns = Columns::of(&next, self.max_record_bytes)?;
        let taken: Option<i64> = sqlx::query_scalar(self.sql.is_live.get())
            .bind(new.as_bytes().as_slice())
            .bind(millis(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::backend)?;
        if taken.is_some() {
            return Ok(CycleOutcome::Collision);
        }
        for key in [new, old] {
            sqlx::query(self.sql.delete.get())
                .bind(key.as_bytes().as_slice())
                .execute(&mut *tx)
                .await
                .map_err(Error::backend)?;
        }
        if !self.insert(&mut tx, new, columns).await? {
            return Ok(CycleOutcome::Collision);
        }
        tx.commit().await.map_err(Error::backend)?;
        Ok(CycleOutcome::Cycled)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        let _turn = self.writing.lock().await;
        sqlx::query(self.sql.delete.get())
            .bind(key.as_bytes().as_slice())
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(Error::backend)
    }

    /// Deletes in batches, so other writers never wait behind one huge
    /// delete.
    async fn delete_expired(&self, now: Timestamp) -> Result<u64, Error> {
        let mut deleted = 0;
        loop {
            let turn = self.writing.lock().await;
            let batch = sqlx::query(self.sql.delete_expired.get())
                .bind(millis(now))
                .bind(schema::CLEANUP_BATCH)
                .execute(&self.pool)
                .await
                .map_err(Error::backend)?
                .rows_affected();
            drop(turn);
            deleted += batch;
            if batch < u64::try_from(schema::CLEANUP_BATCH).unwrap_or(u64::MAX) {
                return Ok(deleted);
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
}

/// The cleanup task of [`SqliteStorage::spawn_cleanup`]; dropping it stops
/// the task.
#[derive(Debug)]
#[must_use = "the cleanup task stops when its handle is dropped"]
pub struct CleanupTask(JoinHandle<()>);

impl Drop for CleanupTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sets the table, record limit, busy timeout and clock of a
/// [`SqliteStorage`].
#[derive(Debug)]
#[must_use]
pub struct SqliteStorageBuilder {
    table: String,
    max_record_bytes: usize,
    busy_timeout: Duration,
    clock: Clock,
}

impl SqliteStorageBuilder {
    /// The table (default [`DEFAULT_TABLE`]): a letter or `_`, then at most
    /// 62 letters, digits or `_`.
    ///
    /// # Errors
    ///
    /// [`InvalidTableName`] for any other name.
    pub fn table(mut self, table: impl Into<String>) -> Result<Self, InvalidTableName> {
        let table = table.into();
        schema::validate(&table)?;
        self.table = table;
        Ok(self)
    }

    /// The largest session data accepted (default
    /// [`DEFAULT_MAX_RECORD_BYTES`]).
    pub fn max_record_bytes(mut self, max_record_bytes: usize) -> Self {
        self.max_record_bytes = max_record_bytes;
        self
    }

    /// How long a writer waits for another before failing (default
    /// [`DEFAULT_BUSY_TIMEOUT`]); applies to databases [`open`](Self::open)s.
    pub fn busy_timeout(mut self, busy_timeout: Duration) -> Self {
        self.busy_timeout = busy_timeout;
        self
    }

    /// Where the cleanup task ([`SqliteStorage::spawn_cleanup`]) reads the
    /// time (default [`Clock::system`]): give it the clock the HTTP layer
    /// uses, so that what the layer treats as expired is what gets deleted.
    /// The storage operations take the time as an argument and never read
    /// this clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Opens (creating if needed) the database at `url`: WAL,
    /// `synchronous = NORMAL`, the busy timeout; then creates the table.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the file cannot be opened or the table created.
    pub async fn open(self, url: &str) -> Result<SqliteStorage, Error> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(Error::backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(self.busy_timeout);
        let pool = connect(options, self.busy_timeout).await?;
        self.from_pool(pool).await
    }

    /// Storage on `pool`; creates the table if it is not there.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if the table cannot be created, or the database
    /// holds a newer schema than this library knows.
    pub async fn from_pool(self, pool: SqlitePool) -> Result<SqliteStorage, Error> {
        let storage = SqliteStorage {
            pool,
            writing: Arc::new(Mutex::new(())),
            sql: Statements::for_table(&self.table),
            max_record_bytes: self.max_record_bytes,
            clock: self.clock,
        };
        migrate(&storage).await?;
        Ok(storage)
    }
}

/// Connects, retrying while another process holds the lock for as long as
/// the busy timeout: switching a new file to WAL takes an exclusive lock
/// that SQLite's busy handler does not wait for.
async fn connect(
    options: SqliteConnectOptions,
    busy_timeout: Duration,
) -> Result<SqlitePool, Error> {
    let started = tokio::time::Instant::now();
    loop {
        // Connections are kept: an in-memory database (`sqlite::memory:`)
        // would vanish with its last connection.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        match pool.connect_with(options.clone()).await {
            Err(sqlx::Error::Database(error))
                if is_busy(error.code().as_deref()) && started.elapsed() < busy_timeout =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            connected => return connected.map_err(Error::backend),
        }
    }
}

/// Whether an SQLite result code (extended or not) is `SQLITE_BUSY` or
/// `SQLITE_LOCKED`.
fn is_busy(code: Option<&str>) -> bool {
    code.and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

/// Creates the table and index if missing, under `BEGIN IMMEDIATE` so that
/// two processes opening a new file at once take turns.
async fn migrate(storage: &SqliteStorage) -> Result<(), Error> {
    let mut tx = storage.begin().await?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::backend)?;
    if version > SCHEMA_VERSION {
        return Err(Error::backend(format!(
            "the session database has schema version {version}; this library knows {SCHEMA_VERSION}"
        )));
    }
    for statement in [&storage.sql.create_table, &storage.sql.create_index] {
        sqlx::query(statement.get())
            .execute(&mut *tx)
            .await
            .map_err(Error::backend)?;
    }
    if version < SCHEMA_VERSION {
        sqlx::query(AssertSqlSafe(format!(
            "PRAGMA user_version = {SCHEMA_VERSION}"
        )))
        .execute(&mut *tx)
        .await
        .map_err(Error::backend)?;
    }
    tx.commit().await.map_err(Error::backend)
}
