//! A harness that keeps what its store needs (a server process, a
//! temporary directory) alive for as long as the test uses it.

use std::sync::Arc;

use session_core::conformance::Harness;
use session_core::{Error, Record, SessionKey, SessionStorage, Timestamp, UserKey, async_trait};

pub struct Kept<K, H> {
    _kept: K,
    harness: H,
}

impl<K, H> Kept<K, H> {
    pub fn new(kept: K, harness: H) -> Self {
        Self {
            _kept: kept,
            harness,
        }
    }
}

#[async_trait]
impl<K: Send + Sync, H: Harness> Harness for Kept<K, H> {
    fn storage(&self) -> Arc<dyn SessionStorage> {
        self.harness.storage()
    }

    async fn raw_exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.harness.raw_exists(key).await
    }

    async fn read_raw(&self, key: &SessionKey) -> Result<Option<Vec<u8>>, Error> {
        self.harness.read_raw(key).await
    }

    async fn write_raw(&self, key: &SessionKey, bytes: &[u8], now: Timestamp) -> Result<(), Error> {
        self.harness.write_raw(key, bytes, now).await
    }

    async fn write_record_unchecked(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.harness.write_record_unchecked(key, record, now).await
    }

    fn max_record_bytes(&self) -> usize {
        self.harness.max_record_bytes()
    }

    async fn index_members(&self, user: &UserKey) -> Result<Vec<SessionKey>, Error> {
        self.harness.index_members(user).await
    }
}
