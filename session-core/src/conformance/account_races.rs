//! Revokes racing logins and cycles: a session is never live and
//! unlisted, and a revoked one never comes back under a new key.
//!
//! Each round releases the two calls at once on a multi-thread runtime;
//! whichever comes first, the end state must be one the contract allows.
//! The workspace's tests force the interleavings that break it on stores
//! built to break it.

use super::accounts::{handles, has_accounts, log_in, login_of, user};
use super::concurrency::read_then_write;
use super::fixtures::{create, deadlines, fresh_key, ints};
use super::{Failure, Harness};
use crate::{ChangeSet, CycleOutcome, LoginOutcome, Revoke, SessionHandle, SessionKey, Timestamp};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_account_races {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            login_racing_revoke_all_is_never_hidden,
            relogin_racing_revoke_all_ends_both,
            revoke_racing_cycle_is_final,
        ]);
    };
}

/// Rounds of each race.
pub const RACE_ROUNDS: usize = 16;

/// What the racing call other than the revoke did.
#[derive(Debug)]
enum Raced {
    Login(LoginOutcome),
    Cycle(CycleOutcome),
    Revoked(u64),
}

/// Runs `revoke` for `user` and a login or cycle from `old` to `new` at
/// once; returns the revoke's count and the other call's outcome.
async fn race<H: Harness + ?Sized>(
    harness: &H,
    user: crate::UserKey,
    which: Revoke,
    old: SessionKey,
    new: SessionKey,
    cycle: bool,
) -> Result<(u64, Raced), Failure> {
    let now = Timestamp::now();
    let storage = harness.storage();
    let results = read_then_write(
        2,
        &storage,
        |_, _| async { Ok(None) },
        move |storage, index, _| async move {
            let changes = ChangeSet::new();
            Ok(match (index, cycle) {
                (0, false) => Raced::Login(
                    storage
                        .login(
                            Some(&old),
                            &new,
                            &changes,
                            deadlines(now),
                            &login_of(user),
                            now,
                        )
                        .await?,
                ),
                (0, true) => Raced::Cycle(
                    storage
                        .cycle(&old, &new, &changes, deadlines(now), now)
                        .await?,
                ),
                _ => Raced::Revoked(storage.revoke(&user, &which, now).await?),
            })
        },
    )
    .await?;
    match <[Raced; 2]>::try_from(results) {
        Ok([raced, Raced::Revoked(count)]) => Ok((count, raced)),
        Ok(other) => Err(Failure::new(format!("unexpected race results {other:?}"))),
        Err(other) => Err(Failure::new(format!("unexpected race results {other:?}"))),
    }
}

/// An anonymous session logging in while "log out everywhere" runs ends
/// revoked (the login reports `Gone`, or its new key is revoked) or listed,
/// never live and unlisted; the session the user had before always ends.
pub async fn login_racing_revoke_all_is_never_hidden<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    for round in 0..RACE_ROUNDS {
        let now = Timestamp::now();
        let user = user()?;
        let before = log_in(&*storage, user, now).await?;
        let anonymous = create(&*storage, ints(&[("cart", 1)])?, now).await?;
        let new = fresh_key()?;
        let (_, raced) = race(harness, user, Revoke::All, anonymous, new, false).await?;
        // `Gone` is a login the revoke caught in flight (a store that
        // logs in in steps): revoked, as the contract allows.
        ensure!(
            matches!(
                raced,
                Raced::Login(LoginOutcome::LoggedIn { .. } | LoginOutcome::Gone)
            ),
            "round {round}: the login from a live anonymous session: {raced:?}"
        );
        ensure!(
            storage.load(&before, now).await?.is_none(),
            "round {round}: the session from before the revoke still loads"
        );
        let live = storage.load(&new, now).await?.is_some();
        let listed = handles(&*storage, &user, now)
            .await?
            .contains(&SessionHandle::of(&new));
        ensure_eq!(
            listed,
            live,
            "round {round}: the new session is listed as it is live"
        );
    }
    Ok(())
}

/// A logged-in session logging in again while "log out everywhere" runs:
/// whichever comes first, neither the old nor the new key loads after
/// both.
pub async fn relogin_racing_revoke_all_ends_both<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    for round in 0..RACE_ROUNDS {
        let now = Timestamp::now();
        let user = user()?;
        let old = log_in(&*storage, user, now).await?;
        let new = fresh_key()?;
        let (revoked, raced) = race(harness, user, Revoke::All, old, new, false).await?;
        ensure_eq!(revoked, 1, "round {round}: sessions revoked ({raced:?})");
        for (name, key) in [("old", old), ("new", new)] {
            ensure!(
                storage.load(&key, now).await?.is_none(),
                "round {round}: the {name} key loads after revoke all ({raced:?})"
            );
        }
        ensure!(
            storage.list(&user, now).await?.is_empty(),
            "round {round}: listed after revoke all"
        );
    }
    Ok(())
}

/// A session revoked by its handle while it is cycled does not come back
/// under the new key: if the revoke ended it, neither key loads.
pub async fn revoke_racing_cycle_is_final<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    for round in 0..RACE_ROUNDS {
        let now = Timestamp::now();
        let user = user()?;
        let old = log_in(&*storage, user, now).await?;
        let new = fresh_key()?;
        let which = Revoke::One(SessionHandle::of(&old));
        let (revoked, raced) = race(harness, user, which, old, new, round % 2 == 0).await?;
        ensure!(
            storage.load(&old, now).await?.is_none(),
            "round {round}: the old key loads ({raced:?})"
        );
        let live = storage.load(&new, now).await?.is_some();
        if revoked == 1 {
            ensure!(
                !live,
                "round {round}: a revoked session came back under its new key ({raced:?})"
            );
        } else {
            let moved = matches!(
                raced,
                Raced::Cycle(CycleOutcome::Cycled) | Raced::Login(LoginOutcome::LoggedIn { .. })
            );
            ensure!(
                live && moved,
                "round {round}: neither revoked nor moved ({raced:?})"
            );
        }
    }
    Ok(())
}
