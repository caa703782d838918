//! The conformance harness: a [`MemoryStorage`] with raw probes into its
//! cache.

use std::sync::Arc;
use std::time::Duration;

use session_core::conformance::Harness;
use session_core::{Error, SessionKey, SessionStorage, Timestamp, UserKey, async_trait};

use crate::MemoryStorage;
use crate::segments::Segment;
use crate::stored::Stored;

/// How long bytes planted by [`Harness::write_raw`] stay in the cache.
const RAW_TTL: Duration = Duration::from_secs(3_600);

/// Runs the `session-core` conformance suite on a [`MemoryStorage`].
///
/// ```
/// # #[tokio::main]
/// # async fn main() {
/// use session_memory::{MemoryHarness, MemoryStorage};
///
/// let outcome = session_core::conformance::run_all(|| async {
///     MemoryHarness::new(MemoryStorage::new())
/// })
/// .await;
/// assert!(outcome.is_ok(), "{outcome:?}");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MemoryHarness {
    storage: MemoryStorage,
}

impl MemoryHarness {
    /// A harness over `storage`.
    pub fn new(storage: MemoryStorage) -> Self {
        Self { storage }
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    fn storage(&self) -> Arc<dyn SessionStorage> {
        Arc::new(self.storage.clone())
    }

    async fn raw_exists(&self, key: &SessionKey) -> Result<bool, Error> {
        Ok(self.storage.segments.contains_key(key))
    }

    async fn read_raw(&self, key: &SessionKey) -> Result<Option<Vec<u8>>, Error> {
        let found = self.storage.segments.get(key);
        Ok(found.map(|found| found.stored.bytes().to_vec()))
    }

    /// Replaces the bytes where they are, or plants them on probation like
    /// a new session: the encoded record, as every write stores it.
    async fn write_raw(&self, key: &SessionKey, bytes: &[u8], _: Timestamp) -> Result<(), Error> {
        let stored = Stored::new(bytes, RAW_TTL);
        let segments = &self.storage.segments;
        self.storage.locks.locked(key, || {
            let from = segments.get(key).map(|found| found.segment);
            let to = from.unwrap_or(Segment::Probation);
            segments.put(key, stored, to, from);
        });
        Ok(())
    }

    fn max_record_bytes(&self) -> usize {
        self.storage.max_record_bytes
    }

    async fn index_members(&self, user: &UserKey) -> Result<Vec<SessionKey>, Error> {
        Ok(self.storage.index.members(user))
    }
}
