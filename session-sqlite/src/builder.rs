//! [`SqliteStorageBuilder`]: the storage's settings, and opening the
//! database they describe.

use std::str::FromStr;
use std::time::Duration;

use session_core::{Clock, DEFAULT_MAX_RECORD_BYTES, Error};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::batch::Batches;
use crate::loads::Loads;
use crate::schema::{self, Statements};
use crate::writers::Writers;
use crate::{InvalidTableName, SqliteStorage};

/// The default table name.
pub const DEFAULT_TABLE: &str = "sessions";
/// How long a writer waits for another by default.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The defaults, for [`SqliteStorage::builder`].
    pub(crate) fn new() -> Self {
        Self {
            table: DEFAULT_TABLE.to_owned(),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            clock: Clock::system(),
        }
    }

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
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
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
            writers: Writers::default(),
            batches: Batches::default(),
            loads: Loads::default(),
            sql: Statements::for_table(&self.table),
            max_record_bytes: self.max_record_bytes,
            clock: self.clock,
        };
        schema::migrate(&storage).await?;
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
