//! Shared set-up for the conformance tests.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::Failure;
use crate::{
    CreateOutcome, Deadlines, Record, SessionData, SessionId, SessionKey, SessionStorage,
    Timestamp, Value,
};

/// Idle timeout of the records the tests create.
pub(super) const IDLE: Duration = Duration::from_secs(30 * 60);
/// Absolute timeout of the records the tests create.
pub(super) const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
/// One millisecond: the resolution of [`Timestamp`].
pub(super) const MS: Duration = Duration::from_millis(1);

/// A key nobody else uses.
pub(super) fn fresh_key() -> Result<SessionKey, Failure> {
    Ok(SessionId::generate()?.key())
}

/// The default deadlines for a record created at `now`.
pub(super) fn deadlines(now: Timestamp) -> Deadlines {
    Deadlines::new(now.saturating_add(IDLE), now.saturating_add(ABSOLUTE))
}

/// An encoded integer value.
pub(super) fn int(n: i64) -> Result<Value, Failure> {
    Ok(Value::encode(&n)?)
}

/// Data holding the given integers.
pub(super) fn ints(pairs: &[(&str, i64)]) -> Result<SessionData, Failure> {
    pairs
        .iter()
        .map(|(key, n)| Ok(((*key).to_owned(), int(*n)?)))
        .collect()
}

/// The integer under `key`, if any.
pub(super) fn int_at(data: &SessionData, key: &str) -> Result<Option<i64>, Failure> {
    Ok(data.get(key)?)
}

/// Creates a record with `data` and `deadlines` under a fresh key, checking
/// that storage reports it created.
pub(super) async fn create_with(
    storage: &dyn SessionStorage,
    data: SessionData,
    deadlines: Deadlines,
    now: Timestamp,
) -> Result<SessionKey, Failure> {
    let key = fresh_key()?;
    let outcome = storage
        .create(&key, &Record::new(data, now, deadlines), now)
        .await?;
    ensure_eq!(
        outcome,
        CreateOutcome::Created,
        "creating a record under a fresh key"
    );
    Ok(key)
}

/// Creates a record with the default deadlines under a fresh key.
pub(super) async fn create(
    storage: &dyn SessionStorage,
    data: SessionData,
    now: Timestamp,
) -> Result<SessionKey, Failure> {
    create_with(storage, data, deadlines(now), now).await
}

/// Loads a record that must be live.
pub(super) async fn load_live(
    storage: &dyn SessionStorage,
    key: &SessionKey,
    now: Timestamp,
) -> Result<Record, Failure> {
    storage
        .load(key, now)
        .await?
        .ok_or_else(|| Failure::new("a live record did not load"))
}

/// Fails unless the test runs on a multi-thread runtime, where concurrent
/// tasks really run in parallel.
pub(super) fn require_multi_thread() -> Result<(), Failure> {
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => Ok(()),
        _ => Err(Failure::new(
            "concurrency tests need a multi-thread tokio runtime \
             (#[tokio::test(flavor = \"multi_thread\")])",
        )),
    }
}

/// Shared handle to the storage for spawned tasks.
pub(super) type Shared = Arc<dyn SessionStorage>;

/// Applies `changes` with the default deadlines, which must succeed; returns
/// the new version.
pub(super) async fn update(
    storage: &dyn SessionStorage,
    key: &SessionKey,
    changes: &crate::ChangeSet,
    now: Timestamp,
) -> Result<u64, Failure> {
    match storage.update(key, changes, deadlines(now), now).await? {
        crate::UpdateOutcome::Updated { version } => Ok(version),
        other => Err(Failure::new(format!("update of a live record: {other:?}"))),
    }
}
