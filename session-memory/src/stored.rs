//! What the cache holds for one session, and how long it keeps it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use session_core::{Error, Record, SessionKey, Timestamp};

/// An encoded record and the lifetime it was written with.
#[derive(Clone)]
pub(crate) struct Stored {
    bytes: Arc<[u8]>,
    ttl: Duration,
}

impl Stored {
    pub(crate) fn new(bytes: impl Into<Arc<[u8]>>, ttl: Duration) -> Self {
        Self {
            bytes: bytes.into(),
            ttl,
        }
    }

    #[cfg(feature = "conformance")]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The record in an entry, live or not; corrupt bytes are `Err(Decode)`.
pub(crate) fn decode(entry: Option<Stored>) -> Result<Option<Record>, Error> {
    entry
        .map(|stored| Record::decode(&stored.bytes))
        .transpose()
}

/// Whether an entry holds a record live at `now`.
pub(crate) fn is_live(entry: Option<Stored>, now: Timestamp) -> Result<bool, Error> {
    Ok(decode(entry)?.is_some_and(|record| record.is_live(now)))
}

/// Expires each entry after the lifetime it was last written with, on
/// creation and on every update alike (moka's default for updates would
/// keep the old lifetime, so a touch would not extend anything).
pub(crate) struct StoredExpiry;

impl Expiry<SessionKey, Stored> for StoredExpiry {
    fn expire_after_create(&self, _: &SessionKey, value: &Stored, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _: &SessionKey,
        value: &Stored,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}
