//! Unit tests, and the fixtures they share.

mod accounts;
mod bounds;
mod eviction;
mod floods;
mod promotion;
mod stored_size;

use std::time::Duration;

use session_core::{
    CreateOutcome, Deadlines, Record, SessionData, SessionId, SessionKey, SessionStorage, Timestamp,
};

use crate::MemoryStorage;
use crate::segments::Segment;

/// A record live for ten minutes from `now`, holding `bytes` bytes of data.
fn record(now: Timestamp, bytes: usize) -> Record {
    let deadlines = Deadlines::new(
        now.saturating_add(Duration::from_secs(600)),
        now.saturating_add(Duration::from_secs(600)),
    );
    let mut data = SessionData::new();
    data.insert("pad", &"x".repeat(bytes)).unwrap();
    Record::new(data, now, deadlines)
}

/// A fresh key.
fn key() -> SessionKey {
    SessionId::generate().unwrap().key()
}

/// A session seen once: created by a request whose cookie never comes back.
async fn one_shot(storage: &MemoryStorage, record: &Record, now: Timestamp) -> SessionKey {
    let key = key();
    let outcome = storage.create(&key, record, now).await.unwrap();
    assert_eq!(outcome, CreateOutcome::Created);
    key
}

/// A session in use: created by one request, loaded by the next.
async fn in_use(storage: &MemoryStorage, record: &Record, now: Timestamp) -> SessionKey {
    let key = one_shot(storage, record, now).await;
    assert!(storage.load(&key, now).await.unwrap().is_some());
    key
}

/// Whether `key` loads at `now`.
async fn loads(storage: &MemoryStorage, key: &SessionKey, now: Timestamp) -> bool {
    storage.load(key, now).await.unwrap().is_some()
}

/// The encoded bytes held in `segment`, once moka's evictions have run.
fn held_bytes(storage: &MemoryStorage, segment: Segment) -> usize {
    storage.segments.run_pending_tasks();
    let cache = storage.segments.segment(segment);
    cache.iter().map(|(_, stored)| stored.len()).sum()
}

#[tokio::test]
async fn debug_shows_sizes_only() {
    let storage = MemoryStorage::builder()
        .max_sessions(7)
        .max_bytes(4096)
        .build();
    let shown = format!("{storage:?}");
    assert!(shown.contains("max_sessions: 7"), "{shown}");
    assert!(shown.contains("max_bytes: 4096"), "{shown}");
}
