//! Corrupt stored bytes and oversized records, written or stored: clear
//! errors, no panic, nothing stored is lost or overwritten.

use super::fixtures::{create, deadlines, fresh_key, ints, load_live};
use super::{Failure, Harness};
use crate::{
    ChangeSet, CreateOutcome, CycleOutcome, Error, FORMAT_V1, Record, SessionData, Timestamp,
    TouchOutcome, Value,
};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_damage {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            corrupt_record_is_decode_error,
            oversized_record_is_too_large,
            oversized_stored_record_is_too_large,
        ]);
    };
}

/// Byte strings that are not records: empty, an unknown format byte, a
/// truncated record, and invalid MessagePack.
fn corrupt_samples(now: Timestamp) -> Result<Vec<(&'static str, Vec<u8>)>, Failure> {
    let mut truncated = Record::new(ints(&[("n", 1)])?, now, deadlines(now)).encode(usize::MAX)?;
    truncated.pop();
    let mut unknown_format = truncated.clone();
    unknown_format[0] = FORMAT_V1.wrapping_add(100);
    Ok(vec![
        ("empty", Vec::new()),
        ("unknown format byte", unknown_format),
        ("truncated record", truncated),
        ("invalid MessagePack", vec![FORMAT_V1, 0xc1, 0xff, 0x00]),
    ])
}

fn is_decode<T>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Decode(_)))
}

/// Every operation on corrupt stored bytes is [`Error::Decode`], with no
/// panic (create, or a cycle onto them, may instead report a collision; a
/// touch may move deadlines kept apart from the data);
/// the bytes stay as they were, other sessions are unaffected, and `delete`
/// still removes them.
pub async fn corrupt_record_is_decode_error<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let neighbour = create(&*storage, ints(&[("n", 1)])?, now).await?;
    for (label, bytes) in corrupt_samples(now)? {
        let key = fresh_key()?;
        harness.write_raw(&key, &bytes, now).await?;
        let planted = harness.read_raw(&key).await?;
        ensure!(planted.is_some(), "{label}: write_raw stored nothing");

        let mut changes = ChangeSet::new();
        changes.insert("n", Value::encode(&2)?);
        let new = fresh_key()?;
        ensure!(
            is_decode(&storage.load(&key, now).await),
            "{label}: load did not fail with Decode"
        );
        let update = storage.update(&key, &changes, deadlines(now), now).await;
        ensure!(is_decode(&update), "{label}: update gave {update:?}");
        let touch = storage.touch(&key, deadlines(now).idle(), now).await;
        // A backend that keeps deadlines apart from the data may move
        // them without reading the data; the bytes must stay as they are.
        ensure!(
            is_decode(&touch) || matches!(touch, Ok(TouchOutcome::Touched)),
            "{label}: touch gave {touch:?}"
        );
        let cycle = storage
            .cycle(&key, &new, &changes, deadlines(now), now)
            .await;
        ensure!(is_decode(&cycle), "{label}: cycle gave {cycle:?}");
        ensure!(
            !harness.raw_exists(&new).await?,
            "{label}: cycle stored the new key"
        );
        let record = Record::new(SessionData::new(), now, deadlines(now));
        let create = storage.create(&key, &record, now).await;
        ensure!(
            is_decode(&create) || matches!(create, Ok(CreateOutcome::Collision)),
            "{label}: create over corrupt bytes gave {create:?}"
        );
        let onto = storage
            .cycle(&neighbour, &key, &changes, deadlines(now), now)
            .await;
        ensure!(
            is_decode(&onto) || matches!(onto, Ok(CycleOutcome::Collision)),
            "{label}: cycle onto corrupt bytes gave {onto:?}"
        );
        ensure_eq!(
            harness.read_raw(&key).await?,
            planted,
            "{label}: stored bytes"
        );

        storage.delete(&key).await?;
        ensure!(
            !harness.raw_exists(&key).await?,
            "{label}: delete left corrupt bytes"
        );
    }
    ensure_eq!(
        load_live(&*storage, &neighbour, now).await?.data,
        ints(&[("n", 1)])?,
        "neighbour"
    );
    Ok(())
}

/// A blob of `len` bytes as a value.
fn blob(len: usize) -> Result<Value, Failure> {
    Ok(Value::encode(&"x".repeat(len))?)
}

/// A record over the size limit is [`Error::TooLarge`] and nothing is
/// written, on create, and on an update or a cycle that would grow it past
/// the limit.
pub async fn oversized_record_is_too_large<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let limit = harness.max_record_bytes();

    let mut huge = SessionData::new();
    huge.insert_value("blob".into(), blob(limit)?);
    let key = fresh_key()?;
    let created = storage
        .create(&key, &Record::new(huge, now, deadlines(now)), now)
        .await;
    ensure!(
        matches!(created, Err(Error::TooLarge { .. })),
        "create over the limit: {created:?}"
    );
    ensure!(
        !harness.raw_exists(&key).await?,
        "an oversized record was stored"
    );

    let mut half = SessionData::new();
    half.insert_value("first".into(), blob(limit / 2)?);
    let key = create(&*storage, half.clone(), now).await?;
    let before = harness.read_raw(&key).await?;
    let mut changes = ChangeSet::new();
    changes.insert("second", blob(limit / 2)?);
    let updated = storage.update(&key, &changes, deadlines(now), now).await;
    ensure!(
        matches!(updated, Err(Error::TooLarge { .. })),
        "update over the limit: {updated:?}"
    );
    ensure_eq!(
        harness.read_raw(&key).await?,
        before,
        "stored bytes after a refused update"
    );
    let new = fresh_key()?;
    let cycled = storage
        .cycle(&key, &new, &changes, deadlines(now), now)
        .await;
    ensure!(
        matches!(cycled, Err(Error::TooLarge { .. })),
        "cycle over the limit: {cycled:?}"
    );
    ensure!(
        !harness.raw_exists(&new).await?,
        "an oversized cycle stored the new key"
    );
    ensure_eq!(
        harness.read_raw(&key).await?,
        before,
        "stored bytes after a refused cycle"
    );
    ensure_eq!(
        load_live(&*storage, &key, now).await?.data,
        half,
        "data after a refused update"
    );
    Ok(())
}

/// A stored record over the size limit, as a compromised or misconfigured
/// store could hold, is [`Error::TooLarge`] on `load`, with no panic, and
/// its bytes are left as they were.
pub async fn oversized_stored_record_is_too_large<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let mut huge = SessionData::new();
    huge.insert_value("blob".into(), blob(harness.max_record_bytes())?);
    let key = fresh_key()?;
    let record = Record::new(huge, now, deadlines(now));
    harness.write_record_unchecked(&key, &record, now).await?;
    let planted = harness.read_raw(&key).await?;
    ensure!(planted.is_some(), "write_record_unchecked stored nothing");

    let loaded = storage.load(&key, now).await;
    ensure!(
        matches!(loaded, Err(Error::TooLarge { .. })),
        "load of a stored record over the limit: {loaded:?}"
    );
    ensure_eq!(
        harness.read_raw(&key).await?,
        planted,
        "stored bytes after a refused load"
    );
    Ok(())
}
