//! The conformance harness: a [`RedisStorage`] with raw probes into Redis.

use std::collections::BTreeMap;
use std::sync::Arc;

use session_core::conformance::Harness;
use session_core::{Error, SessionKey, SessionStorage, Timestamp, async_trait};

use crate::RedisStorage;
use crate::layout::META;

/// How long bytes planted by [`Harness::write_raw`] live, in milliseconds.
const RAW_TTL_MS: u64 = 3_600_000;

/// Runs the `session-core` conformance suite on a [`RedisStorage`]; give
/// each test its own prefix (or database) so counts are exact.
#[derive(Clone, Debug)]
pub struct RedisHarness {
    storage: RedisStorage,
}

impl RedisHarness {
    /// A harness over `storage`.
    pub fn new(storage: RedisStorage) -> Self {
        Self { storage }
    }
}

#[async_trait]
impl Harness for RedisHarness {
    fn storage(&self) -> Arc<dyn SessionStorage> {
        Arc::new(self.storage.clone())
    }

    async fn raw_exists(&self, key: &SessionKey) -> Result<bool, Error> {
        let redis_key = self.storage.redis_key(key);
        self.storage
            .call(|mut connection| async move {
                redis::cmd("EXISTS")
                    .arg(redis_key)
                    .query_async(&mut connection)
                    .await
            })
            .await
    }

    /// Every field and value of the hash, sorted by field, each followed by
    /// a zero byte.
    async fn read_raw(&self, key: &SessionKey) -> Result<Option<Vec<u8>>, Error> {
        let redis_key = self.storage.redis_key(key);
        let fields: BTreeMap<Vec<u8>, Vec<u8>> = self
            .storage
            .call(|mut connection| async move {
                redis::cmd("HGETALL")
                    .arg(redis_key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let mut raw = Vec::new();
        for (field, value) in fields {
            raw.extend_from_slice(&field);
            raw.push(0);
            raw.extend_from_slice(&value);
            raw.push(0);
        }
        Ok(Some(raw))
    }

    /// Replaces the hash with one holding `bytes` as its metadata field.
    async fn write_raw(&self, key: &SessionKey, bytes: &[u8], _: Timestamp) -> Result<(), Error> {
        let redis_key = self.storage.redis_key(key);
        let bytes = bytes.to_vec();
        self.storage
            .call(|mut connection| async move {
                redis::pipe()
                    .atomic()
                    .del(&redis_key)
                    .hset(&redis_key, META, bytes)
                    .pexpire(&redis_key, i64::try_from(RAW_TTL_MS).unwrap_or(i64::MAX))
                    .query_async(&mut connection)
                    .await
            })
            .await
    }

    fn max_record_bytes(&self) -> usize {
        self.storage.inner.max_record_bytes
    }
}
