//! A session's own lifetime: stored with it, set by the change sets that
//! carry one, kept by every other write, moved by `cycle` and `login`.

use std::time::Duration;

use super::accounts::{has_accounts, login_of, user};
use super::fixtures::{MS, deadlines, fresh_key, int, ints, load_live, update};
use super::{Failure, Harness};
use crate::{
    ChangeSet, CreateOutcome, CycleOutcome, Lifetime, LoginOutcome, Record, SessionKey,
    SessionStorage, Timestamp, TouchOutcome, UpdateOutcome,
};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_lifetimes {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            a_lifetime_is_stored_and_kept_by_other_writes,
            a_change_set_sets_the_lifetime,
            a_refused_write_leaves_the_lifetime,
            cycle_moves_the_lifetime,
            login_moves_the_lifetime,
        ]);
    };
}

/// A lifetime with every part chosen.
fn remembered() -> Lifetime {
    Lifetime::new()
        .persistent(true)
        .idle_timeout(Duration::from_secs(30 * 24 * 3600))
        .absolute_timeout(Duration::from_secs(90 * 24 * 3600))
}

/// A lifetime with one part chosen.
fn short() -> Lifetime {
    Lifetime::new().idle_timeout(Duration::from_secs(60))
}

/// A change set giving the session `lifetime`, with a value or without.
fn setting(lifetime: Lifetime, value: Option<i64>) -> Result<ChangeSet, Failure> {
    let mut changes = ChangeSet::new();
    if let Some(n) = value {
        changes.insert("n", int(n)?);
    }
    changes.set_lifetime(lifetime);
    Ok(changes)
}

/// Creates a record holding `n = 1` with `lifetime` under a fresh key.
async fn create_living(
    storage: &dyn SessionStorage,
    lifetime: Lifetime,
    now: Timestamp,
) -> Result<SessionKey, Failure> {
    let key = fresh_key()?;
    let record = Record::new(ints(&[("n", 1)])?, now, deadlines(now)).with_lifetime(lifetime);
    let outcome = storage.create(&key, &record, now).await?;
    ensure_eq!(outcome, CreateOutcome::Created, "create");
    Ok(key)
}

/// Fails unless the record under `key` is live at `now` with `lifetime`.
async fn ensure_lifetime(
    storage: &dyn SessionStorage,
    key: &SessionKey,
    lifetime: Lifetime,
    now: Timestamp,
    after: &str,
) -> Result<Record, Failure> {
    let record = load_live(storage, key, now).await?;
    ensure_eq!(record.lifetime, lifetime, "the lifetime after {after}");
    Ok(record)
}

/// A record created with its own lifetime loads with it, and keeps it
/// through writes whose change sets carry none: an update, an update from
/// the record as loaded, a touch.
pub async fn a_lifetime_is_stored_and_kept_by_other_writes<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create_living(&*storage, remembered(), now).await?;
    let loaded = ensure_lifetime(&*storage, &key, remembered(), now, "create").await?;

    let mut changes = ChangeSet::new();
    changes.insert("n", int(2)?);
    let outcome = (storage.update_from(&key, &loaded, &changes, deadlines(now), now)).await?;
    ensure_eq!(
        outcome,
        UpdateOutcome::Updated { version: 2 },
        "update_from"
    );
    ensure_lifetime(&*storage, &key, remembered(), now, "update_from").await?;
    changes.clear();
    update(&*storage, &key, &changes, now).await?;
    ensure_lifetime(&*storage, &key, remembered(), now, "a clearing update").await?;
    let later = now.saturating_add(MS);
    let touched = storage.touch(&key, deadlines(later).idle(), later).await?;
    ensure_eq!(touched, TouchOutcome::Touched, "touch");
    ensure_lifetime(&*storage, &key, remembered(), later, "touch").await?;
    Ok(())
}

/// A change set carrying a lifetime gives the session that lifetime, alone
/// (a write with a new version) or with values, from the record as loaded
/// or not; the default lifetime is the layer's again.
pub async fn a_change_set_sets_the_lifetime<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create_living(&*storage, Lifetime::new(), now).await?;

    let version = update(&*storage, &key, &setting(remembered(), None)?, now).await?;
    ensure_eq!(
        version,
        2,
        "the version of a write setting only the lifetime"
    );
    let loaded = ensure_lifetime(&*storage, &key, remembered(), now, "an update").await?;
    ensure_eq!(
        loaded.data,
        ints(&[("n", 1)])?,
        "the data after setting the lifetime"
    );

    let changes = setting(short(), Some(3))?;
    let outcome = (storage.update_from(&key, &loaded, &changes, deadlines(now), now)).await?;
    ensure_eq!(
        outcome,
        UpdateOutcome::Updated { version: 3 },
        "update_from"
    );
    let loaded = ensure_lifetime(&*storage, &key, short(), now, "update_from").await?;
    ensure_eq!(loaded.data, ints(&[("n", 3)])?, "the data of update_from");

    let changes = setting(Lifetime::new(), None)?;
    let outcome = (storage.update_from(&key, &loaded, &changes, deadlines(now), now)).await?;
    ensure_eq!(outcome, UpdateOutcome::Updated { version: 4 }, "a reset");
    ensure_lifetime(&*storage, &key, Lifetime::new(), now, "a reset").await?;
    Ok(())
}

/// A write refused by a condition sets no lifetime either.
pub async fn a_refused_write_leaves_the_lifetime<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create_living(&*storage, short(), now).await?;
    let mut changes = setting(remembered(), Some(5))?;
    changes.require("n", Some(int(9)?));
    let outcome = storage.update(&key, &changes, deadlines(now), now).await?;
    ensure!(
        matches!(outcome, UpdateOutcome::Conflict { .. }),
        "a conditioned update whose condition fails: {outcome:?}"
    );
    ensure_lifetime(&*storage, &key, short(), now, "a conflict").await?;
    Ok(())
}

/// `cycle` moves the lifetime with the record, or gives it the one its
/// change set carries.
pub async fn cycle_moves_the_lifetime<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let old = create_living(&*storage, remembered(), now).await?;
    let new = fresh_key()?;
    let outcome = (storage.cycle(&old, &new, &ChangeSet::new(), deadlines(now), now)).await?;
    ensure_eq!(outcome, CycleOutcome::Cycled, "cycle");
    ensure_lifetime(&*storage, &new, remembered(), now, "cycle").await?;

    let newer = fresh_key()?;
    let changes = setting(short(), Some(2))?;
    let outcome = (storage.cycle(&new, &newer, &changes, deadlines(now), now)).await?;
    ensure_eq!(
        outcome,
        CycleOutcome::Cycled,
        "a cycle setting the lifetime"
    );
    ensure_lifetime(&*storage, &newer, short(), now, "a cycle setting it").await?;
    Ok(())
}

/// `login` moves the lifetime with the record, or gives it the one its
/// change set carries, also to a session it creates; later writes of the
/// bound record keep or set it as for any other.
pub async fn login_moves_the_lifetime<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let login = login_of(user()?);
    let old = create_living(&*storage, remembered(), now).await?;
    let new = fresh_key()?;
    let changes = ChangeSet::new();
    let outcome = storage
        .login(Some(&old), &new, &changes, deadlines(now), &login, now)
        .await?;
    ensure_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 }, "login");
    let loaded = ensure_lifetime(&*storage, &new, remembered(), now, "login").await?;

    let changes = setting(short(), Some(2))?;
    let outcome = (storage.update_from(&new, &loaded, &changes, deadlines(now), now)).await?;
    ensure!(
        matches!(outcome, UpdateOutcome::Updated { .. }),
        "update_from of a bound record: {outcome:?}"
    );
    ensure_lifetime(&*storage, &new, short(), now, "a bound update_from").await?;
    let changes = setting(remembered(), None)?;
    update(&*storage, &new, &changes, now).await?;
    ensure_lifetime(&*storage, &new, remembered(), now, "a bound update").await?;

    let created = fresh_key()?;
    let changes = setting(short(), Some(1))?;
    let outcome = storage
        .login(None, &created, &changes, deadlines(now), &login, now)
        .await?;
    ensure_eq!(
        outcome,
        LoginOutcome::LoggedIn { revoked: 0 },
        "a login from none"
    );
    ensure_lifetime(&*storage, &created, short(), now, "a login from none").await?;
    Ok(())
}
