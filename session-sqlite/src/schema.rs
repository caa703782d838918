//! The table, its indexes, every statement run against them, and the
//! migration that creates them or brings them up to date.
//!
//! A table name is configurable, so statements are built once, from a name
//! validated to be a plain identifier; that validation is the one place
//! that vouches for the SQL being safe.

use std::sync::Arc;

use session_core::Error;
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::SqliteStorage;
use crate::binding::longest_device;

/// Rows `delete_expired` deletes per statement.
pub(crate) const CLEANUP_BATCH: i64 = 1_000;

/// How many writes a batch statement holds: a few sizes, so a few
/// statement texts (each prepared once per connection) serve every batch.
pub(crate) const BATCH_SIZES: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

/// `items` in pieces whose sizes are in [`BATCH_SIZES`], largest first,
/// so that a few statement texts serve every batch (sqlx prepares each
/// text once per connection).
pub(crate) fn pieces<T>(mut items: &[T]) -> Vec<&[T]> {
    let mut pieces = Vec::new();
    for size in BATCH_SIZES.iter().rev() {
        while items.len() >= *size {
            let (piece, rest) = items.split_at(*size);
            pieces.push(piece);
            items = rest;
        }
    }
    pieces
}

/// Where a piece of `length` items finds its statement among those made
/// for each of [`BATCH_SIZES`].
pub(crate) fn statement_for(length: usize) -> Result<usize, Error> {
    BATCH_SIZES
        .iter()
        .position(|size| *size == length)
        .ok_or_else(|| Error::backend(format!("no batch statement holds {length} rows")))
}

/// Version of the schema written to `PRAGMA user_version`: 1, the session
/// columns; 2, the binding columns (`user_key`, `last_seen`, `device`) and
/// the index of each user's sessions; 3, the `lifetime` and `issued_at`
/// columns, and forwards (rows of version 0, see [`Statements`]).
const SCHEMA_VERSION: i64 = 3;

/// The table name is not `^[A-Za-z_][A-Za-z0-9_]{0,62}$`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("table name {0:?} must be a letter or '_' followed by at most 62 letters, digits or '_'")]
pub struct InvalidTableName(pub(crate) String);

/// Checks that `name` is a plain SQL identifier.
pub(crate) fn validate(name: &str) -> Result<(), InvalidTableName> {
    let mut bytes = name.bytes();
    let valid = bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && name.len() <= 63
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if valid {
        Ok(())
    } else {
        Err(InvalidTableName(name.to_owned()))
    }
}

/// The columns a record is read from, in the order
/// [`StoredRow`](crate::row::StoredRow) reads them: `data`, or its length
/// (an integer) when longer than `?2`; then [`BINDING`], `lifetime` and
/// `issued_at`.
const ROW: &str = "CASE WHEN length(data) <= ?2 THEN data ELSE length(data) END AS data,
    created_at, idle_deadline, absolute_deadline, version, {binding}, lifetime, issued_at";

/// The binding columns, read as one: `NULL` for a row bound to no one, the
/// 32-byte `user_key`, `last_seen` as 8 bytes big-endian and the `device`
/// facts for a bound row, and an empty blob for a bound row whose columns
/// are malformed (a user key of another length, a `last_seen` that is no
/// integer, no `device` or one longer than any device facts encode to).
/// One column rather than three because every column a statement returns
/// costs sqlx a copy and a lookup, on every load of every session, bound or
/// not: three cost a plain `/read` 7 % more instructions.
const BINDING: &str = "CASE
    WHEN user_key IS NULL THEN NULL
    WHEN typeof(user_key) = 'blob' AND length(user_key) = 32
        AND typeof(last_seen) = 'integer'
        AND typeof(device) = 'blob' AND length(device) <= {longest_device}
        THEN CAST(user_key || unhex(printf('%016x', last_seen)) || device AS BLOB)
    ELSE x''
    END AS binding";

/// A row's session columns and their parameters, in the order
/// [`Columns::into_row_query`](crate::row::Columns::into_row_query) binds
/// them: all a row bound to no one has, and its lifetime.
const ROW_VALUES: &str = "(key, data, created_at, idle_deadline, absolute_deadline, expires_at,
    version, lifetime, issued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// [`ROW_VALUES`] and the binding columns: a bound row.
const BOUND_ROW_VALUES: &str = "(key, data, created_at, idle_deadline, absolute_deadline,
    expires_at, version, user_key, last_seen, device, lifetime, issued_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// The columns tables of earlier schema versions lack, as `ALTER TABLE ADD
/// COLUMN` takes them (in the order `CREATE TABLE` has them), each group
/// with the column that tells whether it is there: `NULL` in every
/// existing row, which is bound to no one and lives by its layer's
/// defaults.
const ADDED_COLUMNS: [(&str, &[&str]); 3] = [
    (
        "user_key",
        &["user_key BLOB", "last_seen INTEGER", "device BLOB"],
    ),
    ("lifetime", &["lifetime BLOB"]),
    ("issued_at", &["issued_at INTEGER"]),
];

/// A statement ready to hand to sqlx.
#[derive(Clone)]
pub(crate) struct Sql(Arc<str>);

impl Sql {
    fn new(text: String) -> Self {
        Self(text.into())
    }

    /// The statement for sqlx; `validate` vouched for the table name in it.
    pub(crate) fn get(&self) -> AssertSqlSafe<Arc<str>> {
        AssertSqlSafe(Arc::clone(&self.0))
    }
}

/// Every statement, for one table.
///
/// Columns: `key` (SHA-256 of the id), `data` (the values, versioned
/// encoding), `created_at`, `idle_deadline`, `absolute_deadline`,
/// `expires_at` (the earlier deadline, indexed for cleanup), `version`,
/// `lifetime` (the session's own [`Lifetime`](session_core::Lifetime),
/// encoded; `NULL` for its layer's defaults), `issued_at` (when its key
/// was given to it; `NULL` for at its creation), and for a session bound
/// to a user, `NULL` otherwise: `user_key` (the
/// [`UserKey`](session_core::UserKey), indexed for the
/// bound rows only), `last_seen` and `device` (the facts, in the data's
/// encoding); times in Unix milliseconds. The statements that read a
/// record select [`ROW`]: they take the longest data they will fetch, and
/// return the length of data longer than that instead.
///
/// Liveness in SQL is `expires_at > now`: every write keeps `expires_at`
/// at the earlier deadline. Reads of whole records also check both
/// deadlines, as [`Record::is_live`](session_core::Record::is_live) does.
///
/// A forward that `rotate` leaves is a row of version 0 (a record's is
/// at least 1) whose `data` is the key it names and whose `expires_at` is the end
/// of its grace window, bound to no one: every statement that reads or
/// writes records passes it by (`version > 0`, or a version a record
/// read had), but `is_live`, for which a live forward holds its key as a
/// record does; `load_following` follows it, and `delete_through` deletes
/// the record it names with it (also once its window has ended, until
/// cleanup deletes it: a logout through an old id is never wrong).
#[derive(Clone)]
pub(crate) struct Statements {
    pub(crate) create_table: Sql,
    pub(crate) create_index: Sql,
    pub(crate) create_user_index: Sql,
    pub(crate) drop_old_user_index: Sql,
    /// Per group of [`ADDED_COLUMNS`], whether it is there (a count of 0
    /// or 1) and the statements adding it.
    pub(crate) added_columns: Vec<(Sql, Vec<Sql>)>,
    pub(crate) load: Sql,
    pub(crate) load_for_write: Sql,
    /// A record and its key, through a live forward under `?1`.
    pub(crate) load_following: Sql,
    /// Turns the row under `?1` into a forward to `?2`, made at `?3`,
    /// until `?4`.
    pub(crate) forward: Sql,
    pub(crate) insert: Sql,
    pub(crate) insert_bound: Sql,
    pub(crate) delete_if_expired: Sql,
    pub(crate) is_live: Sql,
    pub(crate) write_if_unchanged: Sql,
    pub(crate) write_if_unchanged_bound: Sql,
    /// For each of [`BATCH_SIZES`], inserts of that many whole rows,
    /// returning the keys inserted (a taken key is skipped).
    pub(crate) insert_many: Vec<Sql>,
    /// For each of [`BATCH_SIZES`], writes-if-unchanged of that many rows,
    /// returning the keys written.
    pub(crate) write_many_if_unchanged: Vec<Sql>,
    /// For each of [`BATCH_SIZES`], the live rows of that many keys, each
    /// with its key: `?1` now, `?2` the longest data fetched, the keys
    /// from `?3` on.
    pub(crate) load_many: Vec<Sql>,
    pub(crate) touch: Sql,
    pub(crate) delete: Sql,
    /// Deletes the row under `?1` and, for a forward, the record it names.
    pub(crate) delete_through: Sql,
    pub(crate) delete_expired: Sql,
    pub(crate) list: Sql,
    pub(crate) user_sessions: Sql,
    pub(crate) user_seen: Sql,
    #[cfg_attr(not(feature = "conformance"), allow(dead_code))]
    pub(crate) exists: Sql,
    #[cfg_attr(not(feature = "conformance"), allow(dead_code))]
    pub(crate) read_raw: Sql,
    #[cfg_attr(not(feature = "conformance"), allow(dead_code))]
    pub(crate) replace: Sql,
    #[cfg_attr(not(feature = "conformance"), allow(dead_code))]
    pub(crate) replace_bound: Sql,
    #[cfg_attr(not(feature = "conformance"), allow(dead_code))]
    pub(crate) user_keys: Sql,
}

impl Statements {
    /// The statements for `table`, a name [`validate`] accepted.
    pub(crate) fn for_table(table: &str) -> Self {
        let sql = |text: &str| {
            let text = text
                .replace("{row}", ROW)
                .replace("{binding}", BINDING)
                .replace("{row_values}", ROW_VALUES)
                .replace("{bound_row_values}", BOUND_ROW_VALUES)
                .replace("{longest_device}", &longest_device().to_string());
            Sql::new(text.replace("{table}", table))
        };
        Self {
            create_table: sql(
                "CREATE TABLE IF NOT EXISTS {table} (
                    key BLOB PRIMARY KEY NOT NULL,
                    data BLOB NOT NULL,
                    created_at INTEGER NOT NULL,
                    idle_deadline INTEGER NOT NULL,
                    absolute_deadline INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    version INTEGER NOT NULL,
                    user_key BLOB,
                    last_seen INTEGER,
                    device BLOB,
                    lifetime BLOB,
                    issued_at INTEGER
                ) WITHOUT ROWID",
            ),
            create_index: sql(
                "CREATE INDEX IF NOT EXISTS {table}_expires_at ON {table} (expires_at)",
            ),
            // Partial: anonymous sessions, usually most, take no room in it;
            // `user_key = ?` implies the condition, so lookups use it. The
            // user key only, no deadline: every write moves `expires_at`,
            // and SQLite maintains an index for each write that changes a
            // column it holds, even a partial one the row is not in (a
            // user's few rows are filtered by deadline from the table).
            create_user_index: sql(
                "CREATE INDEX IF NOT EXISTS {table}_user ON {table} (user_key)
                 WHERE user_key IS NOT NULL",
            ),
            // The first index of version 2, on `(user_key, expires_at)`.
            drop_old_user_index: sql("DROP INDEX IF EXISTS {table}_user_key"),
            added_columns: ADDED_COLUMNS
                .iter()
                .map(|(probe, columns)| {
                    let has = sql(&format!(
                        "SELECT count(*) FROM pragma_table_info('{{table}}') WHERE name = '{probe}'"
                    ));
                    let add = columns
                        .iter()
                        .map(|column| sql(&format!("ALTER TABLE {{table}} ADD COLUMN {column}")))
                        .collect();
                    (has, add)
                })
                .collect(),
            load: sql(
                "SELECT {row} FROM {table} WHERE key = ?1 AND expires_at > ?3 AND version > 0",
            ),
            load_for_write: sql("SELECT {row} FROM {table} WHERE key = ?1 AND version > 0"),
            load_following: sql(
                "SELECT key, {row} FROM {table}
                 WHERE key IN (?1, (SELECT data FROM {table}
                     WHERE key = ?1 AND version = 0 AND expires_at > ?3))
                 AND expires_at > ?3 AND version > 0",
            ),
            forward: sql(
                "UPDATE {table} SET data = ?2, version = 0, created_at = ?3,
                 idle_deadline = ?4, absolute_deadline = ?4, expires_at = ?4,
                 user_key = NULL, last_seen = NULL, device = NULL, lifetime = NULL,
                 issued_at = NULL
                 WHERE key = ?1",
            ),
            insert: sql("INSERT INTO {table} {row_values}"),
            insert_bound: sql("INSERT INTO {table} {bound_row_values}"),
            delete_if_expired: sql("DELETE FROM {table} WHERE key = ?1 AND expires_at <= ?2"),
            is_live: sql("SELECT 1 FROM {table} WHERE key = ?1 AND expires_at > ?2"),
            // A write never changes a row's binding (a login inserts a new
            // row): an unbound row's write sets no binding column, and a
            // bound one's only `last_seen`. The lifetime comes last.
            write_if_unchanged: sql(
                "UPDATE {table} SET data = ?2, idle_deadline = ?3, absolute_deadline = ?4,
                 expires_at = ?5, version = ?6, lifetime = ?11
                 WHERE key = ?1 AND version = ?7 AND created_at = ?8
                 AND absolute_deadline = ?9 AND user_key IS NULL AND expires_at > ?10",
            ),
            write_if_unchanged_bound: sql(
                "UPDATE {table} SET data = ?2, idle_deadline = ?3, absolute_deadline = ?4,
                 expires_at = ?5, version = ?6, last_seen = ?7, lifetime = ?13
                 WHERE key = ?1 AND version = ?8 AND created_at = ?9
                 AND absolute_deadline = ?10 AND user_key = ?11 AND expires_at > ?12",
            ),
            insert_many: BATCH_SIZES
                .iter()
                .map(|size| {
                    sql(&format!(
                        "INSERT INTO {{table}} (key, data, created_at, idle_deadline,
                         absolute_deadline, expires_at, version, user_key, last_seen, device,
                         lifetime, issued_at)
                         VALUES {} ON CONFLICT (key) DO NOTHING RETURNING key",
                        placeholders(*size, 12)
                    ))
                })
                .collect(),
            // The `VALUES` columns: key, data, idle, absolute, expires_at,
            // version, last_seen (`NULL` for an unbound row, which stays
            // `NULL`), then the read row's version, created_at, absolute
            // deadline and user key, now, and the lifetime.
            write_many_if_unchanged: BATCH_SIZES
                .iter()
                .map(|size| {
                    sql(&format!(
                        "UPDATE {{table}} SET data = b.column2, idle_deadline = b.column3,
                         absolute_deadline = b.column4, expires_at = b.column5,
                         version = b.column6, last_seen = b.column7, lifetime = b.column13
                         FROM (VALUES {}) AS b
                         WHERE {{table}}.key = b.column1 AND {{table}}.version = b.column8
                         AND {{table}}.created_at = b.column9
                         AND {{table}}.absolute_deadline = b.column10
                         AND {{table}}.user_key IS b.column11 AND {{table}}.expires_at > b.column12
                         RETURNING {{table}}.key",
                        placeholders(*size, 13)
                    ))
                })
                .collect(),
            load_many: BATCH_SIZES
                .iter()
                .map(|size| {
                    let keys: Vec<String> = (3..size + 3).map(|n| format!("?{n}")).collect();
                    sql(&format!(
                        "SELECT key, {{row}} FROM {{table}} WHERE key IN ({})
                         AND expires_at > ?1 AND version > 0",
                        keys.join(", ")
                    ))
                })
                .collect(),
            // `MAX` of a `NULL` is `NULL`: an unbound row stays unbound.
            touch: sql(
                "UPDATE {table}
                 SET idle_deadline = MIN(?2, absolute_deadline), expires_at = MIN(?2, absolute_deadline),
                 last_seen = MAX(last_seen, ?3)
                 WHERE key = ?1 AND expires_at > ?3 AND version > 0",
            ),
            delete: sql("DELETE FROM {table} WHERE key = ?1"),
            delete_through: sql(
                "DELETE FROM {table} WHERE key = ?1
                 OR key = (SELECT data FROM {table} WHERE key = ?1 AND version = 0)",
            ),
            delete_expired: sql(
                "DELETE FROM {table} WHERE key IN
                 (SELECT key FROM {table} WHERE expires_at <= ?1 LIMIT ?2)",
            ),
            list: sql("SELECT key, {row} FROM {table} WHERE user_key = ?1 AND expires_at > ?3"),
            user_sessions: sql(
                "SELECT key, expires_at > ?2 AS live FROM {table} WHERE user_key = ?1",
            ),
            user_seen: sql(
                "SELECT key, last_seen FROM {table} WHERE user_key = ?1 AND expires_at > ?2",
            ),
            exists: sql("SELECT 1 FROM {table} WHERE key = ?1"),
            read_raw: sql("SELECT data, version, user_key, device FROM {table} WHERE key = ?1"),
            replace: sql("INSERT OR REPLACE INTO {table} {row_values}"),
            replace_bound: sql("INSERT OR REPLACE INTO {table} {bound_row_values}"),
            user_keys: sql("SELECT key FROM {table} WHERE user_key = ?1"),
        }
    }
}

/// `rows` parenthesised lists of `columns` placeholders each, for
/// `VALUES`.
fn placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// Creates the table and indexes if missing and adds the columns a table
/// made at an earlier schema version lacks, under `BEGIN IMMEDIATE` so that two
/// processes opening the file at once take turns. Every step is idempotent,
/// and the columns are looked for rather than assumed from the version:
/// `PRAGMA user_version` is the file's, and the file may hold another
/// storage's table, or this one dropped and made anew.
pub(crate) async fn migrate(storage: &SqliteStorage) -> Result<(), Error> {
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
    execute(&mut tx, &storage.sql.create_table).await?;
    for (has, add) in &storage.sql.added_columns {
        let there: i64 = sqlx::query_scalar(has.get())
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::backend)?;
        if there == 0 {
            for statement in add {
                execute(&mut tx, statement).await?;
            }
        }
    }
    let indexes = [
        &storage.sql.create_index,
        &storage.sql.drop_old_user_index,
        &storage.sql.create_user_index,
    ];
    for statement in indexes {
        execute(&mut tx, statement).await?;
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

/// Runs one statement of the migration.
async fn execute(connection: &mut SqliteConnection, statement: &Sql) -> Result<(), Error> {
    sqlx::query(statement.get())
        .execute(connection)
        .await
        .map(|_| ())
        .map_err(Error::backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_of_the_known_sizes() {
        for length in 0..300 {
            let items: Vec<usize> = (0..length).collect();
            let pieces = pieces(&items);
            assert!(
                pieces
                    .iter()
                    .all(|piece| statement_for(piece.len()).is_ok())
            );
            assert_eq!(pieces.concat(), items);
        }
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        for good in ["sessions", "_s", "S_1", &"a".repeat(63)] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1s",
            "s-1",
            "s;DROP TABLE x",
            "s s",
            "\"s\"",
            "é",
            &"a".repeat(64),
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
