//! SQLite's batches, forced: another connection holds the write lock while
//! requests queue, so the batch writer's first write waits alone and the
//! rest queue behind it and are written together once the lock is free.
//! What shows they were: the WAL, which gains frames per commit, and the
//! outcomes each request gets. (Loads: `sqlite_loads.rs`.)

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::time::Duration;

use session_core::{
    ChangeSet, CreateOutcome, Deadlines, Error, Record, SessionData, SessionId, SessionKey,
    SessionStorage, Timestamp, UpdateOutcome,
};
use session_sqlite::SqliteStorage;
use sqlx::{Connection, SqliteConnection};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// How long the queue fills while the lock is held: far longer than the
/// writes take to queue, far shorter than the busy timeout.
const QUEUEING: Duration = Duration::from_millis(200);

struct Setup {
    _dir: TempDir,
    storage: SqliteStorage,
    url: String,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let storage = SqliteStorage::open(&url).await.unwrap();
    Setup {
        _dir: dir,
        storage,
        url,
    }
}

/// A connection of its own holding SQLite's write lock.
async fn hold_write_lock(url: &str) -> SqliteConnection {
    let mut holder = SqliteConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    holder
}

async fn release(mut holder: SqliteConnection) {
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
}

/// Frames in the WAL, after emptying it when `reset`.
async fn wal_frames(storage: &SqliteStorage, reset: bool) -> i64 {
    let mode = if reset { "TRUNCATE" } else { "PASSIVE" };
    let (_, frames, _): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "PRAGMA wal_checkpoint({mode})"
    )))
    .fetch_one(storage.pool())
    .await
    .unwrap();
    frames
}

/// Empties the WAL before a measurement. A checkpoint cannot truncate it
/// while another connection still reads from it (the storage's own, just
/// after opening), so it is tried until it can.
async fn empty_wal(storage: &SqliteStorage) {
    for _ in 0..100 {
        if wal_frames(storage, true).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the WAL never emptied");
}

fn record(now: Timestamp, version: u64) -> Record {
    let mut data = SessionData::new();
    data.insert("n", &0).unwrap();
    let end = now.saturating_add(Duration::from_secs(600));
    Record::from_parts(data, now, Deadlines::new(end, end), version)
}

fn create(storage: &SqliteStorage, record: Record) -> JoinHandle<Result<CreateOutcome, Error>> {
    let storage = storage.clone();
    tokio::spawn(async move {
        let key = SessionId::generate().unwrap().key();
        let now = record.created_at;
        storage.create(&key, &record, now).await
    })
}

/// Creates queued behind a held lock are committed together: a handful of
/// WAL frames where one commit each would have written two or more apiece.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_creates_share_one_commit() {
    let Setup { _dir, storage, url } = setup().await;
    empty_wal(&storage).await;
    let now = Timestamp::now();
    let holder = hold_write_lock(&url).await;
    let creates: Vec<_> = (0..32).map(|_| create(&storage, record(now, 1))).collect();
    tokio::time::sleep(QUEUEING).await;
    release(holder).await;
    for create in creates {
        assert_eq!(create.await.unwrap().unwrap(), CreateOutcome::Created);
    }
    let frames = wal_frames(&storage, false).await;
    assert!(frames < 16, "32 creates wrote {frames} WAL frames");
}

/// Updates from loaded records queued together each get their own
/// outcome; two of one session in one batch are written one after the
/// other, the later one (its loaded record now stale) by reading again, so
/// neither change is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_updates_get_their_own_outcomes() {
    let Setup { _dir, storage, url } = setup().await;
    let now = Timestamp::now();
    let mut keys = Vec::new();
    for _ in 0..8 {
        let key = SessionId::generate().unwrap().key();
        let created = storage.create(&key, &record(now, 1), now).await.unwrap();
        assert_eq!(created, CreateOutcome::Created);
        keys.push(key);
    }
    let holder = hold_write_lock(&url).await;
    let mut updates = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        updates.push(update(&storage, *key, "n", index));
    }
    // The first session again, from the same (soon stale) record.
    updates.push(update(&storage, keys[0], "m", 99));
    tokio::time::sleep(QUEUEING).await;
    release(holder).await;
    let mut outcomes = Vec::new();
    for update in updates {
        outcomes.push(update.await);
    }
    let versions: Vec<_> = outcomes
        .into_iter()
        .map(|outcome| match outcome.unwrap().unwrap() {
            UpdateOutcome::Updated { version } => version,
            other => panic!("{other:?}"),
        })
        .collect();
    // The first session's two updates queued in either order.
    let mut first_two = [versions[0], versions[8]];
    first_two.sort_unstable();
    assert_eq!(first_two, [2, 3]);
    assert!(versions[1..8].iter().all(|version| *version == 2));
    let first = storage.load(&keys[0], now).await.unwrap().unwrap();
    assert_eq!(first.data.get::<usize>("n").unwrap(), Some(0));
    assert_eq!(first.data.get::<usize>("m").unwrap(), Some(99));
    for (index, key) in keys.iter().enumerate().skip(1) {
        let stored = storage.load(key, now).await.unwrap().unwrap();
        assert_eq!(stored.data.get::<usize>("n").unwrap(), Some(index));
        assert_eq!(stored.version, 2);
    }
}

fn update(
    storage: &SqliteStorage,
    key: SessionKey,
    name: &'static str,
    value: usize,
) -> JoinHandle<Result<UpdateOutcome, Error>> {
    let storage = storage.clone();
    tokio::spawn(async move {
        let now = Timestamp::now();
        let loaded = storage.load(&key, now).await?.unwrap();
        let mut changes = ChangeSet::new();
        changes.insert(name, session_core::Value::encode(&value).unwrap());
        let deadlines = loaded.deadlines;
        storage
            .update_from(&key, &loaded, &changes, deadlines, now)
            .await
    })
}

/// A batch that fails fails whole: every request in it gets the error, and
/// none of its rows is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_writes_nothing_and_fails_every_request() {
    let Setup { _dir, storage, url } = setup().await;
    // Refuses any row at version 99, as a full disk would refuse all.
    sqlx::query(
        "CREATE TRIGGER refuse BEFORE INSERT ON sessions WHEN NEW.version = 99
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(storage.pool())
    .await
    .unwrap();
    let now = Timestamp::now();
    let holder = hold_write_lock(&url).await;
    // Alone in the writer's first batch, waiting for the lock.
    let alone = create(&storage, record(now, 1));
    tokio::time::sleep(QUEUEING / 4).await;
    let mut batch: Vec<_> = (0..6).map(|_| create(&storage, record(now, 1))).collect();
    batch.push(create(&storage, record(now, 99)));
    tokio::time::sleep(QUEUEING).await;
    release(holder).await;
    assert_eq!(alone.await.unwrap().unwrap(), CreateOutcome::Created);
    for create in batch {
        let outcome = create.await.unwrap();
        assert!(matches!(outcome, Err(Error::Backend(_))), "{outcome:?}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(storage.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1, "rows of the failed batch were written");
}
