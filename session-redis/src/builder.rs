//! [`RedisStorageBuilder`]: the prefix, timeout and record limit of a
//! [`RedisStorage`], and the check that the prefix is usable.

use std::fmt;
use std::time::Duration;

use session_core::DEFAULT_MAX_RECORD_BYTES;

use crate::connection::Target;
use crate::storage::RedisStorage;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "session:";
/// The default limit on one Redis call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The key prefix holds `{` or `}`: a hash tag would pin every session to
/// one Redis Cluster slot.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Redis key prefix {0:?} must not contain '{{' or '}}'")]
pub struct InvalidPrefix(String);

/// Sets the prefix, timeout and record limit of a [`RedisStorage`].
#[must_use]
pub struct RedisStorageBuilder {
    target: Target,
    prefix: String,
    timeout: Duration,
    max_record_bytes: usize,
    #[cfg(all(feature = "test-util", feature = "cluster"))]
    hook: Option<std::sync::Arc<crate::StepHook>>,
}

impl fmt::Debug for RedisStorageBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStorageBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("max_record_bytes", &self.max_record_bytes)
            .finish_non_exhaustive()
    }
}

impl RedisStorageBuilder {
    /// A builder with the defaults, sending its commands to `target`.
    pub(crate) fn new(target: Target) -> Self {
        Self {
            target,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            #[cfg(all(feature = "test-util", feature = "cluster"))]
            hook: None,
        }
    }

    /// A hook into the steps of the cluster's multi-step operations, to
    /// fail or pause them there. Feature `test-util`.
    #[cfg(all(feature = "test-util", feature = "cluster"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "test-util", feature = "cluster"))))]
    pub fn step_hook(mut self, hook: std::sync::Arc<crate::StepHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The prefix of every session key (default [`DEFAULT_PREFIX`]).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The limit on each Redis call, connecting included (default
    /// [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.target.limit_connecting(timeout);
        self
    }

    /// The largest session data accepted (default
    /// [`DEFAULT_MAX_RECORD_BYTES`]).
    pub fn max_record_bytes(mut self, max_record_bytes: usize) -> Self {
        self.max_record_bytes = max_record_bytes;
        self
    }

    /// The storage.
    ///
    /// # Errors
    ///
    /// [`InvalidPrefix`] if the prefix holds `{` or `}`.
    pub fn build(self) -> Result<RedisStorage, InvalidPrefix> {
        if self.prefix.contains(['{', '}']) {
            return Err(InvalidPrefix(self.prefix));
        }
        Ok(self.build_infallible())
    }

    /// The storage with a prefix known to be valid.
    pub(crate) fn build_infallible(self) -> RedisStorage {
        RedisStorage::new(
            self.target,
            self.prefix,
            self.timeout,
            self.max_record_bytes,
            #[cfg(all(feature = "test-util", feature = "cluster"))]
            self.hook,
        )
    }
}
