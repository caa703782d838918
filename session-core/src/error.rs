//! The one error type of the storage contract.

use std::time::Duration;

/// A boxed error source, kept so callers can walk the chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of a storage call or of encoding session values.
///
/// Outcomes such as "the session is gone" or "a condition no longer holds"
/// are not errors: they are values of the outcome types in
/// [`storage`](crate::storage). `Error` is only for failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend failed (connection refused, I/O error, database error).
    #[error("session storage backend failed")]
    Backend(#[source] BoxError),
    /// A storage call did not finish in time.
    #[error("session storage call timed out after {0:?}")]
    Timeout(Duration),
    /// Stored bytes, or a stored value asked for as another type, could not
    /// be decoded. The stored bytes are left as they were.
    #[error("stored session data could not be decoded")]
    Decode(#[source] BoxError),
    /// A value could not be encoded.
    #[error("session value could not be encoded")]
    Encode(#[source] BoxError),
    /// The encoded record would exceed the configured size limit; nothing was
    /// written.
    #[error("session record of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Encoded size of the record that was refused.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The store does not do this ([`Capabilities`](crate::Capabilities)
    /// says what it does); nothing was written.
    #[error("this session storage does not support {0}")]
    Unsupported(&'static str),
}

impl Error {
    /// Wraps a backend failure, keeping it as the source.
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Self::Backend(source.into())
    }

    /// Wraps a decoding failure, keeping it as the source.
    pub fn decode(source: impl Into<BoxError>) -> Self {
        Self::Decode(source.into())
    }

    /// Wraps an encoding failure, keeping it as the source.
    pub fn encode(source: impl Into<BoxError>) -> Self {
        Self::Encode(source.into())
    }
}
