//! Concurrent clients on one session, on every backend, checked against
//! what any serial order of their writes allows: writes to distinct keys
//! commute (every client's last value stays), a contested key ends at some
//! client's last value, and conditioned increments lose nothing.
//!
//! The clients start together behind a barrier, and in the increment test
//! all of them read before any of them writes, so the contested path (a
//! conflict, then a retry) is taken on every run; the test asserts it was.
//! Clients alternate between two storages on the same data (two pools on
//! one SQLite file, two Redis clients), as two server processes would.

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use session_core::{
    ChangeSet, CreateOutcome, Deadlines, Record, SessionData, SessionId, SessionKey,
    SessionStorage, Timestamp, UpdateOutcome, Value,
};
use session_memory::MemoryStorage;
use session_sqlite::SqliteStorage;
use session_tests::redis_server::{Redis, storage as redis_storage, unique_prefix};
use tokio::sync::Barrier;

/// Concurrent clients per case.
const CLIENTS: usize = 4;

type Storage = Arc<dyn SessionStorage>;

/// Two storages on the same sessions; client `i` uses `[i % 2]`.
type Storages = [Storage; 2];

fn deadlines(now: Timestamp) -> Deadlines {
    Deadlines::new(
        now.saturating_add(Duration::from_secs(600)),
        now.saturating_add(Duration::from_secs(3600)),
    )
}

fn int(n: i64) -> Value {
    Value::encode(&n).unwrap()
}

async fn fresh_session(storage: &dyn SessionStorage) -> SessionKey {
    let key = SessionId::generate().unwrap().key();
    let now = Timestamp::now();
    let record = Record::new(SessionData::new(), now, deadlines(now));
    assert_eq!(
        storage.create(&key, &record, now).await.unwrap(),
        CreateOutcome::Created
    );
    key
}

/// One client's writes of `values` under `name`, in order, each through
/// `update_from` with the record it loaded at the start (stale once any
/// other client has written) or through `update`.
async fn write_all(
    storage: Storage,
    key: SessionKey,
    barrier: Arc<Barrier>,
    name: String,
    values: Vec<(i64, bool)>,
) {
    let loaded = storage.load(&key, Timestamp::now()).await.unwrap().unwrap();
    barrier.wait().await;
    for (value, with_hint) in values {
        let mut changes = ChangeSet::new();
        changes.insert(&name, int(value));
        let now = Timestamp::now();
        let outcome = if with_hint {
            storage
                .update_from(&key, &loaded, &changes, deadlines(now), now)
                .await
        } else {
            storage.update(&key, &changes, deadlines(now), now).await
        };
        assert!(
            matches!(outcome.unwrap(), UpdateOutcome::Updated { .. }),
            "write of {name}"
        );
    }
}

/// The stored data, decoded.
async fn stored(storage: &dyn SessionStorage, key: &SessionKey) -> Vec<(String, i64)> {
    let record = storage.load(key, Timestamp::now()).await.unwrap().unwrap();
    record
        .data
        .iter()
        .map(|(name, value)| (name.to_owned(), value.decode().unwrap()))
        .collect()
}

/// Makes a session and runs every client's `writes` on it at once, client
/// `i` writing under `name(i)`; returns the session's key.
async fn write_concurrently(
    storages: &Storages,
    writes: &[Vec<(i64, bool)>],
    name: impl Fn(usize) -> String,
) -> SessionKey {
    let key = fresh_session(&*storages[0]).await;
    let barrier = Arc::new(Barrier::new(writes.len()));
    let tasks: Vec<_> = writes
        .iter()
        .enumerate()
        .map(|(client, values)| {
            let storage = storages[client % 2].clone();
            let run = write_all(storage, key, barrier.clone(), name(client), values.clone());
            tokio::spawn(run)
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    key
}

/// Each client writes its own key: every client's last value stays.
async fn distinct_keys_commute(storages: Storages, writes: Vec<Vec<(i64, bool)>>) {
    let key = write_concurrently(&storages, &writes, |client| format!("c{client}")).await;
    let expected: Vec<(String, i64)> = writes
        .iter()
        .enumerate()
        .filter_map(|(client, values)| Some((format!("c{client}"), values.last()?.0)))
        .collect();
    assert_eq!(stored(&*storages[0], &key).await, expected);
}

/// Every client writes the same key: it ends at one client's last value.
async fn contested_key_is_a_last_write(storages: Storages, writes: Vec<Vec<(i64, bool)>>) {
    let key = write_concurrently(&storages, &writes, |_| "c".to_owned()).await;
    let finals: Vec<i64> = writes.iter().filter_map(|v| Some(v.last()?.0)).collect();
    let data = stored(&*storages[0], &key).await;
    let [(name, value)] = data.as_slice() else {
        panic!("one key expected: {data:?}");
    };
    assert_eq!(name, "c");
    assert!(
        finals.contains(value),
        "{value} is no client's last write: {finals:?}"
    );
}

/// Every client increments `n` `rounds` times, each conditioned on the value
/// it read and retried on conflict; all read before any writes.
async fn conditioned_increments_lose_nothing(storages: Storages, rounds: usize) {
    let key = fresh_session(&*storages[0]).await;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let conflicts = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let storage = storages[client % 2].clone();
            let (barrier, conflicts) = (barrier.clone(), conflicts.clone());
            tokio::spawn(async move {
                for round in 0..rounds {
                    let mut seen: Option<i64> = storage
                        .load(&key, Timestamp::now())
                        .await
                        .unwrap()
                        .unwrap()
                        .data
                        .get("n")
                        .unwrap();
                    if round == 0 {
                        barrier.wait().await;
                    }
                    loop {
                        let mut changes = ChangeSet::new();
                        changes.require("n", seen.map(int));
                        changes.insert("n", int(seen.unwrap_or(0) + 1));
                        let now = Timestamp::now();
                        match storage
                            .update(&key, &changes, deadlines(now), now)
                            .await
                            .unwrap()
                        {
                            UpdateOutcome::Updated { .. } => break,
                            UpdateOutcome::Conflict { current } => {
                                conflicts.fetch_add(1, Ordering::SeqCst);
                                seen = current.value("n").map(|v| v.decode().unwrap());
                            }
                            UpdateOutcome::Gone => panic!("the session vanished"),
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = i64::try_from(CLIENTS * rounds).unwrap();
    assert_eq!(stored(&*storages[0], &key).await, [("n".to_owned(), total)]);
    assert!(
        conflicts.load(Ordering::SeqCst) >= CLIENTS - 1,
        "the first round must conflict: all clients read the same value"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(CLIENTS)
        .enable_all()
        .build()
        .unwrap()
}

/// Each client's writes: 1 to 6 values, each with or without a hint.
fn writes() -> impl Strategy<Value = Vec<Vec<(i64, bool)>>> {
    prop::collection::vec(
        prop::collection::vec((any::<i64>(), any::<bool>()), 1..6),
        CLIENTS,
    )
}

/// A backend for one case.
enum Backend {
    Memory,
    Sqlite,
    Redis,
}

/// Runs `test` on two fresh storages of `backend` sharing their sessions:
/// one memory storage twice; two pools on one SQLite file; two Redis
/// clients on one prefix.
fn on<F, Fut>(backend: &Backend, redis: Option<&Redis>, test: F)
where
    F: FnOnce(Storages) -> Fut,
    Fut: Future<Output = ()>,
{
    runtime().block_on(async {
        match backend {
            Backend::Memory => {
                let storage: Storage = Arc::new(MemoryStorage::new());
                test([storage.clone(), storage]).await;
            }
            Backend::Sqlite => {
                let directory = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", directory.path().join("s.db").display());
                let first = SqliteStorage::open(&url).await.unwrap();
                let second = SqliteStorage::open(&url).await.unwrap();
                test([Arc::new(first), Arc::new(second)]).await;
            }
            Backend::Redis => {
                let url = redis.unwrap().url();
                let prefix = unique_prefix("interleavings");
                let client = || redis_storage(&url, &prefix, Duration::from_secs(5));
                test([Arc::new(client()), Arc::new(client())]).await;
            }
        }
    });
}

fn check_backend(backend: Backend) {
    let redis = match backend {
        Backend::Redis => match Redis::start() {
            Some(redis) => Some(redis),
            None => return,
        },
        _ => None,
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(16));
    let cases = (writes(), writes(), 1..4_usize);
    let result = runner.run(&cases, |(distinct, contested, rounds)| {
        on(&backend, redis.as_ref(), |s| {
            distinct_keys_commute(s, distinct)
        });
        on(&backend, redis.as_ref(), |s| {
            contested_key_is_a_last_write(s, contested)
        });
        on(&backend, redis.as_ref(), |s| {
            conditioned_increments_lose_nothing(s, rounds)
        });
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn memory_interleavings_match_a_serial_order() {
    check_backend(Backend::Memory);
}

#[test]
fn sqlite_interleavings_match_a_serial_order() {
    check_backend(Backend::Sqlite);
}

#[test]
fn redis_interleavings_match_a_serial_order() {
    check_backend(Backend::Redis);
}
