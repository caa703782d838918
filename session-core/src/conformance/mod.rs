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
//! # Stability
//!
//! The suite grows with the contract: a release may add checks, and a store
//! that passed before may then fail one, which is the point (a new check
//! names a rule the store was already meant to keep, or one the release
//! adds, documented on [`SessionStorage`](crate::SessionStorage)). The
//! entry points ([`conformance_tests!`](crate::conformance_tests),
//! [`run_all`], [`Harness`] and [`Failure`]) keep their shape within a
//! minor version; a new harness probe arrives as a provided method, as
//! [`Harness::write_record_unchecked`] did. The individual check functions
//! are public so a failure can be rerun alone, but their names and their
//! number are not a stable API.
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

// Each file registers its tests right above them, in a
// `__conformance_<file>!` macro that `__conformance!` (below) expands; the
// unit test `every_conformance_test_is_registered` fails when a test is in
// no file's macro, or a file's macro is not expanded.
mod account_races;
mod accounts;
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
mod index;
mod lifetimes;
mod loaded;
mod races;
#[doc(hidden)]
pub mod registry;
mod rotation;

pub use account_races::*;
pub use accounts::*;
pub use basics::*;
pub use cancellation::*;
pub use concurrency::*;
pub use conditions::*;
pub use cycle::*;
pub use damage::*;
pub use expiry::*;
pub use gone::*;
pub use harness::{Failure, Harness, Report};
pub use index::*;
pub use lifetimes::*;
pub use loaded::*;
pub use races::*;
pub use rotation::*;

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

/// Every topic's tests, for [`conformance_tests!`](crate::conformance_tests)
/// and [`run_all`]: one line per file of `conformance/` that registers
/// tests, each file listing its own in a `__conformance_<file>!` macro
/// right above them.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance_basics!($mode $arguments);
        $crate::__conformance_expiry!($mode $arguments);
        $crate::__conformance_gone!($mode $arguments);
        $crate::__conformance_concurrency!($mode $arguments);
        $crate::__conformance_conditions!($mode $arguments);
        $crate::__conformance_cycle!($mode $arguments);
        $crate::__conformance_races!($mode $arguments);
        $crate::__conformance_damage!($mode $arguments);
        $crate::__conformance_loaded!($mode $arguments);
        $crate::__conformance_cancellation!($mode $arguments);
        $crate::__conformance_accounts!($mode $arguments);
        $crate::__conformance_index!($mode $arguments);
        $crate::__conformance_account_races!($mode $arguments);
        $crate::__conformance_lifetimes!($mode $arguments);
        $crate::__conformance_rotation!($mode $arguments);
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::registry::{macro_body, tests_in, words};

    /// This directory, read at test time: a new file is checked without
    /// being named anywhere.
    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/conformance");

    /// Every conformance test is registered: in its file's
    /// `__conformance_<file>!`, which `__conformance!` expands (so
    /// `conformance_tests!` and `run_all` run it), and each has a `///` doc.
    #[test]
    fn every_conformance_test_is_registered() {
        let module = fs::read_to_string(Path::new(DIR).join("mod.rs")).unwrap();
        let expanded = macro_body(&module, "__conformance").unwrap();
        let expanded = words(&expanded[..expanded.find("(@ tests").unwrap()]);
        let mut problems = Vec::new();
        let mut tests = 0;
        for entry in fs::read_dir(DIR).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if stem == "mod" || path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let source = fs::read_to_string(&path).unwrap();
            let macro_name = format!("__conformance_{stem}");
            let registered = macro_body(&source, &macro_name).map(words);
            if registered.is_some() {
                if !expanded.contains(macro_name.as_str()) {
                    problems.push(format!("{macro_name}! is not in __conformance!"));
                }
                if !module.contains(&format!("\npub use {stem}::*;\n")) {
                    problems.push(format!("{stem}.rs is not re-exported"));
                }
            }
            for (name, documented) in tests_in(&source, "Harness") {
                tests += 1;
                if !registered
                    .as_ref()
                    .is_some_and(|r| r.contains(name.as_str()))
                {
                    problems.push(format!("{stem}.rs: {name} is registered nowhere"));
                }
                if !documented {
                    problems.push(format!("{stem}.rs: {name} has no /// doc"));
                }
            }
        }
        assert!(tests > 0, "no conformance tests in {DIR}");
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
