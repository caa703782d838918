//! The conformance harness: a [`RedisStorage`] with raw probes into Redis.

use std::collections::BTreeMap;
use std::sync::Arc;

use session_core::conformance::Harness;
use session_core::{Error, Record, SessionKey, SessionStorage, Timestamp, UserKey, async_trait};

use crate::layout::{Fields, META, each_field, encode_meta, hex_bytes};
use crate::storage::RedisStorage;

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

    /// Replaces whatever is under `key` with a hash of `fields`, kept for
    /// [`RAW_TTL_MS`].
    async fn replace_hash(&self, key: &SessionKey, fields: Fields) -> Result<(), Error> {
        let redis_key = self.storage.redis_key(key);
        self.storage
            .call(|mut connection| async move {
                redis::pipe()
                    .atomic()
                    .del(&redis_key)
                    .hset_multiple(&redis_key, &fields)
                    .pexpire(&redis_key, i64::try_from(RAW_TTL_MS).unwrap_or(i64::MAX))
                    .query_async(&mut connection)
                    .await
            })
            .await
    }
}

#[async_trait]
impl Harness for RedisHarness {
    fn storage(&self) -> Arc<dyn SessionStorage> {
        Arc::new(self.storage.clone())
    }

    async fn raw_exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.storage.key_command("EXISTS", key).await
    }

    /// Every field and value of the hash, sorted by field, each followed by
    /// a zero byte.
    async fn read_raw(&self, key: &SessionKey) -> Result<Option<Vec<u8>>, Error> {
        let fields: BTreeMap<Vec<u8>, Vec<u8>> = self.storage.key_command("HGETALL", key).await?;
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
        self.replace_hash(key, vec![(META.as_bytes().to_vec(), bytes.to_vec())])
            .await
    }

    /// Replaces the hash with the record's metadata and value fields, as
    /// the scripts write them, whatever its size.
    async fn write_record_unchecked(
        &self,
        key: &SessionKey,
        record: &Record,
        _: Timestamp,
    ) -> Result<(), Error> {
        let mut fields = vec![(META.as_bytes().to_vec(), encode_meta(record).into_bytes())];
        each_field(record, |field, value| {
            fields.push((field.into_bytes(), value.to_vec()));
        });
        self.replace_hash(key, fields).await
    }

    fn max_record_bytes(&self) -> usize {
        self.storage.max_record_bytes()
    }

    /// Every member of the user's sorted set, unpruned.
    async fn index_members(&self, user: &UserKey) -> Result<Vec<SessionKey>, Error> {
        let index = self.storage.index_key(user);
        let members: Vec<String> = self
            .storage
            .call(|mut connection| async move {
                redis::cmd("ZRANGE")
                    .arg(index)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        members
            .iter()
            .map(|hex| {
                hex_bytes(hex)
                    .map(SessionKey::from_bytes)
                    .ok_or_else(|| Error::decode("an index member that is not a key"))
            })
            .collect()
    }
}
