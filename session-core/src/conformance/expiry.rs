//! Idle and absolute deadlines, touch, and cleanup of expired records.

use std::time::Duration;

use super::fixtures::{MS, create, create_with, deadlines, int, int_at, ints, load_live, update};
use super::{Failure, Harness};
use crate::{ChangeSet, Deadlines, SessionKey, SessionStorage, Timestamp, TouchOutcome};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_expiry {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            expired_is_none_while_stored,
            idle_deadline_is_exact,
            absolute_deadline_is_exact,
            update_never_extends_absolute,
            touch_moves_idle_only,
            touch_never_passes_absolute,
            touch_keeps_concurrent_write,
            delete_expired_counts,
        ]);
    };
}

const TEN_SECONDS: Duration = Duration::from_secs(10);
const TWENTY_SECONDS: Duration = Duration::from_secs(20);

/// Creates a record with ten seconds to its idle deadline and twenty to its
/// absolute one; returns its key and deadlines.
async fn create_short(
    storage: &dyn SessionStorage,
    now: Timestamp,
) -> Result<(SessionKey, Deadlines), Failure> {
    let deadlines = Deadlines::new(
        now.saturating_add(TEN_SECONDS),
        now.saturating_add(TWENTY_SECONDS),
    );
    let key = create_with(storage, ints(&[("n", 1)])?, deadlines, now).await?;
    Ok((key, deadlines))
}

/// Loads at `moments` and checks which of them find the record live.
async fn check_liveness<H: Harness + ?Sized>(
    harness: &H,
    key: &SessionKey,
    moments: &[(&str, Timestamp, bool)],
) -> Result<(), Failure> {
    let storage = harness.storage();
    for (label, at, live) in moments {
        let loaded = storage.load(key, *at).await?;
        ensure_eq!(loaded.is_some(), *live, "record live {label}");
    }
    Ok(())
}

/// Past its deadline a record does not load, although the backend still
/// stores it (native expiry, if any, only comes later).
pub async fn expired_is_none_while_stored<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("n", 1)])?, now).await?;
    let expired = deadlines(now).expires_at().saturating_add(TEN_SECONDS);
    ensure!(
        storage.load(&key, expired).await?.is_none(),
        "an expired record loaded"
    );
    ensure!(
        harness.raw_exists(&key).await?,
        "the expired record is no longer stored"
    );
    Ok(())
}

/// The idle deadline is exact: live 1 ms before it, gone at and after it.
pub async fn idle_deadline_is_exact<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let (key, short) = create_short(&*storage, now).await?;
    let idle = short.idle();
    check_liveness(
        harness,
        &key,
        &[
            (
                "1 ms before the idle deadline",
                idle.saturating_sub(MS),
                true,
            ),
            ("at the idle deadline", idle, false),
            (
                "1 ms after the idle deadline",
                idle.saturating_add(MS),
                false,
            ),
        ],
    )
    .await
}

/// The absolute deadline is exact, however far the idle one was pushed.
pub async fn absolute_deadline_is_exact<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let absolute = now.saturating_add(TWENTY_SECONDS);
    let far = now.saturating_add(Duration::from_secs(3_600));
    let key = create_with(
        &*storage,
        ints(&[("n", 1)])?,
        Deadlines::new(far, absolute),
        now,
    )
    .await?;
    check_liveness(
        harness,
        &key,
        &[
            (
                "1 ms before the absolute deadline",
                absolute.saturating_sub(MS),
                true,
            ),
            ("at the absolute deadline", absolute, false),
            (
                "1 ms after the absolute deadline",
                absolute.saturating_add(MS),
                false,
            ),
        ],
    )
    .await
}

/// An update moves the idle deadline but never lengthens the absolute one.
pub async fn update_never_extends_absolute<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let (key, short) = create_short(&*storage, now).await?;
    let absolute = short.absolute();
    let later = now.saturating_add(TEN_SECONDS).saturating_sub(MS);
    let far = later.saturating_add(Duration::from_secs(3_600));
    let mut changes = ChangeSet::new();
    changes.insert("n", int(2)?);
    let outcome = storage
        .update(&key, &changes, Deadlines::new(far, far), later)
        .await?;
    ensure!(
        matches!(outcome, crate::UpdateOutcome::Updated { .. }),
        "update: {outcome:?}"
    );
    let record = load_live(&*storage, &key, later).await?;
    ensure_eq!(
        record.deadlines,
        Deadlines::new(far, absolute),
        "deadlines after the update"
    );
    check_liveness(
        harness,
        &key,
        &[
            (
                "past the old idle deadline",
                now.saturating_add(TEN_SECONDS),
                true,
            ),
            ("at the absolute deadline", absolute, false),
        ],
    )
    .await
}

/// `touch` moves the idle deadline and changes nothing else: not the data,
/// the version, the creation time or the absolute deadline.
pub async fn touch_moves_idle_only<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("n", 1)])?, now).await?;
    let before = load_live(&*storage, &key, now).await?;
    let later = now.saturating_add(TEN_SECONDS);
    let idle = deadlines(now).idle().saturating_add(TEN_SECONDS);
    ensure_eq!(
        storage.touch(&key, idle, later).await?,
        TouchOutcome::Touched,
        "touch"
    );
    let after = load_live(&*storage, &key, later).await?;
    ensure_eq!(
        after.deadlines,
        before.deadlines.with_idle(idle),
        "deadlines after touch"
    );
    ensure_eq!(after.data, before.data, "data after touch");
    ensure_eq!(after.version, before.version, "version after touch");
    ensure_eq!(
        after.created_at,
        before.created_at,
        "created_at after touch"
    );
    check_liveness(
        harness,
        &key,
        &[
            ("past the old idle deadline", before.deadlines.idle(), true),
            ("at the new idle deadline", idle, false),
        ],
    )
    .await
}

/// `touch` never moves the idle deadline past the absolute one.
pub async fn touch_never_passes_absolute<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let (key, short) = create_short(&*storage, now).await?;
    let absolute = short.absolute();
    let far = now.saturating_add(Duration::from_secs(3_600));
    ensure_eq!(
        storage.touch(&key, far, now).await?,
        TouchOutcome::Touched,
        "touch"
    );
    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(
        record.deadlines.idle(),
        absolute,
        "idle deadline after touching past absolute"
    );
    check_liveness(
        harness,
        &key,
        &[
            (
                "1 ms before the absolute deadline",
                absolute.saturating_sub(MS),
                true,
            ),
            ("at the absolute deadline", absolute, false),
        ],
    )
    .await
}

/// A touch based on an old read cannot undo an update written since: the
/// request loaded, another request wrote, then the first one touched.
pub async fn touch_keeps_concurrent_write<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("n", 1)])?, now).await?;
    let read_by_toucher = load_live(&*storage, &key, now).await?;

    let mut changes = ChangeSet::new();
    changes.insert("written", int(2)?);
    update(&*storage, &key, &changes, now).await?;

    let idle = read_by_toucher.deadlines.idle().saturating_add(TEN_SECONDS);
    ensure_eq!(
        storage.touch(&key, idle, now).await?,
        TouchOutcome::Touched,
        "touch"
    );
    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(
        int_at(&record.data, "written")?,
        Some(2),
        "value written before the touch"
    );
    ensure_eq!(
        record.deadlines.idle(),
        idle,
        "idle deadline after the touch"
    );
    Ok(())
}

/// `delete_expired` removes exactly the records expired at `now`, by
/// either deadline, and counts them; a backend with native expiry returns 0.
pub async fn delete_expired_counts<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let short = Deadlines::new(
        now.saturating_add(TEN_SECONDS),
        now.saturating_add(TEN_SECONDS),
    );
    // Idle long expired, absolute far away: expired all the same.
    let idle_only = Deadlines::new(short.idle(), now.saturating_add(Duration::from_secs(3_600)));
    let first = create_with(&*storage, ints(&[("n", 1)])?, idle_only, now).await?;
    let second = create_with(&*storage, ints(&[("n", 2)])?, short, now).await?;
    let lasting = create(&*storage, ints(&[("n", 3)])?, now).await?;

    let later = short.expires_at();
    let deleted = storage.delete_expired(later).await?;
    if storage.capabilities().native_expiry {
        ensure_eq!(deleted, 0, "delete_expired of a backend with native expiry");
    } else {
        ensure_eq!(deleted, 2, "records deleted by delete_expired");
        for key in [&first, &second] {
            ensure!(
                !harness.raw_exists(key).await?,
                "an expired record is still stored"
            );
        }
    }
    ensure_eq!(
        load_live(&*storage, &lasting, later).await?.data,
        ints(&[("n", 3)])?,
        "live record"
    );
    Ok(())
}
