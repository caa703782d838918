//! Conditioned change sets: all or nothing.

use super::fixtures::{create, deadlines, int, ints, load_live, update};
use super::{Failure, Harness};
use crate::{ChangeSet, Timestamp, UpdateOutcome};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_conditions {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            stale_condition_conflicts,
            absence_condition,
        ]);
    };
}

/// A condition that no longer holds writes nothing, not even the set's
/// unconditioned changes, and reports the current value.
pub async fn stale_condition_conflicts<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("n", 1), ("keep", 5)])?, now).await?;
    let before = harness.read_raw(&key).await?;

    let mut changes = ChangeSet::new();
    changes.require("n", Some(int(0)?));
    changes.insert("n", int(2)?);
    changes.insert("added", int(1)?);
    changes.remove("keep");
    let outcome = storage.update(&key, &changes, deadlines(now), now).await?;
    let UpdateOutcome::Conflict { current } = outcome else {
        return Err(Failure::new(format!("stale condition: {outcome:?}")));
    };
    ensure_eq!(
        current.value("n"),
        Some(&int(1)?),
        "current value reported by the conflict"
    );
    ensure_eq!(current.values().count(), 1, "keys reported by the conflict");

    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(
        record.data,
        ints(&[("n", 1), ("keep", 5)])?,
        "data after a conflict"
    );
    ensure_eq!(record.version, 1, "version after a conflict");
    ensure_eq!(
        harness.read_raw(&key).await?,
        before,
        "stored bytes after a conflict"
    );
    Ok(())
}

/// "Still absent" is a condition: it holds until the key is set, and a
/// conflict on it reports the value now there. A condition on a value that
/// was removed reports it absent.
pub async fn absence_condition<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[])?, now).await?;
    let mut claim = ChangeSet::new();
    claim.require("lock", None);
    claim.insert("lock", int(1)?);
    update(&*storage, &key, &claim, now).await?;

    let outcome = storage.update(&key, &claim, deadlines(now), now).await?;
    let UpdateOutcome::Conflict { current } = outcome else {
        return Err(Failure::new(format!(
            "second claim of an absent key: {outcome:?}"
        )));
    };
    ensure_eq!(
        current.value("lock"),
        Some(&int(1)?),
        "current value of the claimed key"
    );

    let mut expects_gone_value = ChangeSet::new();
    expects_gone_value.require("missing", Some(int(1)?));
    expects_gone_value.insert("other", int(1)?);
    let outcome = storage
        .update(&key, &expects_gone_value, deadlines(now), now)
        .await?;
    let UpdateOutcome::Conflict { current } = outcome else {
        return Err(Failure::new(format!(
            "condition on an absent key: {outcome:?}"
        )));
    };
    ensure_eq!(
        current.values().collect::<Vec<_>>(),
        vec![("missing", None)],
        "reported values"
    );
    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(
        record.data,
        ints(&[("lock", 1)])?,
        "data after the conflicts"
    );
    Ok(())
}
