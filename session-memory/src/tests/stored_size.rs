//! A stored record over the size limit is refused, however it got there.

use std::time::Duration;

use session_core::{ChangeSet, Error, SessionKey, SessionStorage, Timestamp};

use super::{key, record};
use crate::MemoryStorage;
use crate::segments::Segment;
use crate::stored::Stored;

const LIMIT: usize = 1024;

/// A storage holding, in `segment`, a record over its limit.
fn planted(segment: Segment, now: Timestamp) -> (MemoryStorage, SessionKey, Vec<u8>) {
    let storage = MemoryStorage::builder().max_record_bytes(LIMIT).build();
    let bytes = record(now, 2 * LIMIT).encode(usize::MAX).unwrap();
    let key = key();
    let stored = Stored::new(bytes.clone(), Duration::from_secs(600));
    storage.segments.put(&key, stored, segment, None);
    (storage, key, bytes)
}

fn is_too_large<T: std::fmt::Debug>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::TooLarge { limit: LIMIT, .. }))
}

#[tokio::test]
async fn an_oversized_stored_record_is_too_large() {
    let now = Timestamp::now();
    for segment in [Segment::Probation, Segment::Protected] {
        let (storage, key, bytes) = planted(segment, now);
        let deadlines = record(now, 0).deadlines;
        assert!(is_too_large(storage.load(&key, now).await), "{segment:?}");
        let changes = ChangeSet::new();
        let update = storage.update(&key, &changes, deadlines, now).await;
        assert!(is_too_large(update), "{segment:?}");
        assert!(is_too_large(storage.touch(&key, now, now).await));
        let kept = storage.segments.get(&key).unwrap();
        assert_eq!((kept.segment, kept.stored.bytes()), (segment, &bytes[..]));
    }
}

/// The conformance suite plants an oversized record through `write_raw`,
/// as encoded bytes: the layout this store keeps.
#[cfg(feature = "conformance")]
#[tokio::test]
async fn write_raw_plants_a_record_as_it_is_stored() {
    use session_core::conformance::Harness;

    let harness =
        crate::MemoryHarness::new(MemoryStorage::builder().max_record_bytes(LIMIT).build());
    let now = Timestamp::now();
    let (key, bytes) = (key(), record(now, 2 * LIMIT).encode(usize::MAX).unwrap());
    harness.write_raw(&key, &bytes, now).await.unwrap();
    assert!(is_too_large(harness.storage().load(&key, now).await));
    assert_eq!(harness.read_raw(&key).await.unwrap(), Some(bytes));
}
