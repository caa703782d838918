//! SQLite's batched loads, forced: loads are queued all at once on a
//! single-threaded runtime, before the loader runs. What shows they were
//! read together is sqlx's log of the statements it ran, captured for the
//! whole process (sqlx logs from its worker threads): hence a test binary
//! of its own, with one test.

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::task::Poll;
use std::time::Duration;

use session_core::{
    CreateOutcome, Deadlines, Error, Record, SessionData, SessionId, SessionStorage, Timestamp,
};
use session_sqlite::SqliteStorage;
use session_tests::trace::capture_process;
use tokio::task::JoinSet;

fn record(now: Timestamp, version: u64) -> Record {
    let mut data = SessionData::new();
    data.insert("n", &version).unwrap();
    let end = now.saturating_add(Duration::from_secs(600));
    Record::from_parts(data, now, Deadlines::new(end, end), version)
}

/// Loads of 40 keys (32 sessions, one of them corrupt, and 8 unknown keys)
/// started at once while another load is under way (started, and not
/// polled again until they are done), so that none of them is alone: the
/// loader reads all 40 with two statements (pieces of 32 and 8 keys), not
/// 40. Each load gets its own key's record, the corrupt one a decode error
/// of its own and the others theirs regardless.
#[test]
fn queued_loads_share_a_statement_and_keep_their_own_outcomes() {
    let log = capture_process();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(load_forty());
    // Only the loader's statements select by a list of keys.
    let statements = log().matches("WHERE key IN (").count();
    assert_eq!(statements, 2, "40 loads took {statements} statements");
}

/// Creates 32 sessions and damages one, then loads them and 8 unknown keys
/// at once.
async fn load_forty() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let storage = SqliteStorage::open(&url).await.unwrap();
    let now = Timestamp::now();
    let mut keys = Vec::new();
    for version in 1..=32 {
        let key = SessionId::generate().unwrap().key();
        let created = storage.create(&key, &record(now, version), now).await;
        assert_eq!(created.unwrap(), CreateOutcome::Created);
        keys.push((key, Some(version)));
    }
    let (corrupt, _) = keys[0];
    sqlx::query("UPDATE sessions SET data = x'ff' WHERE key = ?1")
        .bind(corrupt.as_bytes().as_slice())
        .execute(storage.pool())
        .await
        .unwrap();
    keys.extend((0..8).map(|_| (SessionId::generate().unwrap().key(), None)));
    // Under way, alone, through the pool: every load after it queues.
    let held = keys[1].0;
    let mut under_way = storage.load(&held, now);
    let pending = std::future::poll_fn(|context| Poll::Ready(under_way.as_mut().poll(context)));
    assert!(pending.await.is_pending());
    let mut loads = JoinSet::new();
    for (key, version) in keys {
        let storage = storage.clone();
        loads.spawn(async move { (key, storage.load(&key, now).await, version) });
    }
    while let Some(loaded) = loads.join_next().await {
        let (key, loaded, version) = loaded.unwrap();
        if key == corrupt {
            assert!(matches!(loaded, Err(Error::Decode(_))), "{loaded:?}");
        } else {
            assert_eq!(loaded.unwrap().map(|record| record.version), version);
        }
    }
    assert_eq!(under_way.await.unwrap().unwrap().version, 2);
}
