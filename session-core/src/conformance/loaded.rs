//! `update_from`: the record the caller loaded is a hint, never the truth.
//!
//! A store may write the loaded record with the changes applied when one
//! atomic check shows it is still what is stored; every test here makes it
//! stale in another way, and the outcome must be what `update` would give.

use super::fixtures::{create, deadlines, int, ints, load_live, update};
use super::{Failure, Harness};
use crate::{ChangeSet, SessionStorage, Timestamp, UpdateOutcome};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_loaded {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            update_from_current_record_applies,
            update_from_stale_record_loses_nothing,
            update_from_checks_stored_conditions,
            update_from_after_delete_is_gone,
        ]);
    };
}

/// `update_from` that must succeed; returns the new version.
async fn update_from(
    storage: &dyn SessionStorage,
    key: &crate::SessionKey,
    loaded: &crate::Record,
    changes: &ChangeSet,
    now: Timestamp,
) -> Result<u64, Failure> {
    match storage
        .update_from(key, loaded, changes, deadlines(now), now)
        .await?
    {
        UpdateOutcome::Updated { version } => Ok(version),
        other => Err(Failure::new(format!(
            "update_from a live record: {other:?}"
        ))),
    }
}

/// From the record as stored: the changes land and the version moves on.
pub async fn update_from_current_record_applies<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("n", 1), ("keep", 7)])?, now).await?;
    let loaded = load_live(&*storage, &key, now).await?;
    let mut changes = ChangeSet::new();
    changes.insert("n", int(2)?);
    changes.remove("keep");
    let version = update_from(&*storage, &key, &loaded, &changes, now).await?;
    ensure_eq!(version, 2, "version reported");
    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(record.data, ints(&[("n", 2)])?, "data after update_from");
    ensure_eq!(record.version, 2, "version stored");
    Ok(())
}

/// From a record another write has since changed: that write's keys stay,
/// and the changes land on top of it, not on the loaded data.
pub async fn update_from_stale_record_loses_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("n", 1)])?, now).await?;
    let stale = load_live(&*storage, &key, now).await?;
    let mut other = ChangeSet::new();
    other.insert("other", int(5)?);
    other.insert("n", int(10)?);
    update(&*storage, &key, &other, now).await?;

    let mut changes = ChangeSet::new();
    changes.insert("mine", int(3)?);
    let version = update_from(&*storage, &key, &stale, &changes, now).await?;
    ensure_eq!(version, 3, "version after a write in between");
    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(
        record.data,
        ints(&[("n", 10), ("other", 5), ("mine", 3)])?,
        "data after update_from a stale record"
    );
    Ok(())
}

/// Conditions are checked against what is stored, not what was loaded:
/// one that held when loading conflicts, one that holds only now passes.
pub async fn update_from_checks_stored_conditions<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("n", 1)])?, now).await?;
    let stale = load_live(&*storage, &key, now).await?;
    let mut bump = ChangeSet::new();
    bump.insert("n", int(2)?);
    update(&*storage, &key, &bump, now).await?;

    let mut as_loaded = ChangeSet::new();
    as_loaded.require("n", Some(int(1)?));
    as_loaded.insert("n", int(100)?);
    let outcome = storage
        .update_from(&key, &stale, &as_loaded, deadlines(now), now)
        .await?;
    let UpdateOutcome::Conflict { current } = outcome else {
        return Err(Failure::new(format!(
            "a condition true only of the loaded record: {outcome:?}"
        )));
    };
    ensure_eq!(
        current.value("n"),
        Some(&int(2)?),
        "value the conflict reports"
    );

    let mut as_stored = ChangeSet::new();
    as_stored.require("n", Some(int(2)?));
    as_stored.insert("n", int(3)?);
    update_from(&*storage, &key, &stale, &as_stored, now).await?;
    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(
        record.data,
        ints(&[("n", 3)])?,
        "data after the condition held"
    );
    Ok(())
}

/// From a record deleted since (a logout in another request): `Gone`, and
/// nothing is written back.
pub async fn update_from_after_delete_is_gone<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("n", 1)])?, now).await?;
    let loaded = load_live(&*storage, &key, now).await?;
    storage.delete(&key).await?;
    let mut changes = ChangeSet::new();
    changes.insert("n", int(2)?);
    let outcome = storage
        .update_from(&key, &loaded, &changes, deadlines(now), now)
        .await?;
    ensure_eq!(outcome, UpdateOutcome::Gone, "update_from after delete");
    ensure!(
        !harness.raw_exists(&key).await?,
        "update_from after delete wrote the session back"
    );
    Ok(())
}
