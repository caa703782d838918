//! Eviction: a full cache keeps taking new sessions.

use std::time::Duration;

use moka::policy::EvictionPolicy;
use session_core::{
    CreateOutcome, Deadlines, Record, SessionData, SessionId, SessionKey, SessionStorage, Timestamp,
};

use crate::MemoryStorage;

const CAPACITY: u64 = 16;

/// Fills a cache of `CAPACITY` sessions, reads each of them a few times,
/// then creates one more session; returns the storage and the new key.
async fn overfill(storage: MemoryStorage) -> (MemoryStorage, SessionKey) {
    let now = Timestamp::now();
    let deadlines = Deadlines::new(
        now.saturating_add(Duration::from_secs(600)),
        now.saturating_add(Duration::from_secs(600)),
    );
    let record = Record::new(SessionData::new(), now, deadlines);
    let mut keys = Vec::new();
    for _ in 0..CAPACITY {
        let key = SessionId::generate().unwrap().key();
        assert_eq!(
            storage.create(&key, &record, now).await.unwrap(),
            CreateOutcome::Created
        );
        keys.push(key);
    }
    storage.cache.run_pending_tasks();
    for _ in 0..3 {
        for key in &keys {
            assert!(storage.load(key, now).await.unwrap().is_some());
        }
    }
    storage.cache.run_pending_tasks();

    let newcomer = SessionId::generate().unwrap().key();
    let outcome = storage.create(&newcomer, &record, now).await.unwrap();
    assert_eq!(outcome, CreateOutcome::Created);
    storage.cache.run_pending_tasks();
    (storage, newcomer)
}

#[tokio::test]
async fn a_full_cache_keeps_a_new_session() {
    let storage = MemoryStorage::builder().max_sessions(CAPACITY).build();
    let (storage, newcomer) = overfill(storage).await;
    assert!(
        storage
            .load(&newcomer, Timestamp::now())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(storage.cache.entry_count(), CAPACITY);
}

/// The test above is not vacuous: with moka's default admission policy the
/// same sequence loses the new session.
#[tokio::test]
async fn tiny_lfu_would_refuse_the_new_session() {
    let mut builder = MemoryStorage::builder().max_sessions(CAPACITY);
    builder.eviction = EvictionPolicy::tiny_lfu();
    let (storage, newcomer) = overfill(builder.build()).await;
    assert!(
        storage
            .load(&newcomer, Timestamp::now())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn debug_shows_sizes_only() {
    let shown = format!("{:?}", MemoryStorage::builder().max_sessions(7).build());
    assert!(shown.contains("max_sessions: Some(7)"), "{shown}");
}
