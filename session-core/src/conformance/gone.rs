//! Logout wins: nothing writes to a record that is gone, and nothing
//! re-creates it.

use std::time::Duration;

use super::fixtures::{create, deadlines, fresh_key, int, ints};
use super::{Failure, Harness};
use crate::{ChangeSet, CycleOutcome, SessionKey, Timestamp, TouchOutcome, UpdateOutcome};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_gone {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            update_after_delete_is_gone,
            update_after_expiry_is_gone,
            touch_after_delete_is_gone,
            cycle_after_delete_is_gone,
        ]);
    };
}

/// A change set that would re-create a session if a store upserted it.
fn changes() -> Result<ChangeSet, Failure> {
    let mut changes = ChangeSet::new();
    changes.insert("user", int(42)?);
    Ok(changes)
}

/// Creates a record and deletes it, as a logout does.
async fn logged_out<H: Harness + ?Sized>(
    harness: &H,
    now: Timestamp,
) -> Result<SessionKey, Failure> {
    let storage = harness.storage();
    let key = create(&*storage, ints(&[("user", 7)])?, now).await?;
    storage.delete(&key).await?;
    Ok(key)
}

/// Checks that nothing is stored under `key` and nothing loads from it.
async fn stays_gone<H: Harness + ?Sized>(
    harness: &H,
    key: &SessionKey,
    now: Timestamp,
    after: &str,
) -> Result<(), Failure> {
    ensure!(
        !harness.raw_exists(key).await?,
        "{after} re-created the record"
    );
    ensure!(
        harness.storage().load(key, now).await?.is_none(),
        "{after}: the record loads"
    );
    Ok(())
}

/// `update` after a delete reports `Gone` and re-creates nothing.
pub async fn update_after_delete_is_gone<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let now = Timestamp::now();
    let key = logged_out(harness, now).await?;
    let outcome = harness
        .storage()
        .update(&key, &changes()?, deadlines(now), now)
        .await?;
    ensure_eq!(outcome, UpdateOutcome::Gone, "update after delete");
    stays_gone(harness, &key, now, "update after delete").await?;

    let never = fresh_key()?;
    let outcome = harness
        .storage()
        .update(&never, &changes()?, deadlines(now), now)
        .await?;
    ensure_eq!(outcome, UpdateOutcome::Gone, "update of a key never stored");
    stays_gone(harness, &never, now, "update of a key never stored").await
}

/// `update` of a record expired at `now` reports `Gone` and does not revive
/// it, even with deadlines that would make it live again.
pub async fn update_after_expiry_is_gone<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("user", 7)])?, now).await?;
    let expired = deadlines(now).expires_at();
    let outcome = storage
        .update(&key, &changes()?, deadlines(expired), expired)
        .await?;
    ensure_eq!(outcome, UpdateOutcome::Gone, "update of an expired record");
    ensure!(
        storage.load(&key, expired).await?.is_none(),
        "update revived an expired record"
    );
    Ok(())
}

/// `touch` after a delete, or after expiry, reports `Gone` and writes
/// nothing.
pub async fn touch_after_delete_is_gone<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = logged_out(harness, now).await?;
    let idle = deadlines(now).idle();
    ensure_eq!(
        storage.touch(&key, idle, now).await?,
        TouchOutcome::Gone,
        "touch after delete"
    );
    stays_gone(harness, &key, now, "touch after delete").await?;

    let key = create(&*storage, ints(&[("user", 7)])?, now).await?;
    let expired = deadlines(now).expires_at();
    let far = expired.saturating_add(Duration::from_secs(3_600));
    let outcome = storage.touch(&key, far, expired).await?;
    ensure_eq!(outcome, TouchOutcome::Gone, "touch of an expired record");
    ensure!(
        storage.load(&key, expired).await?.is_none(),
        "touch revived an expired record"
    );
    Ok(())
}

/// `cycle` after a delete, or after expiry, reports `Gone` and creates
/// nothing under either key.
pub async fn cycle_after_delete_is_gone<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let old = logged_out(harness, now).await?;
    let new = fresh_key()?;
    let outcome = storage
        .cycle(&old, &new, &changes()?, deadlines(now), now)
        .await?;
    ensure_eq!(outcome, CycleOutcome::Gone, "cycle after delete");
    stays_gone(harness, &old, now, "cycle after delete (old key)").await?;
    stays_gone(harness, &new, now, "cycle after delete (new key)").await?;

    let old = create(&*storage, ints(&[("user", 7)])?, now).await?;
    let expired = deadlines(now).expires_at();
    let outcome = storage
        .cycle(&old, &new, &changes()?, deadlines(expired), expired)
        .await?;
    ensure_eq!(outcome, CycleOutcome::Gone, "cycle of an expired record");
    stays_gone(
        harness,
        &new,
        expired,
        "cycle of an expired record (new key)",
    )
    .await?;
    ensure!(
        storage.load(&old, expired).await?.is_none(),
        "cycle revived an expired record"
    );
    Ok(())
}
