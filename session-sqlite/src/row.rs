//! A session's row: the columns read from the table, the columns written to
//! it, and their conversions to and from a [`Record`].
//!
//! Times are Unix milliseconds and versions plain integers, as SQLite
//! stores them.

use session_core::{
    Deadlines, Error, Lifetime, Record, SessionData, SessionKey, Timestamp, UserKey,
};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{FromRow, Row, Sqlite, TypeInfo, ValueRef};

use crate::binding::{self, BoundColumns};
use crate::schema::Sql;

/// A row as read for its record, by the columns `schema` selects.
pub(crate) struct StoredRow {
    data: StoredData,
    created_at: i64,
    idle_deadline: i64,
    absolute_deadline: i64,
    version: i64,
    /// The binding columns as `schema` composes them into one.
    binding: Option<Vec<u8>>,
    /// The session's own lifetime, encoded; `NULL` for the defaults.
    lifetime: Option<Vec<u8>>,
    /// When its key was given to it; `NULL` for at its creation.
    issued_at: Option<i64>,
}

/// The `data` column as `schema` reads it.
enum StoredData {
    /// The encoded values.
    Fetched(Vec<u8>),
    /// The length of values longer than the reader fetches (the longest a
    /// record within the size limit can have), left unread.
    TooLong(i64),
}

impl StoredData {
    /// Column `index`: the data is a blob, the length of data too long to
    /// fetch an integer (one column, not two: every column a statement
    /// returns costs sqlx a copy).
    fn from_column(row: &SqliteRow, index: usize) -> Result<Self, sqlx::Error> {
        let too_long = row.try_get_raw(index)?.type_info().name() == "INTEGER";
        Ok(if too_long {
            Self::TooLong(row.try_get(index)?)
        } else {
            Self::Fetched(row.try_get(index)?)
        })
    }
}

impl FromRow<'_, SqliteRow> for StoredRow {
    fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Self::from_columns(row, 0)
    }
}

impl StoredRow {
    /// The row's columns from position `first` on, in the order `ROW` in
    /// `schema` selects them: by position, since a lookup by name costs
    /// more than decoding the column.
    fn from_columns(row: &SqliteRow, first: usize) -> Result<Self, sqlx::Error> {
        Ok(Self {
            data: StoredData::from_column(row, first)?,
            created_at: row.try_get(first + 1)?,
            idle_deadline: row.try_get(first + 2)?,
            absolute_deadline: row.try_get(first + 3)?,
            version: row.try_get(first + 4)?,
            binding: row.try_get(first + 5)?,
            lifetime: row.try_get(first + 6)?,
            issued_at: row.try_get(first + 7)?,
        })
    }
}

/// A row as read for its record, with its key: how a user's sessions are
/// read.
pub(crate) struct KeyedRow {
    key: Vec<u8>,
    row: StoredRow,
}

impl FromRow<'_, SqliteRow> for KeyedRow {
    fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            key: row.try_get(0)?,
            row: StoredRow::from_columns(row, 1)?,
        })
    }
}

impl KeyedRow {
    /// The key and the record in this row, as [`StoredRow::into_record`]
    /// reads it.
    pub(crate) fn into_record(self, limit: usize) -> Result<(SessionKey, Record), Error> {
        Ok((session_key(self.key)?, self.row.into_record(limit)?))
    }
}

impl StoredRow {
    /// The record in this row; data over `limit` is [`Error::TooLarge`] (a
    /// store someone else can write to may hold anything), anything that is
    /// not a record [`Error::Decode`].
    pub(crate) fn into_record(self, limit: usize) -> Result<Record, Error> {
        let data = match self.data {
            StoredData::Fetched(data) => data,
            StoredData::TooLong(length) => {
                let size = usize::try_from(length).unwrap_or(usize::MAX);
                return Err(Error::TooLarge { size, limit });
            }
        };
        let created_at = timestamp(self.created_at)?;
        let issued_at = self.issued_at.map_or(Ok(created_at), timestamp)?;
        let record = Record::from_parts(
            SessionData::decode(&data)?,
            created_at,
            Deadlines::new(
                timestamp(self.idle_deadline)?,
                timestamp(self.absolute_deadline)?,
            ),
            u64::try_from(self.version).map_err(Error::decode)?,
        )
        .with_account(binding::read(self.binding.as_deref())?)
        .with_lifetime(lifetime(self.lifetime.as_deref())?)
        .with_issued_at(issued_at);
        record.check_size(limit)?;
        Ok(record)
    }
}

/// What identifies the row a record was read from: a write conditioned on
/// these misses a row another writer changed in between (a touch changes
/// none of them, and its deadlines and last seen time are overwritten by
/// the later write's anyway). The user is among them so that a caller's
/// record bound otherwise than the row is never written over it.
#[derive(Clone, Copy)]
pub(crate) struct ReadStamp {
    pub(crate) version: i64,
    pub(crate) created_at: i64,
    pub(crate) absolute_deadline: i64,
    pub(crate) user: Option<UserKey>,
}

impl ReadStamp {
    /// The stamp of the row `record` was read from.
    pub(crate) fn of(record: &Record) -> Self {
        Self {
            version: version(record.version),
            created_at: millis(record.created_at),
            absolute_deadline: millis(record.deadlines.absolute()),
            user: record.account.as_ref().map(|account| account.user),
        }
    }

    /// The user key as the `user_key` column holds it.
    pub(crate) fn user_key(&self) -> Option<&[u8]> {
        self.user.as_ref().map(|user| user.as_bytes().as_slice())
    }
}

/// A record's column values, as written.
#[derive(Clone)]
pub(crate) struct Columns {
    pub(crate) data: Vec<u8>,
    pub(crate) created_at: i64,
    pub(crate) idle: i64,
    pub(crate) absolute: i64,
    pub(crate) expires_at: i64,
    pub(crate) version: i64,
    pub(crate) binding: Option<BoundColumns>,
    /// The session's own lifetime, encoded; `None` for the defaults.
    pub(crate) lifetime: Option<Vec<u8>>,
    /// When its key was given to it; `None` for at its creation.
    pub(crate) issued_at: Option<i64>,
}

/// A statement with its arguments, as sqlx builds it.
pub(crate) type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments>;

impl Columns {
    /// The columns of `record`, refused if its data is over `limit`.
    pub(crate) fn of(record: &Record, limit: usize) -> Result<Self, Error> {
        record.check_size(limit)?;
        Ok(Self {
            data: record.data.encode()?,
            created_at: millis(record.created_at),
            idle: millis(record.deadlines.idle()),
            absolute: millis(record.deadlines.absolute()),
            expires_at: millis(record.deadlines.expires_at()),
            version: version(record.version),
            binding: record
                .account
                .as_deref()
                .map(BoundColumns::of)
                .transpose()?,
            lifetime: (!record.lifetime.is_default()).then(|| record.lifetime.encode()),
            issued_at: (record.issued_at != record.created_at).then(|| millis(record.issued_at)),
        })
    }

    /// A whole row's statement with its values bound, key first, in the
    /// column order of the table: `unbound` (the session columns only)
    /// for a row bound to no one, `bound` (the binding columns too)
    /// otherwise, so an anonymous session's write carries no `NULL`s.
    pub(crate) fn into_row_query<'q>(
        self,
        (unbound, bound): (&Sql, &Sql),
        key: &'q SessionKey,
    ) -> SqliteQuery<'q> {
        let statement = if self.binding.is_some() {
            bound
        } else {
            unbound
        };
        let query = sqlx::query(statement.get())
            .bind(key.as_bytes().as_slice())
            .bind(self.data)
            .bind(self.created_at)
            .bind(self.idle)
            .bind(self.absolute)
            .bind(self.expires_at)
            .bind(self.version);
        let query = match self.binding {
            None => query,
            Some(binding) => query
                .bind(binding.user_key)
                .bind(binding.last_seen)
                .bind(binding.device),
        };
        query.bind(self.lifetime).bind(self.issued_at)
    }
}

/// A failed read: a column of the wrong type is a corrupt row, not a
/// backend failure.
pub(crate) fn read_error(error: sqlx::Error) -> Error {
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
pub(crate) fn millis(at: Timestamp) -> i64 {
    i64::try_from(at.as_unix_millis()).unwrap_or(i64::MAX)
}

/// A session key read back from the `key` column.
pub(crate) fn session_key(bytes: Vec<u8>) -> Result<SessionKey, Error> {
    <[u8; 32]>::try_from(bytes)
        .map(SessionKey::from_bytes)
        .map_err(|_| Error::decode("a session key is 32 bytes"))
}

/// The lifetime in a `lifetime` column: the defaults for `NULL`.
fn lifetime(column: Option<&[u8]>) -> Result<Lifetime, Error> {
    column.map_or(Ok(Lifetime::new()), Lifetime::decode)
}

/// A timestamp read back from a column.
pub(crate) fn timestamp(millis: i64) -> Result<Timestamp, Error> {
    u64::try_from(millis)
        .map(Timestamp::from_unix_millis)
        .map_err(Error::decode)
}
