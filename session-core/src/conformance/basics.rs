//! Round trips, create, remove, clear, delete.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fixtures::{MS, create, deadlines, fresh_key, int, int_at, ints, load_live, update};
use super::{Failure, Harness};
use crate::{ChangeSet, CreateOutcome, Record, SessionData, Timestamp, UpdateOutcome, Value};

/// This file's tests, for `conformance_tests!` and `run_all`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_basics {
    ($mode:ident $arguments:tt) => {
        $crate::__conformance!(@ $mode $arguments [
            round_trip_typed,
            load_absent_is_none,
            create_collides_with_live_record,
            create_replaces_expired_record,
            update_removes_keys,
            update_clears,
            sessions_are_isolated,
            delete_is_idempotent,
        ]);
    };
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Address {
    city: String,
    zip: Option<u32>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Profile {
    name: String,
    tags: Vec<String>,
    address: Address,
    scores: BTreeMap<String, f64>,
}

fn profile() -> Profile {
    Profile {
        name: "Zoë".into(),
        tags: vec!["admin".into(), "ünïcode ✓".into()],
        address: Address {
            city: "Lyon".into(),
            zip: None,
        },
        scores: BTreeMap::from([("chess".into(), 1850.5), ("go".into(), -3.25)]),
    }
}

/// Typed values, a nested struct among them, survive create, load and
/// update unchanged, and the record's timestamps and version come back.
pub async fn round_trip_typed<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let mut data = SessionData::new();
    data.insert("profile", &profile())?;
    data.insert("visits", &u64::MAX)?;
    data.insert("flag", &true)?;
    data.insert("clé ✓", "välue")?;
    let key = create(&*storage, data.clone(), now).await?;

    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(record.data, data, "loaded data");
    ensure_eq!(
        record.data.get::<Profile>("profile")?,
        Some(profile()),
        "nested struct"
    );
    ensure_eq!(record.data.get::<u64>("visits")?, Some(u64::MAX), "u64");
    ensure_eq!(
        record.data.get::<String>("clé ✓")?,
        Some("välue".to_owned()),
        "unicode key"
    );
    ensure_eq!(record.created_at, now, "created_at");
    ensure_eq!(record.deadlines, deadlines(now), "deadlines");
    ensure_eq!(record.version, 1, "version of a new record");

    let mut changes = ChangeSet::new();
    let mut moved = profile();
    moved.address.zip = Some(69_001);
    changes.insert("profile", Value::encode(&moved)?);
    let later = now.saturating_add(MS);
    let outcome = storage
        .update(&key, &changes, deadlines(later), later)
        .await?;
    ensure_eq!(
        outcome,
        UpdateOutcome::Updated { version: 2 },
        "update outcome"
    );
    let record = load_live(&*storage, &key, later).await?;
    ensure_eq!(
        record.data.get::<Profile>("profile")?,
        Some(moved),
        "updated struct"
    );
    ensure_eq!(
        record.data.get::<bool>("flag")?,
        Some(true),
        "untouched key"
    );
    ensure_eq!(record.version, 2, "version after an update");
    Ok(())
}

/// A key that was never stored loads as `None`.
pub async fn load_absent_is_none<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let loaded = storage.load(&fresh_key()?, Timestamp::now()).await?;
    ensure!(loaded.is_none(), "an absent key loaded a record");
    Ok(())
}

/// `create` on a live key is a collision and leaves the stored record
/// byte-for-byte as it was.
pub async fn create_collides_with_live_record<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("owner", 1)])?, now).await?;
    let before = harness.read_raw(&key).await?;

    let intruder = Record::new(ints(&[("owner", 2)])?, now, deadlines(now));
    let outcome = storage
        .create(&key, &intruder, now.saturating_add(MS))
        .await?;
    ensure_eq!(outcome, CreateOutcome::Collision, "create on a live key");
    ensure_eq!(
        harness.read_raw(&key).await?,
        before,
        "stored bytes after a collision"
    );
    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(
        int_at(&record.data, "owner")?,
        Some(1),
        "owner after a collision"
    );
    Ok(())
}

/// `create` replaces a record that is still stored but expired at `now`.
pub async fn create_replaces_expired_record<H: Harness + ?Sized>(
    harness: &H,
) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("owner", 1)])?, now).await?;
    let later = deadlines(now).expires_at();

    let fresh = Record::new(ints(&[("owner", 2)])?, later, deadlines(later));
    let outcome = storage.create(&key, &fresh, later).await?;
    ensure_eq!(
        outcome,
        CreateOutcome::Created,
        "create over an expired record"
    );
    let record = load_live(&*storage, &key, later).await?;
    ensure_eq!(
        int_at(&record.data, "owner")?,
        Some(2),
        "owner after re-creation"
    );
    ensure_eq!(record.created_at, later, "created_at of the new record");
    Ok(())
}

/// Removed keys are gone after the update; the others stay; removing an
/// absent key is harmless.
pub async fn update_removes_keys<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("a", 1), ("b", 2)])?, now).await?;
    let mut changes = ChangeSet::new();
    changes.remove("a");
    changes.remove("never-there");
    update(&*storage, &key, &changes, now).await?;
    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(record.data, ints(&[("b", 2)])?, "data after remove");
    Ok(())
}

/// `clear` drops every stored value, then the set's later inserts apply.
pub async fn update_clears<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let key = create(&*storage, ints(&[("a", 1), ("b", 2)])?, now).await?;
    let mut changes = ChangeSet::new();
    changes.clear();
    changes.insert("c", int(3)?);
    update(&*storage, &key, &changes, now).await?;
    let record = load_live(&*storage, &key, now).await?;
    ensure_eq!(record.data, ints(&[("c", 3)])?, "data after clear");
    Ok(())
}

/// Two sessions never see each other's data.
pub async fn sessions_are_isolated<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    let first = create(&*storage, ints(&[("n", 1)])?, now).await?;
    let second = create(&*storage, ints(&[("n", 2)])?, now).await?;
    let mut changes = ChangeSet::new();
    changes.insert("n", int(10)?);
    update(&*storage, &first, &changes, now).await?;
    ensure_eq!(
        load_live(&*storage, &first, now).await?.data,
        ints(&[("n", 10)])?,
        "first"
    );
    ensure_eq!(
        load_live(&*storage, &second, now).await?.data,
        ints(&[("n", 2)])?,
        "second"
    );
    Ok(())
}

/// `delete` removes the record and can be repeated, also on absent keys.
pub async fn delete_is_idempotent<H: Harness + ?Sized>(harness: &H) -> Result<(), Failure> {
    let storage = harness.storage();
    let now = Timestamp::now();
    storage.delete(&fresh_key()?).await?;
    let key = create(&*storage, ints(&[("n", 1)])?, now).await?;
    storage.delete(&key).await?;
    storage.delete(&key).await?;
    ensure!(
        storage.load(&key, now).await?.is_none(),
        "a deleted record loaded"
    );
    ensure!(
        !harness.raw_exists(&key).await?,
        "a deleted record is still stored"
    );
    Ok(())
}
