//! Accounts: a login binds a session to a user; the user's sessions are
//! listed and revoked; writes keep the binding.

use std::num::NonZeroUsize;
use std::time::Duration;

use super::fixtures::{MS, create, deadlines, fresh_key, int, ints, load_live, update};
use super::{Failure, Harness};
use crate::{
    ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Device, Error, Login, LoginOutcome, Record,
    Revoke, SessionHandle, SessionKey, SessionStorage, Timestamp, TouchOutcome, UpdateOutcome,
    UserKey,
};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_accounts {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            accounts_are_supported_or_refused,
            login_binds_and_lists,
            login_from_no_session_creates_one,
            create_of_a_bound_record_lists_it,
            login_refusals_write_nothing,
            login_as_another_user_moves_the_binding,
            writes_keep_the_binding_and_see_it,
            cycle_moves_the_binding,
            expired_sessions_are_never_listed,
            revoke_one_by_handle,
            revoke_all_but_the_current_one,
            revoke_all,
            revoked_sessions_take_no_writes,
            login_limit_revokes_the_least_recently_seen,
        ]);
    };
}

/// A user of the tests, distinct per call so tests never share an index.
pub(super) fn user() -> Result<UserKey, Failure> {
    Ok(UserKey::of(&fresh_key()?.to_string()))
}

/// A login of `user` recording a user agent.
pub(super) fn login_of(user: UserKey) -> Login {
    Login::new(user).device(Device::new().with("user_agent", "conformance/1"))
}

/// Whether the storage has accounts. A store without them must refuse
/// every account call with `Unsupported`, which this checks; the account
/// tests then have nothing more to check.
pub(super) async fn has_accounts(storage: &dyn SessionStorage) -> Result<bool, Failure> {
    if storage.capabilities().accounts {
        return Ok(true);
    }
    let now = Timestamp::now();
    let (user, new) = (user()?, fresh_key()?);
    let changes = ChangeSet::new();
    let login = login_of(user);
    let refused = [
        storage
            .login(None, &new, &changes, deadlines(now), &login, now)
            .await
            .err(),
        storage.list(&user, now).await.err(),
        storage.revoke(&user, &Revoke::All, now).await.err(),
    ];
    for error in refused {
        ensure!(
            matches!(error, Some(Error::Unsupported(_))),
            "a store without accounts answered an account call with {error:?}, \
             not Error::Unsupported"
        );
    }
    ensure!(
        storage.load(&new, now).await?.is_none(),
        "a refused login stored a session"
    );
    Ok(false)
}

/// Logs `user` in from a fresh anonymous session at `now`; returns the
/// new key.
pub(super) async fn log_in(
    storage: &dyn SessionStorage,
    user: UserKey,
    now: Timestamp,
) -> Result<SessionKey, Failure> {
    let old = create(storage, ints(&[("cart", 1)])?, now).await?;
    log_in_from(storage, Some(&old), &login_of(user), now).await
}

/// Logs in from `old` (or from no session) to a fresh key, which must
/// succeed without revoking anything; returns the new key.
pub(super) async fn log_in_from(
    storage: &dyn SessionStorage,
    old: Option<&SessionKey>,
    login: &Login,
    now: Timestamp,
) -> Result<SessionKey, Failure> {
    let new = fresh_key()?;
    let outcome = storage
        .login(old, &new, &ChangeSet::new(), deadlines(now), login, now)
        .await?;
    ensure_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 }, "login");
    Ok(new)
}

/// The handles `list` returns for `user` at `now`, in its order.
pub(super) async fn handles(
    storage: &dyn SessionStorage,
    user: &UserKey,
    now: Timestamp,
) -> Result<Vec<SessionHandle>, Failure> {
    let listed = storage.list(user, now).await?;
    Ok(listed.iter().map(|listed| listed.handle).collect())
}

/// The handles of `keys`, in their order.
pub(super) fn handles_of(keys: &[SessionKey]) -> Vec<SessionHandle> {
    keys.iter().map(SessionHandle::of).collect()
}

/// Later by `ms` milliseconds.
fn later(now: Timestamp, ms: u64) -> Timestamp {
    now.saturating_add(Duration::from_millis(ms))
}

/// A store either has accounts and says so, or refuses every account call
/// with `Error::Unsupported` and stores nothing.
pub async fn accounts_are_supported_or_refused<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    has_accounts(&*harness.storage()).await.map(|_| ())
}

/// A login moves the session to the new key, created now and bound to the
/// user with the device facts; the user's list shows it, and nobody
/// else's does.
pub async fn login_binds_and_lists<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let old = create(&*storage, ints(&[("cart", 3), ("planted", 1)])?, now).await?;
    let at = later(now, 1_000);
    let (user, new) = (user()?, fresh_key()?);
    let mut changes = ChangeSet::new();
    changes.remove("planted");
    changes.insert("name", int(7)?);
    let login = login_of(user);
    let outcome = storage
        .login(Some(&old), &new, &changes, deadlines(at), &login, at)
        .await?;
    ensure_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 }, "login");

    ensure!(
        storage.load(&old, at).await?.is_none(),
        "the old key still loads after login"
    );
    let record = load_live(&*storage, &new, at).await?;
    ensure_eq!(
        record.data,
        ints(&[("cart", 3), ("name", 7)])?,
        "data after login"
    );
    ensure_eq!(
        record.created_at,
        at,
        "a login creates the session at its time"
    );
    ensure_eq!(record.deadlines, deadlines(at), "deadlines after login");
    let account = record
        .account
        .ok_or_else(|| Failure::new("a logged-in record has no account"))?;
    ensure_eq!(account.user, user, "the bound user");
    ensure_eq!(account.device, *login.device_facts(), "the device facts");
    ensure_eq!(account.last_seen, at, "last seen at login");

    let listed = storage.list(&user, at).await?;
    ensure_eq!(listed.len(), 1, "sessions listed after one login");
    let listed = &listed[0];
    ensure_eq!(listed.handle, SessionHandle::of(&new), "the listed handle");
    ensure_eq!(listed.created_at, at, "listed created_at");
    ensure_eq!(listed.last_seen, at, "listed last_seen");
    ensure_eq!(listed.deadlines, deadlines(at), "listed deadlines");
    ensure_eq!(listed.device, *login.device_facts(), "listed device facts");
    ensure!(
        storage.list(&self::user()?, at).await?.is_empty(),
        "another user's list shows the session"
    );
    Ok(())
}

/// A login from no stored session creates the session from empty data,
/// bound and listed.
pub async fn login_from_no_session_creates_one<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let (user, new) = (user()?, fresh_key()?);
    let mut changes = ChangeSet::new();
    changes.insert("name", int(1)?);
    let outcome = storage
        .login(None, &new, &changes, deadlines(now), &login_of(user), now)
        .await?;
    ensure_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 }, "login");
    let record = load_live(&*storage, &new, now).await?;
    ensure_eq!(record.data, ints(&[("name", 1)])?, "data after login");
    ensure_eq!(record.version, 1, "version of a session created by login");
    ensure_eq!(
        handles(&*storage, &user, now).await?,
        handles_of(&[new]),
        "listed after login"
    );
    Ok(())
}

/// `create` of a record that is already bound (restored from elsewhere,
/// say) puts it in its user's index, as a login would.
pub async fn create_of_a_bound_record_lists_it<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let (user, key) = (user()?, fresh_key()?);
    let record = Record::new(ints(&[("n", 1)])?, now, deadlines(now))
        .with_account(Some(login_of(user).account(now)));
    let outcome = storage.create(&key, &record, now).await?;
    ensure_eq!(outcome, CreateOutcome::Created, "create of a bound record");
    ensure_eq!(
        load_live(&*storage, &key, now).await?.account,
        record.account,
        "the binding as loaded"
    );
    ensure_eq!(
        handles(&*storage, &user, now).await?,
        handles_of(&[key]),
        "listed after create"
    );
    Ok(())
}

/// A login onto a live key, from a gone session, or with a failed
/// condition writes nothing and lists nothing.
pub async fn login_refusals_write_nothing<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let user = user()?;
    let login = login_of(user);
    let (old, taken) = (
        create(&*storage, ints(&[("a", 1)])?, now).await?,
        create(&*storage, ints(&[("b", 2)])?, now).await?,
    );
    let none = ChangeSet::new();
    let outcome = storage
        .login(Some(&old), &taken, &none, deadlines(now), &login, now)
        .await?;
    ensure_eq!(outcome, LoginOutcome::Collision, "login onto a live key");
    let outcome = storage
        .login(None, &taken, &none, deadlines(now), &login, now)
        .await?;
    ensure_eq!(
        outcome,
        LoginOutcome::Collision,
        "login from none onto a live key"
    );
    ensure_eq!(
        load_live(&*storage, &old, now).await?.data,
        ints(&[("a", 1)])?,
        "the old session"
    );
    ensure!(
        load_live(&*storage, &taken, now).await?.account.is_none(),
        "a refused login bound the session it collided with"
    );

    let gone = fresh_key()?;
    let outcome = storage
        .login(
            Some(&gone),
            &fresh_key()?,
            &none,
            deadlines(now),
            &login,
            now,
        )
        .await?;
    ensure_eq!(outcome, LoginOutcome::Gone, "login from an unknown key");

    let mut conditioned = ChangeSet::new();
    conditioned.require("a", Some(int(9)?));
    let new = fresh_key()?;
    let outcome = storage
        .login(Some(&old), &new, &conditioned, deadlines(now), &login, now)
        .await?;
    ensure!(
        matches!(outcome, LoginOutcome::Conflict { .. }),
        "login with a failed condition: {outcome:?}"
    );
    ensure!(
        storage.load(&new, now).await?.is_none(),
        "a refused login stored its new key"
    );
    ensure!(
        storage.list(&user, now).await?.is_empty(),
        "refused logins were listed"
    );
    Ok(())
}

/// A session logged in as one user that logs in as another leaves the
/// first user's list and joins the second's.
pub async fn login_as_another_user_moves_the_binding<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let (first, second) = (user()?, user()?);
    let key = log_in(&*storage, first, now).await?;
    let moved = log_in_from(&*storage, Some(&key), &login_of(second), now).await?;
    ensure!(
        handles(&*storage, &first, now).await?.is_empty(),
        "the first user still lists it"
    );
    ensure_eq!(
        handles(&*storage, &second, now).await?,
        handles_of(&[moved]),
        "the second user's list"
    );
    let account = load_live(&*storage, &moved, now).await?.account;
    ensure_eq!(
        account.map(|account| account.user),
        Some(second),
        "the bound user"
    );
    Ok(())
}

/// Updates and touches keep the binding and move its `last_seen` to their
/// `now`; the list shows it, most recently seen first.
pub async fn writes_keep_the_binding_and_see_it<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let user = user()?;
    let (first, second) = (
        log_in(&*storage, user, now).await?,
        log_in(&*storage, user, now).await?,
    );

    let updated = later(now, 2_000);
    let mut changes = ChangeSet::new();
    changes.insert("n", int(1)?);
    update(&*storage, &first, &changes, updated).await?;
    let record = load_live(&*storage, &first, updated).await?;
    ensure_eq!(
        record
            .account
            .map(|account| (account.user, account.last_seen)),
        Some((user, updated)),
        "the binding after an update"
    );

    let touched = later(now, 3_000);
    let idle = deadlines(touched).idle();
    ensure_eq!(
        storage.touch(&second, idle, touched).await?,
        TouchOutcome::Touched,
        "touch"
    );
    let listed = storage.list(&user, touched).await?;
    let seen: Vec<_> = listed
        .iter()
        .map(|listed| (listed.handle, listed.last_seen))
        .collect();
    let expected = vec![
        (SessionHandle::of(&second), touched),
        (SessionHandle::of(&first), updated),
    ];
    ensure_eq!(seen, expected, "handles and last seen, most recent first");
    ensure_eq!(
        listed[0].deadlines.idle(),
        idle,
        "the listed idle deadline after a touch"
    );
    Ok(())
}

/// `cycle` moves the binding with the record: the list shows the new key's
/// handle only.
pub async fn cycle_moves_the_binding<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let user = user()?;
    let old = log_in(&*storage, user, now).await?;
    let (new, at) = (fresh_key()?, later(now, 1_000));
    let outcome = storage
        .cycle(&old, &new, &ChangeSet::new(), deadlines(now), at)
        .await?;
    ensure_eq!(outcome, CycleOutcome::Cycled, "cycle of a bound session");
    let record = load_live(&*storage, &new, at).await?;
    ensure_eq!(
        record
            .account
            .map(|account| (account.user, account.last_seen)),
        Some((user, at)),
        "the binding after cycle"
    );
    ensure_eq!(
        handles(&*storage, &user, at).await?,
        handles_of(&[new]),
        "listed after cycle"
    );
    Ok(())
}

/// A session past either deadline is not listed, although it may still be
/// stored.
pub async fn expired_sessions_are_never_listed<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let user = user()?;
    let short = Deadlines::new(later(now, 10_000), later(now, 20_000));
    let new = fresh_key()?;
    let outcome = storage
        .login(None, &new, &ChangeSet::new(), short, &login_of(user), now)
        .await?;
    ensure_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 }, "login");
    let long = log_in(&*storage, user, now).await?;
    let idle_passed = short.idle();
    ensure_eq!(
        handles(&*storage, &user, idle_passed.saturating_sub(MS))
            .await?
            .len(),
        2,
        "sessions listed before the idle deadline"
    );
    ensure_eq!(
        handles(&*storage, &user, idle_passed).await?,
        handles_of(&[long]),
        "listed at the idle deadline of one"
    );
    Ok(())
}

/// Revoking by handle ends that session only; a handle the user has no
/// session under (unknown, or another user's) ends nothing.
pub async fn revoke_one_by_handle<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let (user, other) = (user()?, user()?);
    let (first, second) = (
        log_in(&*storage, user, now).await?,
        log_in(&*storage, user, now).await?,
    );
    let theirs = log_in(&*storage, other, now).await?;

    for handle in [SessionHandle::of(&theirs), SessionHandle::of(&fresh_key()?)] {
        let revoked = storage.revoke(&user, &Revoke::One(handle), now).await?;
        ensure_eq!(
            revoked,
            0,
            "revoking a handle the user has no session under"
        );
    }
    ensure!(
        storage.load(&theirs, now).await?.is_some(),
        "another user's session was revoked"
    );

    let revoked = storage
        .revoke(&user, &Revoke::One(SessionHandle::of(&first)), now)
        .await?;
    ensure_eq!(revoked, 1, "revoking one session");
    ensure!(
        storage.load(&first, now).await?.is_none(),
        "a revoked session loads"
    );
    ensure!(
        storage.load(&second, now).await?.is_some(),
        "the other session was revoked too"
    );
    ensure_eq!(
        handles(&*storage, &user, now).await?,
        handles_of(&[second]),
        "listed after"
    );
    let again = storage
        .revoke(&user, &Revoke::One(SessionHandle::of(&first)), now)
        .await?;
    ensure_eq!(again, 0, "revoking the same handle again");
    Ok(())
}

/// "Log out my other devices": every session of the user but the current
/// one ends.
pub async fn revoke_all_but_the_current_one<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let (user, other) = (user()?, user()?);
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(log_in(&*storage, user, now).await?);
    }
    let theirs = log_in(&*storage, other, now).await?;
    let revoked = storage.revoke(&user, &Revoke::AllBut(keys[1]), now).await?;
    ensure_eq!(revoked, 2, "sessions revoked");
    for (index, key) in keys.iter().enumerate() {
        let live = storage.load(key, now).await?.is_some();
        ensure_eq!(live, index == 1, "session {index} loads");
    }
    ensure!(
        storage.load(&theirs, now).await?.is_some(),
        "another user's session was revoked"
    );
    ensure_eq!(
        handles(&*storage, &user, now).await?,
        handles_of(&keys[1..2]),
        "listed after"
    );
    Ok(())
}

/// "Log out everywhere": every session of the user ends, and the index
/// keeps none of them.
pub async fn revoke_all<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let user = user()?;
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(log_in(&*storage, user, now).await?);
    }
    ensure_eq!(
        storage.revoke(&user, &Revoke::All, now).await?,
        3,
        "sessions revoked"
    );
    for key in &keys {
        ensure!(
            storage.load(key, now).await?.is_none(),
            "a revoked session loads"
        );
        ensure!(
            !harness.raw_exists(key).await?,
            "a revoked session is still stored"
        );
    }
    ensure!(
        storage.list(&user, now).await?.is_empty(),
        "listed after revoking all"
    );
    ensure!(
        harness.index_members(&user).await?.is_empty(),
        "the index still holds revoked sessions"
    );
    ensure_eq!(
        storage.revoke(&user, &Revoke::All, now).await?,
        0,
        "revoking all again"
    );
    Ok(())
}

/// A request that loaded a session before it was revoked writes nothing
/// after: every write finds it gone, and none stores it again.
pub async fn revoked_sessions_take_no_writes<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let user = user()?;
    let key = log_in(&*storage, user, now).await?;
    let loaded = load_live(&*storage, &key, now).await?;
    ensure_eq!(
        storage.revoke(&user, &Revoke::All, now).await?,
        1,
        "revoked"
    );

    let mut changes = ChangeSet::new();
    changes.insert("n", int(1)?);
    let at = deadlines(now);
    let outcomes = [
        format!("{:?}", storage.update(&key, &changes, at, now).await?),
        format!(
            "{:?}",
            storage
                .update_from(&key, &loaded, &changes, at, now)
                .await?
        ),
        format!("{:?}", storage.touch(&key, at.idle(), now).await?),
        format!(
            "{:?}",
            storage.touch_from(&key, &loaded, at.idle(), now).await?
        ),
        format!(
            "{:?}",
            storage
                .cycle(&key, &fresh_key()?, &changes, at, now)
                .await?
        ),
        format!(
            "{:?}",
            storage
                .login(
                    Some(&key),
                    &fresh_key()?,
                    &changes,
                    at,
                    &login_of(user),
                    now
                )
                .await?
        ),
    ];
    ensure_eq!(
        outcomes,
        [
            format!("{:?}", UpdateOutcome::Gone),
            format!("{:?}", UpdateOutcome::Gone),
            format!("{:?}", TouchOutcome::Gone),
            format!("{:?}", TouchOutcome::Gone),
            format!("{:?}", CycleOutcome::Gone),
            format!("{:?}", LoginOutcome::Gone),
        ],
        "writes to a revoked session"
    );
    ensure!(
        storage.load(&key, now).await?.is_none(),
        "the revoked session came back"
    );
    ensure!(
        storage.list(&user, now).await?.is_empty(),
        "the revoked session is listed again"
    );
    Ok(())
}

/// A login beyond the user's limit revokes the least recently seen of the
/// others, in the same call, and says how many.
pub async fn login_limit_revokes_the_least_recently_seen<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    if !has_accounts(&*storage).await? {
        return Ok(());
    }
    let now = Timestamp::now();
    let user = user()?;
    // Seen in the order 1, 0, 2: session 1 is the least recently seen.
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(log_in(&*storage, user, now).await?);
    }
    for (index, ms) in [(1, 1_000), (0, 2_000), (2, 3_000)] {
        let at = later(now, ms);
        let touched = storage
            .touch(&keys[index], deadlines(at).idle(), at)
            .await?;
        ensure_eq!(touched, TouchOutcome::Touched, "touch of session {index}");
    }
    let at = later(now, 4_000);
    let limit = NonZeroUsize::new(3).ok_or_else(|| Failure::new("3 is not zero"))?;
    let limited = login_of(user).limit(limit);
    let new = fresh_key()?;
    let outcome = storage
        .login(None, &new, &ChangeSet::new(), deadlines(at), &limited, at)
        .await?;
    ensure_eq!(
        outcome,
        LoginOutcome::LoggedIn { revoked: 1 },
        "login at the limit"
    );
    ensure!(
        storage.load(&keys[1], at).await?.is_none(),
        "the least recently seen still loads"
    );
    let mut listed = handles(&*storage, &user, at).await?;
    listed.sort();
    let mut expected = handles_of(&[keys[0], keys[2], new]);
    expected.sort();
    ensure_eq!(listed, expected, "listed after a login at the limit");

    let single = login_of(user).limit(NonZeroUsize::MIN);
    let last = fresh_key()?;
    let outcome = storage
        .login(
            Some(&new),
            &last,
            &ChangeSet::new(),
            deadlines(at),
            &single,
            at,
        )
        .await?;
    ensure_eq!(
        outcome,
        LoginOutcome::LoggedIn { revoked: 2 },
        "a login limited to one, from one of the user's own sessions"
    );
    ensure_eq!(
        handles(&*storage, &user, at).await?,
        handles_of(&[last]),
        "listed after"
    );
    Ok(())
}
