//! The index follows what the caches drop by themselves.

use std::time::Duration;

use session_core::{ChangeSet, Login, LoginOutcome, SessionStorage, Timestamp, UserKey};

use super::{key, record};
use crate::MemoryStorage;
use crate::index::SWEEP_FLOOR;

const CAPACITY: usize = 10;

/// Logs `user` in `count` times from no session; returns the keys.
async fn log_in(
    storage: &MemoryStorage,
    user: UserKey,
    count: usize,
    now: Timestamp,
) -> Vec<session_core::SessionKey> {
    let deadlines = record(now, 0).deadlines;
    let mut keys = Vec::new();
    for _ in 0..count {
        let new = key();
        let login = Login::new(user);
        let outcome = storage
            .login(None, &new, &ChangeSet::new(), deadlines, &login, now)
            .await
            .unwrap();
        assert_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 });
        keys.push(new);
    }
    keys
}

/// Bound sessions evicted for room stay indexed until the index outgrows
/// its last sweep; the write that grows it sweeps them out, though nobody
/// lists their user again, and keeps every session the caches still hold.
#[tokio::test]
async fn evicted_sessions_leave_the_index_at_the_growth_sweep() {
    let storage = MemoryStorage::builder()
        .max_sessions(CAPACITY as u64)
        .build();
    let now = Timestamp::now();
    let user = UserKey::of("evicted");
    let logged_in = log_in(&storage, user, 4, now).await;
    // Logins start protected; fill that segment well past its share.
    let crowd = UserKey::of("crowd");
    log_in(&storage, crowd, 4 * CAPACITY, now).await;
    storage.segments.run_pending_tasks();
    let evicted: Vec<_> = logged_in
        .iter()
        .filter(|key| storage.segments.get(key).is_none())
        .collect();
    assert!(!evicted.is_empty(), "nothing of the first user was evicted");
    assert_eq!(
        storage.index.members(&user).len(),
        4,
        "swept before the index grew past the floor"
    );
    // Log in one at a time until the index shrinks: that login swept.
    let mut crowd_keys = Vec::new();
    loop {
        assert!(
            crowd_keys.len() <= SWEEP_FLOOR,
            "no sweep as the index grew"
        );
        let before = storage.index.len();
        crowd_keys.extend(log_in(&storage, crowd, 1, now).await);
        if storage.index.len() < before {
            break;
        }
    }
    let members = storage.index.members(&user);
    assert!(
        evicted.iter().all(|key| !members.contains(key)),
        "evicted keys still indexed"
    );
    let crowd_members = storage.index.members(&crowd);
    let held: Vec<_> = crowd_keys
        .iter()
        .filter(|key| storage.segments.get(key).is_some())
        .collect();
    assert!(held.len() > 1, "the caches hold too few to tell");
    for key in held {
        assert!(crowd_members.contains(key), "a held session left the index");
    }
}

/// Cleanup (`delete_expired`) takes expired sessions out of the index at
/// once, and keeps the live one of the same user.
#[tokio::test]
async fn cleanup_sweeps_expired_sessions_out_of_the_index() {
    let storage = MemoryStorage::new();
    let now = Timestamp::now();
    let user = UserKey::of("expired");
    let short = session_core::Deadlines::new(
        now.saturating_add(Duration::from_secs(10)),
        now.saturating_add(Duration::from_secs(10)),
    );
    let new = key();
    let outcome = storage
        .login(None, &new, &ChangeSet::new(), short, &Login::new(user), now)
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 });
    let live = log_in(&storage, user, 1, now).await;
    let later = now.saturating_add(Duration::from_secs(11));
    storage.delete_expired(later).await.unwrap();
    assert_eq!(storage.index.members(&user), live);
}
