//! Concurrent requests to one session: every write is applied to the record
//! as it is at that moment, never to a stale copy.
//!
//! Each test forces the contested interleaving: every task reads before any
//! task writes (a barrier between the two), on a multi-thread runtime.

use std::sync::Arc;

use tokio::sync::Barrier;
use tokio::task::JoinHandle;

use super::fixtures::{
    Shared, create, deadlines, fresh_key, int, ints, load_live, require_multi_thread, update,
};
use super::{Failure, Harness};
use crate::{
    ChangeSet, CreateOutcome, Record, SessionData, SessionKey, Timestamp, UpdateOutcome, Value,
};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_concurrency {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            concurrent_updates_keep_every_key,
            concurrent_creates_have_one_winner,
            concurrent_conditioned_increments,
        ]);
    };
}

/// Number of concurrent updates in [`concurrent_updates_keep_every_key`].
pub const CONCURRENT_WRITERS: usize = 100;
/// Number of concurrent creates in [`concurrent_creates_have_one_winner`].
pub const CONCURRENT_CREATES: usize = 8;
/// Number of concurrent increments in [`concurrent_conditioned_increments`].
pub const CONCURRENT_INCREMENTS: usize = 4;
/// Attempts each increment gets before it gives up.
const INCREMENT_ATTEMPTS: usize = 2 * CONCURRENT_INCREMENTS;

/// Runs `count` tasks that each read, wait until all have read, then write;
/// returns what each task's write returned.
pub(super) async fn read_then_write<T, R, RF, W, WF>(
    count: usize,
    storage: &Shared,
    read: R,
    write: W,
) -> Result<Vec<T>, Failure>
where
    T: Send + 'static,
    R: Fn(Shared, usize) -> RF,
    RF: Future<Output = Result<Option<Value>, Failure>> + Send + 'static,
    W: Fn(Shared, usize, Option<Value>) -> WF + Send + Sync + 'static,
    WF: Future<Output = Result<T, Failure>> + Send + 'static,
{
    require_multi_thread()?;
    let barrier = Arc::new(Barrier::new(count));
    let write = Arc::new(write);
    let tasks: Vec<JoinHandle<Result<T, Failure>>> = (0..count)
        .map(|index| {
            let read = read(Arc::clone(storage), index);
            let (storage, barrier, write) = (
                Arc::clone(storage),
                Arc::clone(&barrier),
                Arc::clone(&write),
            );
            tokio::spawn(async move {
                let read = read.await;
                // Wait even after a failed read, so no other task hangs.
                barrier.wait().await;
                write(storage, index, read?).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(count);
    for task in tasks {
        results.push(task.await??);
    }
    Ok(results)
}

/// The key each writer sets.
pub(super) fn writer_key(index: usize) -> String {
    format!("writer-{index}")
}

/// 100 requests load the same session, then each sets its own key: all 100
/// keys are there afterwards.
pub async fn concurrent_updates_keep_every_key<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("base", 0)])?, now).await?;
    read_then_write(
        CONCURRENT_WRITERS,
        &storage,
        move |storage, _| async move {
            load_live(&*storage, &key, now).await?;
            Ok(None)
        },
        move |storage, index, _| async move {
            let mut changes = ChangeSet::new();
            changes.insert(writer_key(index), Value::encode(&index)?);
            update(&*storage, &key, &changes, now).await
        },
    )
    .await?;

    let data = load_live(&*storage, &key, now).await?.data;
    let lost: Vec<usize> = (0..CONCURRENT_WRITERS)
        .filter(|index| data.get::<usize>(&writer_key(*index)).ok().flatten() != Some(*index))
        .collect();
    ensure!(
        lost.is_empty(),
        "{} of {CONCURRENT_WRITERS} concurrent writes were lost: {lost:?}",
        lost.len()
    );
    ensure!(
        data.contains("base"),
        "a concurrent write lost the key set at creation"
    );
    Ok(())
}

/// Several requests create the same key at once: exactly one succeeds, and
/// its record is the one stored.
pub async fn concurrent_creates_have_one_winner<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = fresh_key()?;
    let outcomes = read_then_write(
        CONCURRENT_CREATES,
        &storage,
        |_, _| async { Ok(None) },
        move |storage, index, _| async move {
            let mut data = SessionData::new();
            data.insert("creator", &index)?;
            Ok(storage
                .create(&key, &Record::new(data, now, deadlines(now)), now)
                .await?)
        },
    )
    .await?;
    let winners: Vec<usize> = (0..CONCURRENT_CREATES)
        .filter(|index| outcomes[*index] == CreateOutcome::Created)
        .collect();
    ensure_eq!(winners.len(), 1, "concurrent creates reported as created");
    let stored = load_live(&*storage, &key, now)
        .await?
        .data
        .get::<usize>("creator")?;
    ensure_eq!(stored, Some(winners[0]), "creator of the stored record");
    Ok(())
}

/// Four requests read a counter, then each writes counter + 1 conditioned on
/// what it read, retrying with the value a conflict reports: the counter ends
/// at exactly +4, and at least three conflicts were seen on the way.
pub async fn concurrent_conditioned_increments<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("n", 0)])?, now).await?;
    let conflicts = read_then_write(
        CONCURRENT_INCREMENTS,
        &storage,
        move |storage, _| async move {
            Ok(load_live(&*storage, &key, now)
                .await?
                .data
                .get_value("n")
                .cloned())
        },
        move |storage, _, read| async move { increment(&*storage, key, read, now).await },
    )
    .await?;

    let n = load_live(&*storage, &key, now)
        .await?
        .data
        .get::<i64>("n")?;
    ensure_eq!(
        n,
        Some(4),
        "counter after 4 concurrent conditioned increments"
    );
    let seen: usize = conflicts.iter().sum();
    ensure!(
        seen >= CONCURRENT_INCREMENTS - 1,
        "only {seen} conflicts for {CONCURRENT_INCREMENTS} increments of one value read by all"
    );
    Ok(())
}

/// Increments `n` from `read`, retrying on conflicts; returns how many
/// conflicts it met.
async fn increment(
    storage: &dyn crate::SessionStorage,
    key: SessionKey,
    mut read: Option<Value>,
    now: Timestamp,
) -> Result<usize, Failure> {
    for conflicts in 0..INCREMENT_ATTEMPTS {
        let current = read
            .as_ref()
            .map(Value::decode::<i64>)
            .transpose()?
            .unwrap_or(0);
        let mut changes = ChangeSet::new();
        changes.require("n", read.clone());
        changes.insert("n", int(current + 1)?);
        match storage.update(&key, &changes, deadlines(now), now).await? {
            UpdateOutcome::Updated { .. } => return Ok(conflicts),
            UpdateOutcome::Conflict { current } => read = current.value("n").cloned(),
            UpdateOutcome::Gone => return Err(Failure::new("the counter's session is gone")),
        }
    }
    Err(Failure::new(format!(
        "no increment succeeded in {INCREMENT_ATTEMPTS} attempts"
    )))
}
