//! A promotion moves what is stored now, never a copy a write replaced.

use std::sync::{Arc, Barrier};
use std::thread;

use session_core::{ChangeSet, SessionKey, SessionStorage, Timestamp, Value};
use tokio::runtime::Handle;

use super::floods::{SESSIONS, flood};
use super::{loads, one_shot, record};
use crate::MemoryStorage;

/// Sets `n` to 7 in the session under `key`.
async fn write_seven(storage: &MemoryStorage, key: &SessionKey, now: Timestamp) {
    let mut changes = ChangeSet::new();
    changes.insert("n", Value::encode(&7_u8).unwrap());
    let deadlines = record(now, 0).deadlines;
    let _ = storage.update(key, &changes, deadlines, now).await.unwrap();
}

/// The value of `n` in the session under `key`.
async fn seven(storage: &MemoryStorage, key: &SessionKey, now: Timestamp) -> Option<u8> {
    let loaded = storage.load(key, now).await.unwrap().unwrap();
    loaded.data.get::<u8>("n").unwrap()
}

#[tokio::test]
async fn promotion_keeps_the_latest_write() {
    let storage = MemoryStorage::builder().max_sessions(SESSIONS).build();
    let now = Timestamp::now();
    let key = one_shot(&storage, &record(now, 0), now).await;
    write_seven(&storage, &key, now).await;
    assert!(loads(&storage, &key, now).await);
    flood(&storage, now).await;
    assert_eq!(seven(&storage, &key, now).await, Some(7));
}

/// The first load of a session and a write to it, at once, many times. Not
/// a forced interleaving (the window is inside `load`), but with the
/// promotion moved out of the key's lock this failed within a few hundred
/// rounds in each of several runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_racing_a_write_keeps_the_write() {
    let storage = MemoryStorage::new();
    let now = Timestamp::now();
    for _ in 0..1_000 {
        let key = one_shot(&storage, &record(now, 0), now).await;
        let start = Arc::new(Barrier::new(2));
        let racers = [true, false].map(|loads| {
            let (storage, start, runtime) =
                (storage.clone(), Arc::clone(&start), Handle::current());
            thread::spawn(move || {
                start.wait();
                runtime.block_on(async {
                    if loads {
                        let _ = storage.load(&key, now).await.unwrap();
                    } else {
                        write_seven(&storage, &key, now).await;
                    }
                });
            })
        });
        for racer in racers {
            racer.join().unwrap();
        }
        assert_eq!(seven(&storage, &key, now).await, Some(7));
    }
}
