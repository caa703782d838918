//! `cycle`: a session moves to a new key, as on login.

use std::time::Duration;

use super::fixtures::{create, deadlines, fresh_key, int, ints, load_live};
use super::{Failure, Harness};
use crate::{ChangeSet, CycleOutcome, Timestamp, UpdateOutcome};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cycle {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            cycle_moves_data_and_changes,
            cycle_collision_leaves_both,
            cycle_checks_conditions,
        ]);
    };
}

/// The data, with the set's changes, moves to the new key under the given
/// deadlines (a login may reset the absolute one); the old key stops loading
/// and cannot be written to again.
pub async fn cycle_moves_data_and_changes<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let old = create(&*storage, ints(&[("a", 1), ("b", 2)])?, now).await?;
    let new = fresh_key()?;
    let login = now.saturating_add(Duration::from_secs(60));
    let reset = deadlines(login);

    let mut changes = ChangeSet::new();
    changes.insert("user", int(42)?);
    changes.remove("b");
    let outcome = storage.cycle(&old, &new, &changes, reset, login).await?;
    ensure_eq!(outcome, CycleOutcome::Cycled, "cycle");

    ensure!(
        storage.load(&old, login).await?.is_none(),
        "the old key still loads after cycle"
    );
    let record = load_live(&*storage, &new, login).await?;
    ensure_eq!(
        record.data,
        ints(&[("a", 1), ("user", 42)])?,
        "data under the new key"
    );
    ensure_eq!(record.deadlines, reset, "deadlines under the new key");
    ensure_eq!(record.created_at, now, "created_at is kept by cycle");

    let outcome = storage
        .update(&old, &changes, deadlines(login), login)
        .await?;
    ensure_eq!(
        outcome,
        UpdateOutcome::Gone,
        "update of the old key after cycle"
    );
    ensure!(
        storage.load(&old, login).await?.is_none(),
        "an update revived the old key"
    );
    Ok(())
}

/// A live record under the new key is a collision: both records stay
/// byte-for-byte as they were, and the old session keeps working.
pub async fn cycle_collision_leaves_both<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let old = create(&*storage, ints(&[("owner", 1)])?, now).await?;
    let taken = create(&*storage, ints(&[("owner", 2)])?, now).await?;
    let (old_before, taken_before) = (
        harness.read_raw(&old).await?,
        harness.read_raw(&taken).await?,
    );

    let mut changes = ChangeSet::new();
    changes.insert("user", int(42)?);
    let outcome = storage
        .cycle(&old, &taken, &changes, deadlines(now), now)
        .await?;
    ensure_eq!(outcome, CycleOutcome::Collision, "cycle onto a live key");
    ensure_eq!(
        harness.read_raw(&old).await?,
        old_before,
        "old record after a collision"
    );
    ensure_eq!(
        harness.read_raw(&taken).await?,
        taken_before,
        "taken record after a collision"
    );
    ensure_eq!(
        load_live(&*storage, &old, now).await?.data,
        ints(&[("owner", 1)])?,
        "old data"
    );
    Ok(())
}

/// A condition that no longer holds stops the cycle: nothing moves and the
/// current value is reported.
pub async fn cycle_checks_conditions<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let old = create(&*storage, ints(&[("n", 1)])?, now).await?;
    let new = fresh_key()?;
    let mut changes = ChangeSet::new();
    changes.require("n", Some(int(0)?));
    changes.insert("user", int(42)?);
    let outcome = storage
        .cycle(&old, &new, &changes, deadlines(now), now)
        .await?;
    let CycleOutcome::Conflict { current } = outcome else {
        return Err(Failure::new(format!(
            "cycle with a stale condition: {outcome:?}"
        )));
    };
    ensure_eq!(
        current.value("n"),
        Some(&int(1)?),
        "current value reported by the conflict"
    );
    ensure!(
        !harness.raw_exists(&new).await?,
        "a refused cycle stored the new key"
    );
    ensure_eq!(
        load_live(&*storage, &old, now).await?.data,
        ints(&[("n", 1)])?,
        "old data"
    );
    Ok(())
}
