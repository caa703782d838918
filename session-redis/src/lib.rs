//! Session storage on Redis and Redis Cluster.
//!
//! One hash per session, under `<prefix><SHA-256 of the id, hex>`: a
//! metadata field (format, creation time, deadlines, version) and one field
//! per value. Every write is one Lua script run on the server (through
//! `EVALSHA`, reloaded on `NOSCRIPT`), so it is atomic and sets the key's
//! TTL in the same step; `load` is one `HGETALL`. A request that only reads
//! its session costs one round trip; one that reads then writes, two.
//!
//! TTLs are relative (`PEXPIRE`, deadline minus now plus a little slack),
//! and every load checks both deadlines itself, so clocks that drift apart
//! do not resurrect sessions.
//!
//! Each write takes effect once: a client that resends a script after a
//! broken connection (the cluster client does) sends its write token with
//! it, and the script, finding the token among the record's last writes,
//! answers what it did the first time. What Redis hands back is checked
//! too: a stored record whose data is over the size limit is
//! [`Error::TooLarge`](session_core::Error::TooLarge) on load, and its bytes are left alone.
//!
//! ```no_run
//! use session_redis::RedisStorage;
//!
//! # fn main() -> Result<(), session_core::Error> {
//! // Connects on first use, so the service starts even while Redis is down.
//! let storage = RedisStorage::open("redis://127.0.0.1:6379")?;
//! # let _ = storage;
//! # Ok(())
//! # }
//! ```
//!
//! Give Redis a `volatile-*` eviction policy (`volatile-lru`,
//! `volatile-ttl`): every session key has a TTL, so under memory pressure
//! Redis evicts sessions rather than refusing writes. With Redis Cluster
//! (feature `cluster`), each session lives on one node; only `cycle` (login)
//! touches two keys, which it does in checked steps: the old record is
//! sealed, the new one created, then the old one deleted, and a failure in
//! between, or a caller that gave up before hearing the outcome, restores
//! the old session.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accounts;
mod answer;
mod builder;
#[cfg(feature = "cluster")]
mod cluster;
mod connection;
#[cfg(feature = "conformance")]
mod harness;
#[cfg(feature = "test-util")]
mod hook;
mod index;
mod invocation;
mod layout;
mod scripts;
pub mod steps;
mod storage;
mod write_token;

pub use builder::{DEFAULT_PREFIX, DEFAULT_TIMEOUT, InvalidPrefix, RedisStorageBuilder};
#[cfg(feature = "conformance")]
pub use harness::RedisHarness;
#[cfg(feature = "test-util")]
pub use hook::StepHook;
pub use storage::RedisStorage;
