//! Dropped operations: a storage future dropped part-way leaves storage as
//! if the operation had completed or had never started.
//!
//! Callers run every operation under a timeout, and HTTP servers drop
//! request futures when clients go away, so any `.await` inside an
//! operation is a point where it may stop for good. Each check runs one
//! operation under a wrapper that polls it at most N times and then drops
//! it, for N = 1, 2, ... until it completes within N polls (at most
//! [`MAX_POLLS`]). After each drop, what is stored under the operation's
//! keys must be what it was before, or what a run to completion (on other
//! keys, with the same inputs) left.
//!
//! A store may finish or undo its steps in a spawned task, so the state is
//! read again until it is one of the two, within a generous bound; a state
//! that stays neither fails. Every dropped run is judged once more at the
//! end, in case a spawned task changed it after it was first judged.

use std::fmt;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use super::accounts::{has_accounts, log_in_from, login_of, user};
use super::fixtures::{create_with, deadlines, fresh_key, int, ints};
use super::{Failure, Harness};
use crate::{
    ChangeSet, Deadlines, Error, Login, Record, Revoke, SessionHandle, SessionKey, SessionStorage,
    Timestamp,
};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cancellation {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            dropped_create_is_all_or_nothing,
            dropped_update_is_all_or_nothing,
            dropped_update_from_is_all_or_nothing,
            dropped_touch_is_all_or_nothing,
            dropped_cycle_is_all_or_nothing,
            dropped_delete_is_all_or_nothing,
            dropped_login_is_all_or_nothing,
            dropped_revoke_is_all_or_nothing,
            dropped_rotate_is_all_or_nothing,
        ]);
    };
}

/// The most polls an operation gets before the checks stop dropping it.
/// Drop points after that are not checked.
pub const MAX_POLLS: usize = 64;

/// How many times a state that is neither "before" nor "after" is read
/// again before it counts as stable, and the pause between reads: ten
/// seconds in all, far more than a spawned task needs to finish a step.
const SETTLE_CHECKS: usize = 1_000;
const SETTLE_PAUSE: Duration = Duration::from_millis(10);

/// `create` dropped after any number of polls stores the record whole or
/// not at all.
pub async fn dropped_create_is_all_or_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    check_dropped(harness, Operation::Create).await
}

/// `update` dropped after any number of polls applies the change set
/// whole (data, version and deadlines) or not at all.
pub async fn dropped_update_is_all_or_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    check_dropped(harness, Operation::Update).await
}

/// `update_from` dropped after any number of polls applies the change set
/// whole or not at all.
pub async fn dropped_update_from_is_all_or_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    check_dropped(harness, Operation::UpdateFrom).await
}

/// `touch` dropped after any number of polls moves the idle deadline or
/// leaves the record as it was.
pub async fn dropped_touch_is_all_or_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    check_dropped(harness, Operation::Touch).await
}

/// `cycle` dropped after any number of polls leaves either the old session
/// live with its data and nothing under the new key, or nothing under the
/// old key and the data, with the changes, under the new one.
pub async fn dropped_cycle_is_all_or_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    check_dropped(harness, Operation::Cycle).await
}

/// `delete` dropped after any number of polls deletes the record or leaves
/// it as it was.
pub async fn dropped_delete_is_all_or_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    check_dropped(harness, Operation::Delete).await
}

/// `login` dropped after any number of polls leaves either the old
/// session as it was and nothing under the new key, or the session logged
/// in under the new key only.
pub async fn dropped_login_is_all_or_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    if !has_accounts(&*harness.storage()).await? {
        return Ok(());
    }
    check_dropped(harness, Operation::Login).await
}

/// `revoke` of one session dropped after any number of polls ends it or
/// leaves it as it was.
pub async fn dropped_revoke_is_all_or_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    if !has_accounts(&*harness.storage()).await? {
        return Ok(());
    }
    check_dropped(harness, Operation::Revoke).await
}

/// `rotate` dropped after any number of polls leaves either the record
/// under the old key and nothing under the new one, or the record under
/// the new key and a forward under the old one.
pub async fn dropped_rotate_is_all_or_nothing<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    if !harness.storage().capabilities().rotation {
        return Ok(());
    }
    check_dropped(harness, Operation::Rotate).await
}

/// The operations the checks drop.
#[derive(Clone, Copy)]
enum Operation {
    Create,
    Update,
    UpdateFrom,
    Touch,
    Cycle,
    Delete,
    Login,
    Revoke,
    Rotate,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::UpdateFrom => "update_from",
            Self::Touch => "touch",
            Self::Cycle => "cycle",
            Self::Delete => "delete",
            Self::Login => "login",
            Self::Revoke => "revoke",
            Self::Rotate => "rotate",
        })
    }
}

/// What every run of an operation is given, so that every run to
/// completion leaves the same state.
struct Inputs {
    now: Timestamp,
    /// The record `create` stores.
    record: Record,
    /// The changes `update`, `update_from` and `cycle` apply: a key set, a
    /// key removed, a key added.
    changes: ChangeSet,
    /// Deadlines a minute later than those of the stored record.
    later: Deadlines,
    /// The login of `login` and the user whose sessions `revoke` ends: the
    /// same user in every run, so that every run leaves the same records.
    login: Login,
}

impl Inputs {
    fn new(now: Timestamp) -> Result<Self, Failure> {
        let mut changes = ChangeSet::new();
        changes.insert("a", int(10)?);
        changes.remove("b");
        changes.insert("c", int(3)?);
        Ok(Self {
            now,
            record: Record::new(ints(&[("a", 1), ("b", 2)])?, now, deadlines(now)),
            changes,
            later: deadlines(now.saturating_add(Duration::from_secs(60))),
            login: login_of(user()?),
        })
    }
}

impl Operation {
    /// Fresh keys for one run, `[key]` or `[old, new]` for a cycle, with
    /// `inputs.record` stored under the first, except for `create`.
    async fn prepare(
        self,
        storage: &dyn SessionStorage,
        inputs: &Inputs,
    ) -> Result<Vec<SessionKey>, Failure> {
        match self {
            Self::Create => return Ok(vec![fresh_key()?]),
            Self::Revoke => {
                let key = log_in_from(storage, None, &inputs.login, inputs.now).await?;
                return Ok(vec![key]);
            }
            _ => {}
        }
        let record = &inputs.record;
        let key = create_with(storage, record.data.clone(), record.deadlines, inputs.now).await?;
        Ok(match self {
            Self::Cycle | Self::Login | Self::Rotate => vec![key, fresh_key()?],
            _ => vec![key],
        })
    }

    /// One run, its outcome dropped: the state it leaves is what counts.
    fn run<'a>(
        self,
        storage: &'a dyn SessionStorage,
        keys: &'a [SessionKey],
        inputs: &'a Inputs,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>> {
        let Inputs {
            now,
            record,
            changes,
            later,
            login,
        } = inputs;
        let (now, later) = (*now, *later);
        Box::pin(async move {
            let key = &keys[0];
            match self {
                Self::Create => storage.create(key, record, now).await.map(drop),
                Self::Update => storage.update(key, changes, later, now).await.map(drop),
                // The stored record is `record`, as a caller would have
                // loaded it.
                Self::UpdateFrom => storage
                    .update_from(key, record, changes, later, now)
                    .await
                    .map(drop),
                Self::Touch => storage.touch(key, later.idle(), now).await.map(drop),
                Self::Cycle => storage
                    .cycle(key, &keys[1], changes, later, now)
                    .await
                    .map(drop),
                Self::Delete => storage.delete(key).await,
                Self::Login => storage
                    .login(Some(key), &keys[1], changes, later, login, now)
                    .await
                    .map(drop),
                Self::Revoke => {
                    let which = Revoke::One(SessionHandle::of(key));
                    storage.revoke(&login.user(), &which, now).await.map(drop)
                }
                Self::Rotate => {
                    let end = now.saturating_add(Duration::from_secs(60));
                    storage.rotate(key, &keys[1], end, now).await.map(drop)
                }
            }
        })
    }
}

/// What is stored under one key: what loads, and whether anything is
/// there at all.
#[derive(Debug, PartialEq)]
struct Held {
    /// The loaded record, or the error loading it gave.
    loaded: Result<Option<Record>, String>,
    stored: Result<bool, String>,
}

/// What is stored under each key of a run, in order.
type State = Vec<Held>;

async fn state<H: Harness + ?Sized>(
    harness: &H,
    storage: &dyn SessionStorage,
    keys: &[SessionKey],
    now: Timestamp,
) -> State {
    let mut state = Vec::with_capacity(keys.len());
    for key in keys {
        let loaded = storage.load(key, now).await.map_err(|e| e.to_string());
        let stored = harness.raw_exists(key).await.map_err(|e| e.to_string());
        state.push(Held { loaded, stored });
    }
    state
}

/// The states a run may leave.
struct Allowed {
    before: State,
    after: State,
}

impl Allowed {
    /// Reads the state under `keys` until it is one of the allowed ones,
    /// and fails if it stays neither.
    async fn judge<H: Harness + ?Sized>(
        &self,
        harness: &H,
        storage: &dyn SessionStorage,
        keys: &[SessionKey],
        now: Timestamp,
    ) -> Result<(), State> {
        let mut current = state(harness, storage, keys, now).await;
        for _ in 0..SETTLE_CHECKS {
            if current == self.before || current == self.after {
                return Ok(());
            }
            tokio::time::sleep(SETTLE_PAUSE).await;
            current = state(harness, storage, keys, now).await;
        }
        Err(current)
    }

    fn failure(&self, operation: Operation, polls: usize, left: &State) -> Failure {
        Failure::new(format!(
            "{operation} dropped after {polls} polls left {left:?}, which is neither the \
             state before it ({:?}) nor the state after it ({:?})",
            self.before, self.after
        ))
    }
}

/// Drops `operation` after 1, 2, ... polls until it completes, judging the
/// state each drop leaves.
async fn check_dropped<H: Harness + ?Sized>(
    harness: &H,
    operation: Operation,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let storage = &*storage;
    let inputs = Inputs::new(Timestamp::now())?;
    let now = inputs.now;
    let allowed = completed_run(harness, storage, operation, &inputs).await?;

    let mut dropped = Vec::new();
    for polls in 1..=MAX_POLLS {
        let keys = operation.prepare(storage, &inputs).await?;
        let run = operation.run(storage, &keys, &inputs);
        if let Some(completed) = poll_at_most(run, polls).await {
            completed?;
            let left = settled(harness, storage, &keys, now).await;
            ensure_eq!(
                left,
                allowed.after,
                "state after {operation} completed within {polls} polls"
            );
            break;
        }
        let judged = allowed.judge(harness, storage, &keys, now).await;
        judged.map_err(|left| allowed.failure(operation, polls, &left))?;
        dropped.push((polls, keys));
    }
    // A spawned task may have changed a state since it was judged.
    for (polls, keys) in dropped {
        let judged = allowed.judge(harness, storage, &keys, now).await;
        judged.map_err(|left| allowed.failure(operation, polls, &left))?;
    }
    Ok(())
}

/// Runs `operation` to completion on keys of its own: the states before and
/// after it, which must differ.
async fn completed_run<H: Harness + ?Sized>(
    harness: &H,
    storage: &dyn SessionStorage,
    operation: Operation,
    inputs: &Inputs,
) -> Result<Allowed, Failure> {
    let keys = operation.prepare(storage, inputs).await?;
    let before = state(harness, storage, &keys, inputs.now).await;
    operation.run(storage, &keys, inputs).await?;
    let after = settled(harness, storage, &keys, inputs.now).await;
    ensure!(
        after != before,
        "{operation} run to completion changed nothing: {after:?}"
    );
    Ok(Allowed { before, after })
}

/// Reads of the same state in a row that make it settled.
const SETTLED_READS: usize = 20;

/// The state under `keys` once it stops changing: a store may finish an
/// operation's cleanup (deleting a record that no longer loads) in a task
/// after the call returned, which changes what is stored but not what
/// loads.
async fn settled<H: Harness + ?Sized>(
    harness: &H,
    storage: &dyn SessionStorage,
    keys: &[SessionKey],
    now: Timestamp,
) -> State {
    let mut current = state(harness, storage, keys, now).await;
    let mut same = 0;
    for _ in 0..SETTLE_CHECKS {
        tokio::time::sleep(SETTLE_PAUSE).await;
        let next = state(harness, storage, keys, now).await;
        same = if next == current { same + 1 } else { 0 };
        current = next;
        if same == SETTLED_READS {
            break;
        }
    }
    current
}

/// Polls `future` at most `polls` times: its output if it completed, or
/// `None` once it has been dropped part-way.
async fn poll_at_most<F: Future + Unpin>(mut future: F, polls: usize) -> Option<F::Output> {
    let mut polled = 0;
    std::future::poll_fn(|context| {
        polled += 1;
        match Pin::new(&mut future).poll(context) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending if polled >= polls => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
