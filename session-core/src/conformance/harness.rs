//! What a storage under test provides, and how a failed check is reported.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    DEFAULT_MAX_RECORD_BYTES, Error, RandomnessError, Record, SessionKey, SessionStorage,
    Timestamp, UserKey,
};

/// A storage under test, with raw probes into what it holds.
///
/// The probes bypass the contract on purpose: they let the suite see that an
/// expired record is still stored while `load` hides it, and plant corrupt
/// bytes that `load` must refuse without panicking or overwriting them.
///
/// A factory gives each test a fresh harness, over an empty store or a store
/// with its own key prefix or table, so counts such as
/// [`delete_expired`](SessionStorage::delete_expired)'s are exact.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The storage under test, as the HTTP layer will hold it.
    fn storage(&self) -> Arc<dyn SessionStorage>;

    /// Whether anything is physically stored under `key`, live or not.
    async fn raw_exists(&self, key: &SessionKey) -> Result<bool, Error>;

    /// Everything stored under `key`, as bytes: the encoded record, or for a
    /// backend that spreads a record over several fields, a deterministic
    /// concatenation of them. Used to check that a refused write left the
    /// record byte-for-byte as it was.
    async fn read_raw(&self, key: &SessionKey) -> Result<Option<Vec<u8>>, Error>;

    /// Stores `bytes` under `key` as the encoded record (for a backend that
    /// spreads a record over several fields: as its metadata field), kept by
    /// the backend's own expiry for at least an hour past `now`.
    async fn write_raw(&self, key: &SessionKey, bytes: &[u8], now: Timestamp) -> Result<(), Error>;

    /// Stores `record` under `key` in the backend's own layout, but without
    /// the size check: what a compromised or misconfigured store could hand
    /// the storage. `now` is as for [`write_raw`](Self::write_raw).
    ///
    /// The default stores `record.encode(usize::MAX)` with `write_raw`,
    /// which is right for a backend that keeps each record as one encoded
    /// value; a backend with another layout overrides it.
    async fn write_record_unchecked(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.write_raw(key, &record.encode(usize::MAX)?, now).await
    }

    /// The record size limit the storage was configured with.
    fn max_record_bytes(&self) -> usize {
        DEFAULT_MAX_RECORD_BYTES
    }

    /// Every session key the store's index of `user` physically holds,
    /// live or not, without pruning anything: how the suite sees that the
    /// index keeps nothing of expired, deleted or revoked sessions. A
    /// store with [`accounts`](crate::Capabilities::accounts) must
    /// provide it; the default fails the account tests that need it.
    async fn index_members(&self, user: &UserKey) -> Result<Vec<SessionKey>, Error> {
        let _ = user;
        Err(Error::Unsupported(
            "the index probe of the conformance harness",
        ))
    }
}

/// Why a conformance check failed.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    /// A failure with this explanation.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let mut message = format!("unexpected storage error: {error}");
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        Self(message)
    }
}

impl From<RandomnessError> for Failure {
    fn from(error: RandomnessError) -> Self {
        Self(error.to_string())
    }
}

impl From<tokio::task::JoinError> for Failure {
    fn from(error: tokio::task::JoinError) -> Self {
        Self(format!("a concurrent task failed: {error}"))
    }
}

/// The failures of a [`run_all`](super::run_all), by test name.
#[derive(Debug)]
pub struct Report {
    /// Each failed test with its failure.
    pub failures: Vec<(&'static str, Failure)>,
}

impl Report {
    /// Whether the test of this name failed.
    pub fn failed(&self, name: &str) -> bool {
        self.failures.iter().any(|(failed, _)| *failed == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} conformance tests failed:", self.failures.len())?;
        self.failures
            .iter()
            .try_for_each(|(name, failure)| writeln!(f, "- {name}: {failure}"))
    }
}

impl std::error::Error for Report {}
