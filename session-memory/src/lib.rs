//! In-process session storage on [moka]: bounded by sessions and by bytes,
//! least-recently-used eviction in two segments so that one-shot sessions
//! cannot evict sessions in use, every record expiring on its own deadline.
//!
//! The default storage: fast, nothing to run, and gone when the process
//! stops. Sessions are kept as encoded records, so a session costs the bytes
//! it holds (plus about 340 bytes of bookkeeping), and corrupt or oversized
//! stored bytes are refused like in any other backend.
//!
//! | bound | default | builder |
//! |---|---|---|
//! | sessions | [`DEFAULT_MAX_SESSIONS`] (100 000) | [`max_sessions`](MemoryStorageBuilder::max_sessions) |
//! | bytes, all sessions | [`DEFAULT_MAX_BYTES`] (256 MiB) | [`max_bytes`](MemoryStorageBuilder::max_bytes) |
//! | bytes, one record | [`DEFAULT_MAX_RECORD_BYTES`](session_core::DEFAULT_MAX_RECORD_BYTES) (64 KiB) | [`max_record_bytes`](MemoryStorageBuilder::max_record_bytes) |
//!
//! A new session starts on probation, with a fifth of the first two bounds;
//! once loaded again (its second request), or when it is a login's new key,
//! it is protected, with the other four fifths. A flood of sessions that
//! are never sent back evicts only within probation, and a new session is
//! still stored (evicting the least recently used new one). A session must
//! come back before probation's share of new sessions (20 000 by default)
//! is created after it, or it is evicted as one-shot.
//!
//! Accounts ([`login`](session_core::SessionStorage::login),
//! [`list`](session_core::SessionStorage::list),
//! [`revoke`](session_core::SessionStorage::revoke)): an index from each
//! user to their sessions' keys, changed under the same key locks as the
//! records; revokes and logins with a limit lock every key for their short
//! section. Bound sessions the caches expire or evict leave the index when
//! `list` looks for them, at cleanup
//! ([`delete_expired`](session_core::SessionStorage::delete_expired)), or
//! when a write doubles the index since its last sweep, so it never holds
//! more than about twice the bound sessions the caches do. No eviction
//! listener: anonymous sessions cost what they did before accounts.
//!
//! ```
//! use session_core::{Deadlines, Record, SessionData, SessionId, SessionStorage, Timestamp};
//! use session_memory::MemoryStorage;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let storage = MemoryStorage::builder().max_sessions(10_000).build();
//! let key = SessionId::generate()?.key();
//! let now = Timestamp::now();
//! let deadlines = Deadlines::new(
//!     now.saturating_add(Duration::from_secs(30 * 60)),
//!     now.saturating_add(Duration::from_secs(12 * 60 * 60)),
//! );
//! let mut data = SessionData::new();
//! data.insert("user", "ada")?;
//! let _ = storage.create(&key, &Record::new(data, now, deadlines), now).await?;
//! let record = storage.load(&key, now).await?.expect("just created");
//! assert_eq!(record.data.get::<String>("user")?.as_deref(), Some("ada"));
//! # Ok(())
//! # }
//! ```
//!
//! [moka]: https://docs.rs/moka
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accounts;
mod bounds;
mod builder;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
mod harness;
mod index;
mod locks;
mod rotation;
mod segments;
mod storage;
mod stored;
mod sweep;

pub use bounds::DEFAULT_MAX_BYTES;
pub use builder::{DEFAULT_MAX_SESSIONS, MemoryStorageBuilder};
#[cfg(feature = "conformance")]
pub use harness::MemoryHarness;
pub use storage::MemoryStorage;

#[cfg(test)]
mod tests;
