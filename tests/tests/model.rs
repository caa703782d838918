//! Random sequences of operations on each backend, checked against a model:
//! after every step, what the storage loads is what a plain map with two
//! deadlines says it should be.

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use session_core::{
    ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Record, SessionData, SessionId, SessionKey,
    SessionStorage, Timestamp, TouchOutcome, UpdateOutcome, Value,
};
use session_memory::MemoryStorage;
use session_sqlite::SqliteStorage;
use session_tests::redis_server::{Redis, storage, unique_prefix};

const IDLE: u64 = 10 * 60 * 1000;
const ABSOLUTE: u64 = 30 * 60 * 1000;

#[derive(Clone, Debug)]
enum Op {
    Set(u8, i64),
    /// `update_from` a record loaded this many steps ago (the hint may be
    /// stale).
    SetFromLoaded(u8, i64, u8),
    /// A conditioned increment: required to hold the model's value.
    Increment(u8),
    /// A conditioned write that requires a value the key does not hold.
    StaleCondition(u8),
    Remove(u8),
    Clear,
    Touch,
    Cycle,
    Delete,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4_u8, any::<i64>()).prop_map(|(key, value)| Op::Set(key, value)),
        2 => (0..4_u8, any::<i64>(), 0..3_u8)
            .prop_map(|(key, value, age)| Op::SetFromLoaded(key, value, age)),
        2 => (0..4_u8).prop_map(Op::Increment),
        1 => (0..4_u8).prop_map(Op::StaleCondition),
        2 => (0..4_u8).prop_map(Op::Remove),
        1 => Just(Op::Clear),
        2 => Just(Op::Touch),
        1 => Just(Op::Cycle),
        1 => Just(Op::Delete),
        3 => (0..IDLE).prop_map(Op::Advance),
    ]
}

/// What the storage should hold.
struct Model {
    live: bool,
    data: BTreeMap<String, i64>,
    idle: u64,
    absolute: u64,
}

impl Model {
    fn is_live(&self, now: u64) -> bool {
        self.live && now < self.idle && now < self.absolute
    }
}

fn at(millis: u64) -> Timestamp {
    Timestamp::from_unix_millis(millis)
}

/// Runs `ops` on `storage` and on the model, comparing after each step.
async fn check(storage: &dyn SessionStorage, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut now = Timestamp::now().as_unix_millis();
    let mut key: SessionKey = SessionId::generate().unwrap().key();
    let deadlines = |now: u64| Deadlines::new(at(now + IDLE), at(now + ABSOLUTE));
    let record = Record::new(SessionData::new(), at(now), deadlines(now));
    prop_assert_eq!(
        storage.create(&key, &record, at(now)).await.unwrap(),
        CreateOutcome::Created
    );
    let mut model = Model {
        live: true,
        data: BTreeMap::new(),
        idle: now + IDLE,
        absolute: now + ABSOLUTE,
    };
    // Records as loaded after each step, newest last: hints for update_from.
    let mut loads: Vec<Option<Record>> = Vec::new();
    for op in ops {
        let live = model.is_live(now);
        match op {
            Op::SetFromLoaded(k, v, age) => {
                let hint = loads.iter().rev().nth(usize::from(*age)).cloned().flatten();
                let mut changes = ChangeSet::new();
                changes.insert(format!("k{k}"), Value::encode(v).unwrap());
                let outcome = match &hint {
                    Some(hint) => {
                        storage
                            .update_from(&key, hint, &changes, deadlines(now), at(now))
                            .await
                    }
                    None => {
                        storage
                            .update(&key, &changes, deadlines(now), at(now))
                            .await
                    }
                };
                let outcome = outcome.unwrap();
                if live {
                    prop_assert!(
                        matches!(outcome, UpdateOutcome::Updated { .. }),
                        "{:?}",
                        outcome
                    );
                    model.data.insert(format!("k{k}"), *v);
                    model.idle = (now + IDLE).min(model.absolute);
                } else {
                    prop_assert_eq!(outcome, UpdateOutcome::Gone);
                }
            }
            Op::Increment(k) | Op::StaleCondition(k) => {
                let name = format!("k{k}");
                let held = model.data.get(&name).copied();
                let required = match op {
                    Op::Increment(_) => held,
                    _ => Some(held.map_or(0, |n| n.wrapping_add(1))),
                };
                let mut changes = ChangeSet::new();
                changes.require(&name, required.map(|n| Value::encode(&n).unwrap()));
                let next = held.unwrap_or(0).wrapping_add(1);
                changes.insert(&name, Value::encode(&next).unwrap());
                let outcome = storage
                    .update(&key, &changes, deadlines(now), at(now))
                    .await
                    .unwrap();
                match (live, op) {
                    (false, _) => prop_assert_eq!(outcome, UpdateOutcome::Gone),
                    (true, Op::Increment(_)) => {
                        prop_assert!(
                            matches!(outcome, UpdateOutcome::Updated { .. }),
                            "{:?}",
                            outcome
                        );
                        model.data.insert(name, next);
                        model.idle = (now + IDLE).min(model.absolute);
                    }
                    (true, _) => {
                        let UpdateOutcome::Conflict { current } = outcome else {
                            return Err(TestCaseError::fail(format!(
                                "stale condition: {outcome:?}"
                            )));
                        };
                        let reported = current.value(&name).map(|v| v.decode::<i64>().unwrap());
                        prop_assert_eq!(reported, held);
                    }
                }
            }
            Op::Set(_, _) | Op::Remove(_) | Op::Clear => {
                let mut changes = ChangeSet::new();
                match op {
                    Op::Set(k, v) => changes.insert(format!("k{k}"), Value::encode(v).unwrap()),
                    Op::Remove(k) => changes.remove(format!("k{k}")),
                    _ => changes.clear(),
                }
                let outcome = storage
                    .update(&key, &changes, deadlines(now), at(now))
                    .await
                    .unwrap();
                if live {
                    prop_assert!(
                        matches!(outcome, UpdateOutcome::Updated { .. }),
                        "{:?}",
                        outcome
                    );
                    match op {
                        Op::Set(k, v) => drop(model.data.insert(format!("k{k}"), *v)),
                        Op::Remove(k) => drop(model.data.remove(&format!("k{k}"))),
                        _ => model.data.clear(),
                    }
                    model.idle = (now + IDLE).min(model.absolute);
                } else {
                    prop_assert_eq!(outcome, UpdateOutcome::Gone);
                }
            }
            Op::Touch => {
                let outcome = storage.touch(&key, at(now + IDLE), at(now)).await.unwrap();
                if live {
                    prop_assert_eq!(outcome, TouchOutcome::Touched);
                    model.idle = (now + IDLE).min(model.absolute);
                } else {
                    prop_assert_eq!(outcome, TouchOutcome::Gone);
                }
            }
            Op::Cycle => {
                let new = SessionId::generate().unwrap().key();
                let outcome = storage
                    .cycle(&key, &new, &ChangeSet::new(), deadlines(now), at(now))
                    .await
                    .unwrap();
                if live {
                    prop_assert_eq!(outcome, CycleOutcome::Cycled);
                    prop_assert!(storage.load(&key, at(now)).await.unwrap().is_none());
                    key = new;
                    // Hints are records loaded under the current key.
                    loads.clear();
                    model.idle = now + IDLE;
                    model.absolute = now + ABSOLUTE;
                } else {
                    prop_assert_eq!(outcome, CycleOutcome::Gone);
                }
            }
            Op::Delete => {
                storage.delete(&key).await.unwrap();
                model.live = false;
            }
            Op::Advance(by) => now += by,
        }
        let loaded = storage.load(&key, at(now)).await.unwrap();
        loads.push(loaded.clone());
        let expected = model.is_live(now).then(|| model.data.clone());
        let actual = loaded.map(|record| {
            record
                .data
                .iter()
                .map(|(name, value)| (name.to_owned(), value.decode::<i64>().unwrap()))
                .collect::<BTreeMap<_, _>>()
        });
        prop_assert_eq!(actual, expected, "after {:?}", op);
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn memory_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        runtime().block_on(check(&MemoryStorage::new(), &ops))?;
    }

    #[test]
    fn sqlite_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        runtime().block_on(async {
            let storage = SqliteStorage::open("sqlite::memory:").await.unwrap();
            check(&storage, &ops).await
        })?;
    }
}

#[test]
fn redis_matches_the_model() {
    let Some(redis) = Redis::start() else { return };
    let runtime = runtime();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        runtime.block_on(async {
            let storage = storage(
                &redis.url(),
                &unique_prefix("model"),
                Duration::from_secs(2),
            );
            check(&storage, &ops).await
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
