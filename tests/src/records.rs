//! Sessions for storage-level tests: records holding small integers,
//! created under fresh keys, and the change sets tests send.

use std::time::Duration;

use session_core::{
    ChangeSet, CreateOutcome, Deadlines, Record, SessionData, SessionId, SessionKey,
    SessionStorage, Timestamp, Value,
};

/// Deadlines half an hour (idle) and a day (absolute) after `now`.
pub fn deadlines(now: Timestamp) -> Deadlines {
    Deadlines::new(
        now.saturating_add(Duration::from_secs(30 * 60)),
        now.saturating_add(Duration::from_secs(24 * 60 * 60)),
    )
}

/// A key no session has.
pub fn fresh_key() -> SessionKey {
    SessionId::generate().unwrap().key()
}

/// The value of `n`.
pub fn int(n: i64) -> Value {
    Value::encode(&n).unwrap()
}

/// A new record holding `pairs`.
pub fn record_with(pairs: &[(&str, i64)], now: Timestamp) -> Record {
    let mut data = SessionData::new();
    for (name, n) in pairs {
        data.insert_value((*name).to_owned(), int(*n));
    }
    Record::new(data, now, deadlines(now))
}

/// A session holding `pairs`, created under a fresh key.
pub async fn created_with(
    storage: &dyn SessionStorage,
    pairs: &[(&str, i64)],
    now: Timestamp,
) -> SessionKey {
    let key = fresh_key();
    let outcome = storage
        .create(&key, &record_with(pairs, now), now)
        .await
        .unwrap();
    assert_eq!(outcome, CreateOutcome::Created);
    key
}

/// Sets `name` from `from` to `to`, on condition that it still holds
/// `from`: what `Session::update` sends.
pub fn increment(name: &str, from: i64, to: i64) -> ChangeSet {
    let mut changes = ChangeSet::new();
    changes.require(name, Some(int(from)));
    changes.insert(name, int(to));
    changes
}

/// The integer under `name` in `data`.
pub fn int_at(data: &SessionData, name: &str) -> Option<i64> {
    data.get(name).unwrap()
}
