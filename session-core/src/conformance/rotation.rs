//! `rotate`: a record moves to a new key as it is, and the old key
//! forwards to it for a grace window.

use std::time::Duration;

use super::accounts::{has_accounts, log_in_from, login_of, user};
use super::fixtures::{MS, create, deadlines, fresh_key, int, ints, load_live};
use super::{Failure, Harness};
use crate::{
    ChangeSet, CycleOutcome, Error, Revoke, RotateOutcome, SessionHandle, SessionKey,
    SessionStorage, Timestamp, TouchOutcome, UpdateOutcome,
};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_rotation {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            rotation_is_supported_or_refused,
            rotate_moves_the_record_and_forwards_the_old_key,
            writes_to_a_forward_are_gone,
            delete_through_a_forward_ends_both,
            a_forward_to_nothing_loads_nothing,
            rotate_refusals_write_nothing,
            rotation_keeps_the_binding_and_one_listing,
        ]);
    };
}

/// How long the tests' forwards last.
const GRACE: Duration = Duration::from_secs(10);

/// Whether the storage rotates. A store without rotation must refuse
/// `rotate` with `Unsupported`, which this checks, and `load_following`
/// must then be `load`; the rotation tests have nothing more to check.
async fn has_rotation(storage: &dyn SessionStorage) -> Result<bool, Failure> {
    if storage.capabilities().rotation {
        return Ok(true);
    }
    let now = Timestamp::now();
    let old = create(storage, ints(&[("n", 1)])?, now).await?;
    let refused = storage.rotate(&old, &fresh_key()?, now, now).await;
    ensure!(
        matches!(refused, Err(Error::Unsupported(_))),
        "a store without rotation answered rotate with {refused:?}, not Error::Unsupported"
    );
    let found = storage.load_following(&old, now).await?;
    ensure!(
        found.is_some_and(|(key, _)| key == old),
        "load_following of a store without rotation is not load"
    );
    Ok(false)
}

/// A live record under a fresh key, rotated to another fresh key at `now`
/// with a forward until `now + GRACE`: the old key and the new one.
async fn rotated(
    storage: &dyn SessionStorage,
    now: Timestamp,
) -> Result<(SessionKey, SessionKey), Failure> {
    let old = create(storage, ints(&[("n", 1)])?, now).await?;
    let new = fresh_key()?;
    let outcome = storage
        .rotate(&old, &new, now.saturating_add(GRACE), now)
        .await?;
    ensure_eq!(outcome, RotateOutcome::Rotated, "rotate of a live record");
    Ok((old, new))
}

/// `rotation` is in the capabilities exactly when `rotate` works.
pub async fn rotation_is_supported_or_refused<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    has_rotation(&*harness.storage()).await.map(drop)
}

/// The record moves as it is (its key issued at `now`); the old key no
/// longer loads, but `load_following` of it finds the record under the
/// new key until the grace window ends, to the millisecond, and nothing
/// after.
pub async fn rotate_moves_the_record_and_forwards_the_old_key<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_rotation(&*storage).await? {
        return Ok(());
    }
    let created = Timestamp::now();
    let now = created.saturating_add(Duration::from_secs(60));
    let old = create(&*storage, ints(&[("n", 1)])?, created).await?;
    let before = load_live(&*storage, &old, now).await?;
    let new = fresh_key()?;
    let end = now.saturating_add(GRACE);
    let outcome = storage.rotate(&old, &new, end, now).await?;
    ensure_eq!(outcome, RotateOutcome::Rotated, "rotate");

    let moved = load_live(&*storage, &new, now).await?;
    ensure_eq!(
        moved,
        before.clone().with_issued_at(now),
        "the record under the new key"
    );
    ensure!(
        storage.load(&old, now).await?.is_none(),
        "the old key still loads"
    );
    for (key, from) in [(old, "the old key"), (new, "the new key")] {
        let found = storage.load_following(&key, now).await?;
        ensure_eq!(
            found,
            Some((new, moved.clone())),
            "load_following of {from}"
        );
    }
    let last = end.saturating_sub(MS);
    let found = storage.load_following(&old, last).await?;
    ensure!(
        found.is_some(),
        "the forward ended before its grace window did"
    );
    ensure!(
        storage.load_following(&old, end).await?.is_none(),
        "the forward outlived its grace window"
    );
    ensure!(
        storage.load_following(&new, end).await?.is_some(),
        "the end of the forward ended the record"
    );
    Ok(())
}

/// Writes to the old key during the grace window are `Gone` and write
/// nothing, under either key: a caller that follows the forward writes to
/// the new key itself.
pub async fn writes_to_a_forward_are_gone<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_rotation(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let (old, new) = rotated(&*storage, now).await?;
    let moved = load_live(&*storage, &new, now).await?;
    let mut changes = ChangeSet::new();
    changes.insert("n", int(2)?);
    let later = deadlines(now.saturating_add(MS));
    let update = storage.update(&old, &changes, later, now).await?;
    ensure_eq!(update, UpdateOutcome::Gone, "update of a forward");
    let from = storage
        .update_from(&old, &moved, &changes, later, now)
        .await?;
    ensure_eq!(from, UpdateOutcome::Gone, "update_from of a forward");
    let touch = storage.touch(&old, later.idle(), now).await?;
    ensure_eq!(touch, TouchOutcome::Gone, "touch of a forward");
    let cycle = (storage.cycle(&old, &fresh_key()?, &changes, later, now)).await?;
    ensure_eq!(cycle, CycleOutcome::Gone, "cycle of a forward");
    let again = (storage.rotate(&old, &fresh_key()?, now.saturating_add(GRACE), now)).await?;
    ensure_eq!(again, RotateOutcome::Gone, "rotate of a forward");
    ensure_eq!(
        load_live(&*storage, &new, now).await?,
        moved,
        "the record after writes to its forward"
    );
    ensure!(
        storage.load_following(&old, now).await?.is_some(),
        "writes to a forward ended it"
    );
    Ok(())
}

/// A `delete` of the old key during the grace window (a logout through the
/// old id) ends the session under both keys.
pub async fn delete_through_a_forward_ends_both<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_rotation(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let (old, new) = rotated(&*storage, now).await?;
    storage.delete(&old).await?;
    ensure!(
        storage.load(&new, now).await?.is_none(),
        "delete of the forward left the record"
    );
    ensure!(
        storage.load_following(&old, now).await?.is_none(),
        "the forward still leads somewhere"
    );
    Ok(())
}

/// Once the record the forward names is gone (deleted under its new key,
/// or expired), the old key loads nothing, during the grace window too.
pub async fn a_forward_to_nothing_loads_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_rotation(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let (old, new) = rotated(&*storage, now).await?;
    storage.delete(&new).await?;
    ensure!(
        storage.load_following(&old, now).await?.is_none(),
        "a forward to a deleted record loads"
    );
    // A record whose deadline comes within the grace window.
    let short = deadlines(now).with_idle(now.saturating_add(Duration::from_secs(2)));
    let old = super::fixtures::create_with(&*storage, ints(&[("n", 1)])?, short, now).await?;
    let new = fresh_key()?;
    let outcome = storage
        .rotate(&old, &new, now.saturating_add(GRACE), now)
        .await?;
    ensure_eq!(outcome, RotateOutcome::Rotated, "rotate");
    let expired = short.idle();
    ensure!(
        storage.load_following(&old, expired).await?.is_none(),
        "a forward to an expired record loads"
    );
    Ok(())
}

/// `rotate` of no live record is `Gone`, onto a live key a `Collision`,
/// and neither changes anything.
pub async fn rotate_refusals_write_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_rotation(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let end = now.saturating_add(GRACE);
    let (absent, new) = (fresh_key()?, fresh_key()?);
    let outcome = storage.rotate(&absent, &new, end, now).await?;
    ensure_eq!(outcome, RotateOutcome::Gone, "rotate of an absent key");
    ensure!(
        !harness.raw_exists(&new).await?,
        "a refused rotate wrote the new key"
    );

    let old = create(&*storage, ints(&[("owner", 1)])?, now).await?;
    let taken = create(&*storage, ints(&[("owner", 2)])?, now).await?;
    let before = (
        harness.read_raw(&old).await?,
        harness.read_raw(&taken).await?,
    );
    let outcome = storage.rotate(&old, &taken, end, now).await?;
    ensure_eq!(outcome, RotateOutcome::Collision, "rotate onto a live key");
    let after = (
        harness.read_raw(&old).await?,
        harness.read_raw(&taken).await?,
    );
    ensure!(after == before, "a colliding rotate changed a record");

    let expired = deadlines(now).absolute();
    let outcome = storage
        .rotate(&old, &new, expired.saturating_add(GRACE), expired)
        .await?;
    ensure_eq!(outcome, RotateOutcome::Gone, "rotate of an expired record");
    Ok(())
}

/// A bound record keeps its binding through `rotate`, and its user lists
/// one session, under the new key; revoking it ends the forward too.
pub async fn rotation_keeps_the_binding_and_one_listing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_rotation(&*storage).await? || !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let login = login_of(user()?);
    let old = log_in_from(&*storage, None, &login, now).await?;
    let new = fresh_key()?;
    let later = now.saturating_add(MS);
    let outcome = (storage.rotate(&old, &new, later.saturating_add(GRACE), later)).await?;
    ensure_eq!(outcome, RotateOutcome::Rotated, "rotate of a bound record");
    let moved = load_live(&*storage, &new, later).await?;
    let account = moved.account.as_deref();
    ensure!(
        account.is_some_and(|account| account.user == login.user() && account.last_seen == later),
        "the binding after rotate: {account:?}"
    );
    let listed = storage.list(&login.user(), later).await?;
    let handles: Vec<SessionHandle> = listed.iter().map(|listed| listed.handle).collect();
    ensure_eq!(
        handles,
        vec![SessionHandle::of(&new)],
        "the user's sessions after rotate"
    );
    let revoked = storage.revoke(&login.user(), &Revoke::All, later).await?;
    ensure_eq!(revoked, 1, "sessions revoked");
    ensure!(
        storage.load_following(&old, later).await?.is_none(),
        "the forward of a revoked session loads"
    );
    Ok(())
}
