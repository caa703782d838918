//! The index of a user's sessions keeps nothing of sessions that ended.

use std::time::Duration;

use super::accounts::{has_accounts, log_in, login_of, user};
use super::fixtures::fresh_key;
use super::{Failure, Harness};
use crate::{ChangeSet, Deadlines, LoginOutcome, Timestamp};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_index {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            index_drops_deleted_sessions,
            index_keeps_nothing_of_expired_sessions,
        ]);
    };
}

/// A logout (`delete`) takes the session out of its user's index at once.
pub async fn index_drops_deleted_sessions<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let user = user()?;
    let (gone, kept) = (
        log_in(&*storage, user, now).await?,
        log_in(&*storage, user, now).await?,
    );
    storage.delete(&gone).await?;
    ensure_eq!(
        harness.index_members(&user).await?,
        vec![kept],
        "the index after a logout"
    );
    storage.delete(&kept).await?;
    ensure!(
        harness.index_members(&user).await?.is_empty(),
        "the index after the last logout"
    );
    Ok(())
}

/// Sessions past their deadlines leave the index once cleanup
/// (`delete_expired`) or, for a store with native expiry, an index
/// operation at a later `now` has run; a live session of the same user
/// stays.
pub async fn index_keeps_nothing_of_expired_sessions<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let user = user()?;
    let short = Deadlines::new(
        now.saturating_add(Duration::from_secs(10)),
        now.saturating_add(Duration::from_secs(20)),
    );
    let login = login_of(user);
    for _ in 0..3 {
        let outcome = storage
            .login(None, &fresh_key()?, &ChangeSet::new(), short, &login, now)
            .await?;
        ensure_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 }, "login");
    }
    let live = log_in(&*storage, user, now).await?;
    let later = short.expires_at().saturating_add(Duration::from_secs(1));
    storage.delete_expired(later).await?;
    let listed = storage.list(&user, later).await?;
    ensure_eq!(listed.len(), 1, "sessions listed once three expired");
    ensure_eq!(
        harness.index_members(&user).await?,
        vec![live],
        "the index once three sessions expired"
    );
    Ok(())
}
