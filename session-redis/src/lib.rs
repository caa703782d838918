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
//! **Accounts.** A logged-in session's metadata field also carries its
//! binding (`;<user hex>;<last seen>;<device>`); an anonymous session's is
//! as it always was, so an anonymous request costs what it did. Each user
//! has an index, a sorted set under `<prefix>user:<user hex>` (never a
//! session key: those are 64 hex digits after the prefix), whose members
//! are the session keys' hex scored by their expiry in Unix milliseconds.
//! Every index operation prunes the members whose score passed and sets
//! the index's TTL to the time to its top score, so the index lives as long
//! as its longest-lived member and no longer; every write that extends a
//! bound session extends its member (`ZADD XX GT`) and so the index. On one
//! node `login`, `revoke` and each write of a bound session are one script
//! over the keys it declares (a write that does not know the session is
//! bound is told so without writing, and runs again with the index: pass
//! the loaded record with `update_from`/`touch_from` to save that); `login`
//! with a limit and `revoke` read the index first and the script checks
//! that it did not change.
//!
//! Give Redis a `volatile-*` eviction policy (`volatile-lru`,
//! `volatile-ttl`): every session key has a TTL, so under memory pressure
//! Redis evicts sessions rather than refusing writes. With Redis Cluster
//! (feature `cluster`), each session lives on one node; only `cycle` (login)
//! touches two keys, which it does in checked steps: the old record is
//! sealed, the new one created, then the old one deleted, and a failure in
//! between, or a caller that gave up before hearing the outcome, restores
//! the old session.
//!
//! On a cluster a user's index lives on a node of its own, so every
//! operation that spans it runs in steps ordered so that a failure at any
//! step never leaves a session live and unlisted, and a revoked session
//! never comes back:
//!
//! - `login` (and `cycle` of a bound session): seal the old record, naming
//!   the new key in the seal; add the new key to the index (before it can
//!   be live); create the new record; offer the outcome; once accepted,
//!   delete the old record and take it out of its index (a member left
//!   behind is harmless: `list` checks every member's record, pruning
//!   drops it by its score);
//! - `update`/`touch` of a bound session: extend its member first, then
//!   the session's script;
//! - `revoke`: read the members with their scores; end each on its node (a
//!   live record is deleted; a sealed one is deleted and the new key its
//!   seal names gets a tombstone; a missing one whose score is still ahead
//!   is a login between its index step and its create, and gets a
//!   tombstone until that score, which that create refuses: the login ends
//!   `Gone`); only then take the member out of the index. A revoke of all
//!   reads the index again for sessions that joined it meanwhile.
//!
//! A member is never dropped because its key is missing while its score
//! is ahead: that is a login in flight.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accounts;
mod answer;
mod builder;
#[cfg(feature = "cluster")]
mod cluster;
mod connection;
mod fast;
#[cfg(feature = "conformance")]
mod harness;
#[cfg(all(feature = "test-util", feature = "cluster"))]
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
#[cfg(all(feature = "test-util", feature = "cluster"))]
pub use hook::StepHook;
pub use storage::RedisStorage;
