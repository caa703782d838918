//! The conformance harness: a [`SqliteStorage`] with raw probes into its
//! table.

use std::sync::Arc;
use std::time::Duration;

use session_core::conformance::Harness;
use session_core::{Error, Record, SessionKey, SessionStorage, Timestamp, UserKey, async_trait};

use sqlx::Row;

use crate::SqliteStorage;
use crate::row::{Columns, millis, session_key};

/// How long rows planted by [`Harness::write_raw`] stay live.
const RAW_LIFETIME: Duration = Duration::from_secs(3_600);

/// Runs the `session-core` conformance suite on a [`SqliteStorage`]; give
/// each test its own database file so counts are exact.
#[derive(Clone, Debug)]
pub struct SqliteHarness {
    storage: SqliteStorage,
}

impl SqliteHarness {
    /// A harness over `storage`.
    pub fn new(storage: SqliteStorage) -> Self {
        Self { storage }
    }

    /// Stores `columns` under `key`, replacing any row there.
    async fn replace(&self, key: &SessionKey, columns: Columns) -> Result<(), Error> {
        let sql = &self.storage.sql;
        columns
            .into_row_query((&sql.replace, &sql.replace_bound), key)
            .execute(&self.storage.pool)
            .await
            .map(|_| ())
            .map_err(Error::backend)
    }
}

#[async_trait]
impl Harness for SqliteHarness {
    fn storage(&self) -> Arc<dyn SessionStorage> {
        Arc::new(self.storage.clone())
    }

    async fn raw_exists(&self, key: &SessionKey) -> Result<bool, Error> {
        let found: Option<i64> = sqlx::query_scalar(self.storage.sql.exists.get())
            .bind(key.as_bytes().as_slice())
            .fetch_optional(&self.storage.pool)
            .await
            .map_err(Error::backend)?;
        Ok(found.is_some())
    }

    /// The `data` column followed by the `version` (big-endian), then for
    /// a bound row its `user_key` and `device`: what a write changes and a
    /// touch does not (a touch moves `last_seen`, as it moves deadlines).
    async fn read_raw(&self, key: &SessionKey) -> Result<Option<Vec<u8>>, Error> {
        let row = sqlx::query(self.storage.sql.read_raw.get())
            .bind(key.as_bytes().as_slice())
            .fetch_optional(&self.storage.pool)
            .await
            .map_err(Error::backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut raw: Vec<u8> = row.try_get("data").map_err(Error::backend)?;
        let version: i64 = row.try_get("version").map_err(Error::backend)?;
        raw.extend_from_slice(&version.to_be_bytes());
        for column in ["user_key", "device"] {
            let bytes: Option<Vec<u8>> = row.try_get(column).map_err(Error::backend)?;
            raw.extend(bytes.into_iter().flatten());
        }
        Ok(Some(raw))
    }

    /// A row with `bytes` as its data, live for an hour past `now`.
    async fn write_raw(&self, key: &SessionKey, bytes: &[u8], now: Timestamp) -> Result<(), Error> {
        let end = millis(now.saturating_add(RAW_LIFETIME));
        let columns = Columns {
            data: bytes.to_vec(),
            created_at: millis(now),
            idle: end,
            absolute: end,
            expires_at: end,
            version: 1,
            binding: None,
            lifetime: None,
            issued_at: None,
        };
        self.replace(key, columns).await
    }

    /// The row `create` would write, whatever its size.
    async fn write_record_unchecked(
        &self,
        key: &SessionKey,
        record: &Record,
        _: Timestamp,
    ) -> Result<(), Error> {
        self.replace(key, Columns::of(record, usize::MAX)?).await
    }

    /// Every row with the user's key in `user_key`, read through its index,
    /// live or not.
    async fn index_members(&self, user: &UserKey) -> Result<Vec<SessionKey>, Error> {
        let keys: Vec<Vec<u8>> = sqlx::query_scalar(self.storage.sql.user_keys.get())
            .bind(user.as_bytes().as_slice())
            .fetch_all(&self.storage.pool)
            .await
            .map_err(Error::backend)?;
        keys.into_iter().map(session_key).collect()
    }

    fn max_record_bytes(&self) -> usize {
        self.storage.max_record_bytes
    }
}
