//! Durable session storage in an embedded SQLite file, on sqlx.
//!
//! Sessions survive a restart with no server to run. The file is opened in
//! WAL mode with `synchronous = NORMAL` and a busy timeout, so readers never
//! wait for writers and writers wait for each other instead of failing.
//! Writers in one process take turns (a fair queue), so they never meet in
//! SQLite's busy handler, which sleeps rather than queues. `update` reads
//! the row, then writes the changed record with one statement that matches
//! only if the row is still the one read (its version, creation time and
//! absolute deadline; a touch in between changes none of them and is
//! overwritten by the later deadlines anyway), which guards against
//! writers in other processes; after a few lost races it takes the write
//! lock for the whole read and write, in a `BEGIN IMMEDIATE` transaction (a
//! deferred transaction that upgrades to a write would fail without
//! waiting). `update_from` skips the read when the caller's record is
//! still current. `cycle` runs in a `BEGIN IMMEDIATE`
//! transaction; `touch` and `delete` are single statements, and so is
//! `create` unless the key is taken (then a transaction replaces an expired
//! row). Each row holds the hash of the session id, never the id.
//!
//! **Accounts** ([`Capabilities::accounts`](session_core::Capabilities)):
//! a session bound to a user keeps the [`UserKey`](session_core::UserKey)
//! (a hash of the user id, never the id) in its row's `user_key` column,
//! with `last_seen` and the `device` facts beside it; a partial index on
//! `user_key`, holding bound rows only, finds a user's
//! sessions without a scan. The binding lives and dies with its row, so
//! `delete`, `delete_expired` and a `cycle` (which moves the row) keep
//! the index exact with no work of their own, and every write sets
//! `last_seen` (a `touch` too). `login` (read the old row, insert the new
//! one, delete the old one and, with a limit, the user's least recently
//! seen others) and `revoke` (the user's rows, those selected deleted)
//! each run in one `BEGIN IMMEDIATE` transaction, so they never interleave
//! with each other or with a `cycle`, and a dropped future rolls all of it
//! back; `list` is one read.
//!
//! Rows are not trusted to be what this library wrote: data over the size
//! limit is [`Error::TooLarge`](session_core::Error::TooLarge) on every
//! read, and data longer than any within the limit can be encoded is
//! refused by its length, without being fetched.
//!
//! A statement already waiting for SQLite's lock when its caller times out
//! still runs once the lock is free: the caller sees `Timeout` for a write
//! that may then happen, whole (never half).
//!
//! [`SqliteStorage::from_pool`] takes the pool as it is: open it in WAL mode
//! with a busy timeout (as [`SqliteStorage::open`] does), or writers will
//! fail instead of waiting. The storage keeps its schema version in the
//! database's `PRAGMA user_version`: version 2 added the binding columns
//! and their index, which opening a version-1 file adds (existing
//! sessions are bound to no one).
//!
//! ```no_run
//! use std::time::Duration;
//! use session_sqlite::SqliteStorage;
//!
//! # async fn run() -> Result<(), session_core::Error> {
//! let storage = SqliteStorage::open("sqlite://sessions.db").await?;
//! // Expired rows are never loaded; this deletes them once a minute.
//! let _cleanup = storage.spawn_cleanup(Duration::from_secs(60));
//! # Ok(())
//! # }
//! ```
//!
//! Concurrent requests' creates and updates (from the record the request
//! loaded) are written in batches: a task of the storage writes what has
//! queued while it wrote the last batch, as one multi-row statement per
//! kind, in one transaction, and answers each request with its own
//! outcome (`RETURNING` tells which rows were written) once that
//! transaction has committed. A write alone is written as one statement,
//! as before. Every other write (a cycle, a login, a touch, a delete, an
//! update whose loaded record is stale) is its own statement or
//! transaction, in the same turn-taking.
//!
//! Loads that start while others are under way are read in batches too: a
//! task of the storage reads what has queued while it read the last batch,
//! with one `SELECT ... WHERE key IN (...)` per piece of at most 64 keys,
//! on a connection of its own. A load alone is one statement, as before.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accounts;
mod batch;
mod binding;
mod builder;
mod cleanup;
#[cfg(feature = "conformance")]
mod harness;
mod loads;
mod queue;
mod rotation;
mod row;
mod schema;
mod storage;
mod table;
mod update;
mod writers;

pub use builder::{DEFAULT_BUSY_TIMEOUT, DEFAULT_TABLE, SqliteStorageBuilder};
pub use cleanup::CleanupTask;
#[cfg(feature = "conformance")]
pub use harness::SqliteHarness;
pub use schema::InvalidTableName;
pub use storage::SqliteStorage;
