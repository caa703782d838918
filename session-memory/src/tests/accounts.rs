//! The index follows what the caches drop by themselves.

use std::time::Duration;

use session_core::{ChangeSet, Login, LoginOutcome, SessionStorage, Timestamp, UserKey};

use super::{key, one_shot, record};
use crate::MemoryStorage;

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

/// Bound sessions evicted for room leave their user's index once the
/// evictions are settled (here by the next create), though nobody lists
/// that user again.
#[tokio::test]
async fn evicted_sessions_leave_the_index() {
    let storage = MemoryStorage::builder()
        .max_sessions(CAPACITY as u64)
        .build();
    let now = Timestamp::now();
    let user = UserKey::of("evicted");
    let logged_in = log_in(&storage, user, 4, now).await;
    assert_eq!(storage.index.members(&user).len(), 4);
    // Logins start protected; fill that segment well past its share.
    log_in(&storage, UserKey::of("crowd"), 4 * CAPACITY, now).await;
    storage.segments.run_pending_tasks();
    let _ = one_shot(&storage, &record(now, 0), now).await;
    let evicted: Vec<_> = logged_in
        .iter()
        .filter(|key| storage.segments.get(key).is_none())
        .collect();
    assert!(!evicted.is_empty(), "nothing of the first user was evicted");
    let members = storage.index.members(&user);
    assert!(
        evicted.iter().all(|key| !members.contains(key)),
        "evicted keys still indexed"
    );
    let crowd = storage.index.members(&UserKey::of("crowd")).len();
    assert!(crowd <= CAPACITY, "the crowd's index holds {crowd} keys");
}

/// A session that expired in the cache (real time, a deadline 50 ms out)
/// leaves the index too.
#[tokio::test]
async fn expired_sessions_leave_the_index() {
    let storage = MemoryStorage::new();
    let now = Timestamp::now();
    let user = UserKey::of("expired");
    let short = session_core::Deadlines::new(
        now.saturating_add(Duration::from_millis(50)),
        now.saturating_add(Duration::from_millis(50)),
    );
    let new = key();
    let outcome = storage
        .login(None, &new, &ChangeSet::new(), short, &Login::new(user), now)
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 });
    // Native expiry keeps a record EXPIRY_SLACK past its deadline.
    tokio::time::sleep(session_core::EXPIRY_SLACK + Duration::from_millis(200)).await;
    storage.segments.run_pending_tasks();
    let _ = one_shot(&storage, &record(Timestamp::now(), 0), Timestamp::now()).await;
    assert!(
        storage.segments.get(&new).is_none(),
        "the cache still holds it"
    );
    assert!(
        storage.index.members(&user).is_empty(),
        "the index still holds it"
    );
}
