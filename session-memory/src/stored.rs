//! What the cache holds for one session, and how long it keeps it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use session_core::{EXPIRY_SLACK, Error, Record, SessionKey, Timestamp};

/// The first byte of a forward: never a record's format byte.
const FORWARD: u8 = b'F';

/// An encoded record, or a forward that `rotate` left (`F`, the key it
/// names, the end of its grace window as 8 bytes big-endian), and the
/// lifetime it was written with.
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

    /// A forward to `to` until `end`, written at `now`.
    pub(crate) fn forward(to: &SessionKey, end: Timestamp, now: Timestamp) -> Self {
        let mut bytes = Vec::with_capacity(41);
        bytes.push(FORWARD);
        bytes.extend_from_slice(to.as_bytes());
        bytes.extend_from_slice(&end.as_unix_millis().to_be_bytes());
        Self::new(bytes, end.saturating_duration_since(now) + EXPIRY_SLACK)
    }

    /// The key this forward names and the end of its grace window, if it
    /// is one.
    pub(crate) fn forwarding(&self) -> Option<(SessionKey, Timestamp)> {
        let (&FORWARD, rest) = self.bytes.split_first()? else {
            return None;
        };
        let (to, end) = rest.split_first_chunk::<32>()?;
        let end = Timestamp::from_unix_millis(u64::from_be_bytes(end.try_into().ok()?));
        Some((SessionKey::from_bytes(*to), end))
    }

    /// Whether this is a forward, live or not.
    pub(crate) fn is_forward(&self) -> bool {
        self.bytes.first() == Some(&FORWARD)
    }

    /// The same bytes, kept for `ttl` from now.
    pub(crate) fn with_ttl(&self, ttl: Duration) -> Self {
        Self::new(Arc::clone(&self.bytes), ttl)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The length of the encoded record.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The record, live or not.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] for corrupt bytes; [`Error::TooLarge`] for a record
    /// whose data is over `limit`: writes refuse those, so only a raw write
    /// could have stored one, but bytes are refused by what they hold, not by
    /// how they got here.
    pub(crate) fn record(&self, limit: usize) -> Result<Record, Error> {
        let record = Record::decode(&self.bytes)?;
        record.check_size(limit)?;
        Ok(record)
    }
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
