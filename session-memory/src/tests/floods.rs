//! One-shot sessions, however many, evict no session in use.

use session_core::{ChangeSet, CycleOutcome, SessionStorage, Timestamp};

use super::{in_use, key, loads, one_shot, record};
use crate::MemoryStorage;

pub(super) const SESSIONS: u64 = 100;

/// The protected segment's share of the sessions: four fifths.
const PROTECTED: u64 = SESSIONS - SESSIONS / 5;

/// Creates ten times the capacity in sessions that are never sent back.
pub(super) async fn flood(storage: &MemoryStorage, now: Timestamp) {
    let record = record(now, 0);
    for _ in 0..SESSIONS * 10 {
        one_shot(storage, &record, now).await;
    }
    storage.segments.run_pending_tasks();
}

#[tokio::test]
async fn a_flood_of_one_shot_sessions_evicts_no_session_in_use() {
    let storage = MemoryStorage::builder().max_sessions(SESSIONS).build();
    let now = Timestamp::now();
    let record = record(now, 0);
    let mut sessions = Vec::new();
    for _ in 0..PROTECTED {
        sessions.push(in_use(&storage, &record, now).await);
    }
    flood(&storage, now).await;
    for key in &sessions {
        assert!(loads(&storage, key, now).await);
    }
}

#[tokio::test]
async fn a_new_session_is_kept_after_a_flood() {
    let storage = MemoryStorage::builder().max_sessions(SESSIONS).build();
    let now = Timestamp::now();
    flood(&storage, now).await;
    let newcomer = one_shot(&storage, &record(now, 0), now).await;
    storage.segments.run_pending_tasks();
    assert!(loads(&storage, &newcomer, now).await);
}

/// A login (`cycle`) is a session in real use, even on its first request.
#[tokio::test]
async fn a_login_survives_a_flood() {
    let storage = MemoryStorage::builder().max_sessions(SESSIONS).build();
    let now = Timestamp::now();
    let record = record(now, 0);
    let (old, new) = (one_shot(&storage, &record, now).await, key());
    let outcome = storage
        .cycle(&old, &new, &ChangeSet::new(), record.deadlines, now)
        .await
        .unwrap();
    assert_eq!(outcome, CycleOutcome::Cycled);
    flood(&storage, now).await;
    assert!(loads(&storage, &new, now).await);
}
