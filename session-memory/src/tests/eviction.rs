//! Eviction: a full cache keeps taking new sessions.

use moka::policy::EvictionPolicy;
use session_core::{SessionKey, Timestamp};

use super::{in_use, loads, one_shot, record};
use crate::MemoryStorage;
use crate::segments::Segment;

const CAPACITY: u64 = 16;

/// Fills a cache of `CAPACITY` sessions (its protected share with sessions
/// in use, its probation share with one-shot sessions, each read a few
/// times), then creates one more session; returns the storage and the new
/// key.
async fn overfill(storage: MemoryStorage) -> (MemoryStorage, SessionKey) {
    let now = Timestamp::now();
    let record = record(now, 0);
    let probation = CAPACITY / 5;
    for _ in probation..CAPACITY {
        in_use(&storage, &record, now).await;
    }
    let mut one_shots = Vec::new();
    for _ in 0..probation {
        one_shots.push(one_shot(&storage, &record, now).await);
    }
    storage.segments.run_pending_tasks();
    // Reads in their own segment (a load would promote them) raise the
    // frequency TinyLFU weighs a newcomer against.
    let segment = storage.segments.segment(Segment::Probation);
    for _ in 0..3 {
        for key in &one_shots {
            assert!(segment.get(key).is_some());
        }
    }
    storage.segments.run_pending_tasks();

    let newcomer = one_shot(&storage, &record, now).await;
    storage.segments.run_pending_tasks();
    (storage, newcomer)
}

#[tokio::test]
async fn a_full_cache_keeps_a_new_session() {
    let storage = MemoryStorage::builder().max_sessions(CAPACITY).build();
    let (storage, newcomer) = overfill(storage).await;
    assert_eq!(storage.segments.entry_count(), CAPACITY);
    assert!(loads(&storage, &newcomer, Timestamp::now()).await);
}

/// The test above is not vacuous: with moka's default admission policy in
/// the segments the same sequence loses the new session.
#[tokio::test]
async fn tiny_lfu_would_refuse_the_new_session() {
    let mut builder = MemoryStorage::builder().max_sessions(CAPACITY);
    builder.eviction = EvictionPolicy::tiny_lfu();
    let (storage, newcomer) = overfill(builder.build()).await;
    assert!(!loads(&storage, &newcomer, Timestamp::now()).await);
}
