//! The store stays within both of its bounds, sessions and bytes.

use session_core::{Error, SessionStorage, Timestamp};

use super::{held_bytes, in_use, key, one_shot, record};
use crate::MemoryStorage;
use crate::bounds::Bounds;
use crate::segments::Segment;

/// Sessions in use and one-shot sessions, `count` of each.
async fn fill(storage: &MemoryStorage, bytes: usize, count: u64) {
    let now = Timestamp::now();
    let record = record(now, bytes);
    for _ in 0..count {
        in_use(storage, &record, now).await;
        one_shot(storage, &record, now).await;
    }
}

#[tokio::test]
async fn large_sessions_are_bounded_by_bytes() {
    const MAX_BYTES: usize = 1024 * 1024;
    let storage = MemoryStorage::builder()
        .max_sessions(1_000)
        .max_bytes(MAX_BYTES as u64)
        .build();
    fill(&storage, 8 * 1024, 200).await;
    let probation = held_bytes(&storage, Segment::Probation);
    let protected = held_bytes(&storage, Segment::Protected);
    assert!(
        probation + protected <= MAX_BYTES,
        "{probation} + {protected}"
    );
    // Not vacuous: the budget is used, and both segments have their share.
    assert!(probation > MAX_BYTES / 10, "{probation}");
    assert!(protected > MAX_BYTES / 2, "{protected}");
}

#[tokio::test]
async fn small_sessions_are_bounded_by_count() {
    let storage = MemoryStorage::builder().max_sessions(50).build();
    fill(&storage, 0, 100).await;
    storage.segments.run_pending_tasks();
    assert_eq!(storage.segments.entry_count(), 50);
}

#[tokio::test]
async fn a_record_no_segment_could_keep_is_refused() {
    let storage = MemoryStorage::builder()
        .max_sessions(100)
        .max_bytes(64 * 1024)
        .build();
    let now = Timestamp::now();
    let created = storage.create(&key(), &record(now, 20 * 1024), now).await;
    assert!(
        matches!(created, Err(Error::TooLarge { .. })),
        "{created:?}"
    );
}

#[test]
fn extreme_bounds_neither_overflow_nor_divide_by_zero() {
    for (sessions, bytes) in [(0, 0), (1, 1), (2, u64::MAX), (u64::MAX, u64::MAX)] {
        let bounds = Bounds::new(sessions, bytes);
        assert!(bounds.probation() <= bounds.protected(), "{bounds:?}");
        assert!(
            bounds.probation() + bounds.protected() <= bytes,
            "{bounds:?}"
        );
    }
}
