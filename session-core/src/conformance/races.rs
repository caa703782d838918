//! Slow operations racing writes: a touch or a cycle in flight never undoes
//! a write that completed meanwhile, nor a logout.
//!
//! The tests release every task at once on a multi-thread runtime. A store
//! that reads, awaits, then writes back what it read loses the racing
//! writes; the suite's own tests force that interleaving on broken stores.

use super::concurrency::{read_then_write, writer_key};
use super::fixtures::{create, deadlines, fresh_key, ints, load_live, update};
use super::{Failure, Harness};
use crate::{ChangeSet, CycleOutcome, Timestamp, TouchOutcome, UpdateOutcome, Value};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_races {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            touches_racing_updates_keep_them,
            touch_racing_delete_does_not_revive,
            cycle_racing_updates_keeps_them,
        ]);
    };
}

/// Number of updates racing the slow operation in each test.
pub const RACING_WRITERS: usize = 4;
/// Number of touches racing the updates in [`touches_racing_updates_keep_them`].
pub const RACING_TOUCHES: usize = 4;

/// A change set setting the writer's own key.
fn own_key(index: usize) -> Result<ChangeSet, Failure> {
    let mut changes = ChangeSet::new();
    changes.insert(writer_key(index), Value::encode(&index)?);
    Ok(changes)
}

/// Touches and updates of other keys run at once: every update survives.
pub async fn touches_racing_updates_keep_them<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("base", 0)])?, now).await?;
    let idle = deadlines(now).idle().saturating_add(super::fixtures::MS);
    read_then_write(
        RACING_WRITERS + RACING_TOUCHES,
        &storage,
        |_, _| async { Ok(None) },
        move |storage, index, _| async move {
            if index < RACING_WRITERS {
                update(&*storage, &key, &own_key(index)?, now).await?;
            } else {
                let outcome = storage.touch(&key, idle, now).await?;
                ensure_eq!(outcome, TouchOutcome::Touched, "a touch racing updates");
            }
            Ok(())
        },
    )
    .await?;
    let data = load_live(&*storage, &key, now).await?.data;
    let lost: Vec<usize> = (0..RACING_WRITERS)
        .filter(|index| !data.contains(&writer_key(*index)))
        .collect();
    ensure!(lost.is_empty(), "updates lost to racing touches: {lost:?}");
    Ok(())
}

/// A touch racing a logout never brings the session back.
pub async fn touch_racing_delete_does_not_revive<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("user", 7)])?, now).await?;
    let idle = deadlines(now).idle();
    read_then_write(
        2,
        &storage,
        |_, _| async { Ok(None) },
        move |storage, index, _| async move {
            if index == 0 {
                storage.delete(&key).await?;
            } else {
                let _ = storage.touch(&key, idle, now).await?;
            }
            Ok(())
        },
    )
    .await?;
    ensure!(
        storage.load(&key, now).await?.is_none(),
        "a touch revived a deleted session"
    );
    ensure!(
        !harness.raw_exists(&key).await?,
        "a touch re-stored a deleted session"
    );
    Ok(())
}

/// A cycle racing updates: every update that reported `Updated` is in the
/// session under its new key; the others found the old key gone.
pub async fn cycle_racing_updates_keeps_them<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let old = create(&*storage, ints(&[("base", 0)])?, now).await?;
    let new = fresh_key()?;
    let written = read_then_write(
        RACING_WRITERS + 1,
        &storage,
        |_, _| async { Ok(None) },
        move |storage, index, _| async move {
            if index == RACING_WRITERS {
                let outcome = storage
                    .cycle(&old, &new, &ChangeSet::new(), deadlines(now), now)
                    .await?;
                ensure_eq!(outcome, CycleOutcome::Cycled, "a cycle racing updates");
                return Ok(None);
            }
            match storage
                .update(&old, &own_key(index)?, deadlines(now), now)
                .await?
            {
                UpdateOutcome::Updated { .. } => Ok(Some(index)),
                UpdateOutcome::Gone => Ok(None),
                other => Err(Failure::new(format!("an update racing a cycle: {other:?}"))),
            }
        },
    )
    .await?;
    ensure!(
        storage.load(&old, now).await?.is_none(),
        "the old key loads after the cycle"
    );
    let data = load_live(&*storage, &new, now).await?.data;
    let lost: Vec<usize> = written
        .into_iter()
        .flatten()
        .filter(|index| !data.contains(&writer_key(*index)))
        .collect();
    ensure!(
        lost.is_empty(),
        "updates reported written but lost by the cycle: {lost:?}"
    );
    Ok(())
}
