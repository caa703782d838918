//! The conformance suite: every rule of [`SessionStorage`](crate::SessionStorage), as tests any
//! storage can run.
//!
//! Each behaviour is one async function taking a [`Harness`] (the storage
//! plus raw probes into what it holds) and returning `Err(`[`Failure`]`)`
//! when the storage breaks the rule. [`conformance_tests!`](crate::conformance_tests)
//! expands them all into `#[tokio::test]`s for a harness factory; the
//! calling crate needs `tokio` with the `macros` and `rt-multi-thread`
//! features as a dev-dependency. [`run_all`] runs them from any async code.
//!
//! The suite is itself tested: the workspace runs it against deliberately
//! broken stores (an update that upserts, a read-modify-write with an await
//! in the middle, a create that checks then inserts, an update that writes
//! in two steps and can be dropped between them) and asserts that each is
//! caught.
//!
//! # Implementing `SessionStorage`, with the suite
//!
//! A complete store: encoded records in a map behind one lock. Each
//! operation holds the lock from its read to its write, which is what makes
//! it atomic; the [`Record`](crate::Record) transition methods carry the
//! contract's rules, so the store only decides where bytes go. A store on a
//! remote database does the same inside a transaction or a server-side
//! script.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
//!
//! use session_core::conformance::{self, Harness};
//! use session_core::{
//!     async_trait, ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, Record,
//!     SessionKey, SessionStorage, Timestamp, TouchOutcome, UpdateOutcome,
//!     DEFAULT_MAX_RECORD_BYTES as LIMIT,
//! };
//!
//! #[derive(Debug, Default)]
//! struct MapStorage {
//!     records: Mutex<HashMap<SessionKey, Vec<u8>>>,
//! }
//!
//! impl MapStorage {
//!     fn records(&self) -> MutexGuard<'_, HashMap<SessionKey, Vec<u8>>> {
//!         self.records.lock().unwrap_or_else(PoisonError::into_inner)
//!     }
//! }
//!
//! /// The stored record, live or not; corrupt bytes are `Err(Decode)`, and
//! /// a record over the limit (planted by whoever else can write the map)
//! /// is `Err(TooLarge)`.
//! fn decode(bytes: Option<&Vec<u8>>) -> Result<Option<Record>, Error> {
//!     let record = bytes.map(|bytes| Record::decode(bytes)).transpose()?;
//!     if let Some(record) = &record {
//!         record.check_size(LIMIT)?;
//!     }
//!     Ok(record)
//! }
//!
//! fn is_live(bytes: Option<&Vec<u8>>, now: Timestamp) -> Result<bool, Error> {
//!     Ok(decode(bytes)?.is_some_and(|record| record.is_live(now)))
//! }
//!
//! #[async_trait]
//! impl SessionStorage for MapStorage {
//!     async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
//!         Ok(decode(self.records().get(key))?.filter(|record| record.is_live(now)))
//!     }
//!
//!     async fn create(
//!         &self, key: &SessionKey, record: &Record, now: Timestamp,
//!     ) -> Result<CreateOutcome, Error> {
//!         let mut records = self.records();
//!         if is_live(records.get(key), now)? {
//!             return Ok(CreateOutcome::Collision);
//!         }
//!         records.insert(*key, record.encode(LIMIT)?);
//!         Ok(CreateOutcome::Created)
//!     }
//!
//!     async fn update(
//!         &self, key: &SessionKey, changes: &ChangeSet, deadlines: Deadlines, now: Timestamp,
//!     ) -> Result<UpdateOutcome, Error> {
//!         let mut records = self.records();
//!         let Some(current) = decode(records.get(key))? else {
//!             return Ok(UpdateOutcome::Gone);
//!         };
//!         match current.updated(changes, deadlines, now) {
//!             Ok(next) => {
//!                 records.insert(*key, next.encode(LIMIT)?);
//!                 Ok(UpdateOutcome::Updated { version: next.version })
//!             }
//!             Err(refused) => Ok(refused),
//!         }
//!     }
//!
//!     async fn touch(
//!         &self, key: &SessionKey, idle_deadline: Timestamp, now: Timestamp,
//!     ) -> Result<TouchOutcome, Error> {
//!         let mut records = self.records();
//!         let touched = decode(records.get(key))?.and_then(|r| r.touched(idle_deadline, now));
//!         let Some(next) = touched else {
//!             return Ok(TouchOutcome::Gone);
//!         };
//!         records.insert(*key, next.encode(LIMIT)?);
//!         Ok(TouchOutcome::Touched)
//!     }
//!
//!     async fn cycle(
//!         &self, old: &SessionKey, new: &SessionKey, changes: &ChangeSet,
//!         deadlines: Deadlines, now: Timestamp,
//!     ) -> Result<CycleOutcome, Error> {
//!         let mut records = self.records();
//!         let Some(current) = decode(records.get(old))? else {
//!             return Ok(CycleOutcome::Gone);
//!         };
//!         let next = match current.cycled(changes, deadlines, now) {
//!             Ok(next) => next,
//!             Err(refused) => return Ok(refused),
//!         };
//!         if is_live(records.get(new), now)? {
//!             return Ok(CycleOutcome::Collision);
//!         }
//!         records.insert(*new, next.encode(LIMIT)?);
//!         records.remove(old);
//!         Ok(CycleOutcome::Cycled)
//!     }
//!
//!     async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
//!         self.records().remove(key);
//!         Ok(())
//!     }
//!
//!     async fn delete_expired(&self, now: Timestamp) -> Result<u64, Error> {
//!         let mut records = self.records();
//!         let before = records.len();
//!         // Bytes that do not decode are kept: never lose what cannot be read.
//!         records.retain(|_, bytes| Record::decode(bytes).map_or(true, |r| r.is_live(now)));
//!         Ok((before - records.len()) as u64)
//!     }
//! }
//!
//! /// The suite's view: the storage, and raw probes into its map.
//! struct MapHarness(Arc<MapStorage>);
//!
//! #[async_trait]
//! impl Harness for MapHarness {
//!     fn storage(&self) -> Arc<dyn SessionStorage> {
//!         self.0.clone()
//!     }
//!     async fn raw_exists(&self, key: &SessionKey) -> Result<bool, Error> {
//!         Ok(self.0.records().contains_key(key))
//!     }
//!     async fn read_raw(&self, key: &SessionKey) -> Result<Option<Vec<u8>>, Error> {
//!         Ok(self.0.records().get(key).cloned())
//!     }
//!     async fn write_raw(&self, key: &SessionKey, bytes: &[u8], _: Timestamp) -> Result<(), Error> {
//!         self.0.records().insert(*key, bytes.to_vec());
//!         Ok(())
//!     }
//! }
//!
//! // In a test file, one line gives one #[tokio::test] per behaviour:
//! // session_core::conformance_tests!(|| async { MapHarness(Arc::default()) });
//! #[tokio::main]
//! async fn main() {
//!     let outcome = conformance::run_all(|| async { MapHarness(Arc::default()) }).await;
//!     if let Err(report) = outcome {
//!         panic!("{report}");
//!     }
//! }
//! ```

/// Returns a [`Failure`] unless the condition holds.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err($crate::conformance::Failure::new(format!($($message)+)));
        }
    };
}

/// Returns a [`Failure`] showing both sides unless they are equal.
macro_rules! ensure_eq {
    ($got:expr, $expected:expr, $($what:tt)+) => {{
        let (got, expected) = (&$got, &$expected);
        if got != expected {
            return Err($crate::conformance::Failure::new(format!(
                "{}: got {got:?}, expected {expected:?}",
                format!($($what)+)
            )));
        }
    }};
}

mod basics;
mod cancellation;
mod concurrency;
mod conditions;
mod cycle;
mod damage;
mod expiry;
mod fixtures;
mod gone;
mod harness;
mod loaded;
mod races;

pub use basics::*;
pub use cancellation::*;
pub use concurrency::*;
pub use conditions::*;
pub use cycle::*;
pub use damage::*;
pub use expiry::*;
pub use gone::*;
pub use harness::{Failure, Harness, Report};
pub use loaded::*;
pub use races::*;

/// Runs every conformance test, each on a fresh harness from `factory`,
/// and reports the ones that failed.
///
/// Needs a multi-thread tokio runtime: the concurrency tests fail on any
/// other.
///
/// # Errors
///
/// A [`Report`] naming each failed test and why.
pub async fn run_all<F, Fut, H>(factory: F) -> Result<(), Report>
where
    F: Fn() -> Fut,
    Fut: Future<Output = H>,
    H: Harness,
{
    let mut failures = Vec::new();
    crate::__conformance!(run(factory, failures));
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Report { failures })
    }
}

/// Expands into one `#[tokio::test]` (multi-thread) per conformance test,
/// each on a fresh harness from the factory, an async closure or a path to
/// an `async fn` returning a [`Harness`]: in a test file,
/// `session_core::conformance_tests!(|| async { MyHarness::new() });`.
/// The [module documentation](crate::conformance) has a complete example.
///
/// A factory for a store that may be unavailable (a server that is not
/// installed) can return an `Option` instead, prefixed with `optional:`;
/// `None` ends each test early, so the factory should say why, and should
/// panic instead where the store is required (in CI).
#[macro_export]
macro_rules! conformance_tests {
    (optional: $factory:expr) => {
        $crate::__conformance!(optional($factory));
    };
    ($factory:expr) => {
        $crate::__conformance!(tests($factory));
    };
}

/// The list of conformance tests, kept in one place for
/// [`conformance_tests!`](crate::conformance_tests) and [`run_all`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            round_trip_typed,
            load_absent_is_none,
            create_collides_with_live_record,
            create_replaces_expired_record,
            update_removes_keys,
            update_clears,
            sessions_are_isolated,
            delete_is_idempotent,
            expired_is_none_while_stored,
            idle_deadline_is_exact,
            absolute_deadline_is_exact,
            update_never_extends_absolute,
            touch_moves_idle_only,
            touch_never_passes_absolute,
            touch_keeps_concurrent_write,
            delete_expired_counts,
            update_after_delete_is_gone,
            update_after_expiry_is_gone,
            touch_after_delete_is_gone,
            cycle_after_delete_is_gone,
            concurrent_updates_keep_every_key,
            concurrent_creates_have_one_winner,
            concurrent_conditioned_increments,
            stale_condition_conflicts,
            absence_condition,
            cycle_moves_data_and_changes,
            cycle_collision_leaves_both,
            cycle_checks_conditions,
            touches_racing_updates_keep_them,
            touch_racing_delete_does_not_revive,
            cycle_racing_updates_keeps_them,
            corrupt_record_is_decode_error,
            oversized_record_is_too_large,
            oversized_stored_record_is_too_large,
            update_from_current_record_applies,
            update_from_stale_record_loses_nothing,
            update_from_checks_stored_conditions,
            update_from_after_delete_is_gone,
            dropped_create_is_all_or_nothing,
            dropped_update_is_all_or_nothing,
            dropped_update_from_is_all_or_nothing,
            dropped_touch_is_all_or_nothing,
            dropped_cycle_is_all_or_nothing,
            dropped_delete_is_all_or_nothing,
        ]);
    };
    (@ tests ($factory:expr) [$($name:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let harness = ($factory)().await;
                if let Err(failure) = $crate::conformance::$name(&harness).await {
                    panic!("{failure}");
                }
            }
        )*
    };
    (@ optional ($factory:expr) [$($name:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(harness) = ($factory)().await else {
                    return;
                };
                if let Err(failure) = $crate::conformance::$name(&harness).await {
                    panic!("{failure}");
                }
            }
        )*
    };
    (@ run ($factory:expr, $failures:ident) [$($name:ident),* $(,)?]) => {
        $(
            if let Err(failure) = $crate::conformance::$name(&($factory)().await).await {
                $failures.push((stringify!($name), failure));
            }
        )*
    };
}
