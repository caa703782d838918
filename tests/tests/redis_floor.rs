//! The short scripts of the plain paths, on a Redis server of the test's
//! own (its command counts are the evidence): a `create` onto a free key
//! and an `update_from` of a record still as loaded run one short script
//! that reads no whole hash; a record that changed, went or became a
//! tombstone since it was loaded goes the full way, with the outcome
//! `update` gives.

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use session_core::{
    ChangeSet, CreateOutcome, Record, SessionKey, SessionStorage, Timestamp, UpdateOutcome,
};
use session_redis::RedisStorage;
use session_tests::records::{created_with, deadlines, increment, int, int_at, record_with};
use session_tests::redis_server::{Redis, RedisServer, unique_prefix};

/// A server of the test's own (with a shared `REDIS_URL` server, whose
/// counts other tests move, the tests are skipped), storage on it under a
/// prefix, and a raw connection for counting and planting.
struct Own {
    _server: RedisServer,
    storage: RedisStorage,
    connection: redis::aio::MultiplexedConnection,
    prefix: String,
}

impl Own {
    /// The server, and the time the test starts at.
    async fn start() -> Option<(Self, Timestamp)> {
        let Some(Redis::Spawned(server)) = Redis::start() else {
            eprintln!("skipped: needs a redis-server of its own to count its commands");
            return None;
        };
        let prefix = unique_prefix("floor");
        let url = server.url();
        let client = redis::Client::open(url.as_str()).unwrap();
        let own = Self {
            storage: session_tests::redis_server::storage(&url, &prefix, Duration::from_secs(2)),
            connection: client.get_multiplexed_async_connection().await.unwrap(),
            _server: server,
            prefix,
        };
        Some((own, Timestamp::now()))
    }

    /// A session holding `n` = 1 created at `now`, and the record a
    /// request loads from it.
    async fn session(&self, now: Timestamp) -> (SessionKey, Record) {
        let key = created_with(&self.storage, &[("n", 1)], now).await;
        let loaded = self.storage.load(&key, now).await.unwrap().unwrap();
        (key, loaded)
    }

    fn redis_key(&self, key: SessionKey) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// Calls per command so far (`INFO commandstats`, which counts the
/// commands scripts run too), lower case.
async fn calls(connection: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let count = stats.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), count.parse().ok()?))
        })
        .collect()
}

/// What ran on the server while `work` did: each command's added calls.
async fn ran<F: Future>(
    connection: &mut redis::aio::MultiplexedConnection,
    work: F,
) -> (F::Output, BTreeMap<String, u64>) {
    let before = calls(connection).await;
    let output = work.await;
    let after = calls(connection).await;
    let added = after
        .into_iter()
        .filter_map(|(name, count)| {
            let added = count - before.get(&name).copied().unwrap_or(0);
            (added > 0 && name != "info").then_some((name, added))
        })
        .collect();
    (output, added)
}

fn count(ran: &BTreeMap<String, u64>, command: &str) -> u64 {
    ran.get(command).copied().unwrap_or(0)
}

/// The scripts run (an `EVALSHA` refused with `NOSCRIPT` counts as a
/// call too, then the client loads the script and sends it again), and
/// whether any read a whole hash (only the full scripts do).
fn scripts_and_whole_reads(ran: &BTreeMap<String, u64>) -> (u64, bool) {
    (
        count(ran, "evalsha") - count(ran, "script|load"),
        count(ran, "hgetall") > 0,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_onto_a_free_key_and_a_current_update_from_are_one_short_script_each() {
    let Some((mut own, now)) = Own::start().await else {
        return;
    };
    let storage = own.storage.clone();
    let (key, create) = ran(
        &mut own.connection,
        created_with(&storage, &[("n", 1)], now),
    )
    .await;
    assert_eq!(scripts_and_whole_reads(&create), (1, false), "{create:?}");
    assert_eq!(count(&create, "exists"), 1, "{create:?}");

    let loaded = storage.load(&key, now).await.unwrap().unwrap();
    let mut changes = increment("n", 1, 2);
    changes.insert("m", int(7));
    let (outcome, update) = ran(
        &mut own.connection,
        storage.update_from(&key, &loaded, &changes, deadlines(now), now),
    )
    .await;
    assert_eq!(outcome.unwrap(), UpdateOutcome::Updated { version: 2 });
    assert_eq!(scripts_and_whole_reads(&update), (1, false), "{update:?}");
    assert_eq!(count(&update, "hmget"), 1, "{update:?}");

    // What it stored is what `update` stores from the same record: the
    // same record loads, under the same fields, with the same TTL.
    let (twin, _) = own.session(now).await;
    let _outcome = storage
        .update(&twin, &changes, deadlines(now), now)
        .await
        .unwrap();
    let short = storage.load(&key, now).await.unwrap();
    assert_eq!(short, storage.load(&twin, now).await.unwrap());
    let mut layouts = Vec::new();
    for key in [key, twin] {
        let mut fields: Vec<String> = redis::cmd("HKEYS")
            .arg(own.redis_key(key))
            .query_async(&mut own.connection)
            .await
            .unwrap();
        fields.sort();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(own.redis_key(key))
            .query_async(&mut own.connection)
            .await
            .unwrap();
        layouts.push((fields, ttl));
    }
    assert_eq!(layouts[0].0, layouts[1].0);
    assert!((layouts[0].1 - layouts[1].1).abs() < 5_000, "{layouts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_short_update_remembers_as_many_writes_as_the_full_one() {
    let Some((mut own, now)) = Own::start().await else {
        return;
    };
    let (key, _) = own.session(now).await;
    for n in 1..13 {
        let loaded = own.storage.load(&key, now).await.unwrap().unwrap();
        let outcome = own
            .storage
            .update_from(
                &key,
                &loaded,
                &increment("n", n, n + 1),
                deadlines(now),
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            outcome,
            UpdateOutcome::Updated {
                version: 1 + n.unsigned_abs()
            }
        );
    }
    // Field `t`: 36-byte entries (token, zero-padded version), newest
    // first, the last eight writes.
    let memo: String = redis::cmd("HGET")
        .arg(own.redis_key(key))
        .arg("t")
        .query_async(&mut own.connection)
        .await
        .unwrap();
    let versions: Vec<u64> = memo
        .as_bytes()
        .chunks(36)
        .map(|entry| std::str::from_utf8(&entry[16..]).unwrap().parse().unwrap())
        .collect();
    assert_eq!(versions, [13, 12, 11, 10, 9, 8, 7, 6]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_from_a_stale_record_goes_the_full_way_and_loses_nothing() {
    let Some((mut own, now)) = Own::start().await else {
        return;
    };
    let (key, loaded) = own.session(now).await;
    let storage = own.storage.clone();
    let mut other = ChangeSet::new();
    other.insert("m", int(7));
    let moved = storage
        .update(&key, &other, deadlines(now), now)
        .await
        .unwrap();
    assert_eq!(moved, UpdateOutcome::Updated { version: 2 });

    // Unconditioned: the full script applies it to what is stored.
    let mut changes = ChangeSet::new();
    changes.insert("k", int(1));
    let before = storage.round_trips();
    let (outcome, update) = ran(
        &mut own.connection,
        storage.update_from(&key, &loaded, &changes, deadlines(now), now),
    )
    .await;
    assert_eq!(outcome.unwrap(), UpdateOutcome::Updated { version: 3 });
    assert_eq!(storage.round_trips() - before, 2, "short, then full");
    assert_eq!(scripts_and_whole_reads(&update), (2, true), "{update:?}");
    let record = storage.load(&key, now).await.unwrap().unwrap();
    assert_eq!(
        ["n", "m", "k"].map(|name| int_at(&record.data, name)),
        [Some(1), Some(7), Some(1)]
    );

    // Conditioned on what was loaded (no `m`), which holds there but no
    // longer in storage: the conflict names what is stored.
    let mut conditioned = ChangeSet::new();
    conditioned.require("m", None);
    conditioned.insert("m", int(6));
    let outcome = storage
        .update_from(&key, &loaded, &conditioned, deadlines(now), now)
        .await
        .unwrap();
    let UpdateOutcome::Conflict { current } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(current.value("m"), Some(&int(7)));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_from_a_deleted_or_tombstoned_session_is_gone_and_recreates_nothing() {
    let Some((mut own, now)) = Own::start().await else {
        return;
    };
    let storage = own.storage.clone();
    let changes = increment("n", 1, 2);

    let (deleted, loaded) = own.session(now).await;
    storage.delete(&deleted).await.unwrap();
    let before = storage.round_trips();
    let (outcome, update) = ran(
        &mut own.connection,
        storage.update_from(&deleted, &loaded, &changes, deadlines(now), now),
    )
    .await;
    assert_eq!(outcome.unwrap(), UpdateOutcome::Gone);
    assert_eq!(storage.round_trips() - before, 2, "short, then full");
    assert_eq!(scripts_and_whole_reads(&update), (2, true), "{update:?}");
    let exists: bool = redis::cmd("EXISTS")
        .arg(own.redis_key(deleted))
        .query_async(&mut own.connection)
        .await
        .unwrap();
    assert!(!exists, "logout wins: nothing re-created");

    // A tombstone (a cluster revoke's) under a key a request had loaded.
    let (revoked, loaded) = own.session(now).await;
    let redis_key = own.redis_key(revoked);
    let _: () = redis::pipe()
        .atomic()
        .del(&redis_key)
        .hset(&redis_key, "m", "R")
        .pexpire(&redis_key, 60_000)
        .query_async(&mut own.connection)
        .await
        .unwrap();
    let before = storage.round_trips();
    let outcome = storage
        .update_from(&revoked, &loaded, &changes, deadlines(now), now)
        .await
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::Gone);
    assert_eq!(storage.round_trips() - before, 2, "short, then full");
    let created = storage
        .create(&revoked, &record_with(&[("n", 1)], now), now)
        .await
        .unwrap();
    assert_eq!(
        created,
        CreateOutcome::Collision,
        "a tombstone holds its key"
    );
    let hash: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg(&redis_key)
        .query_async(&mut own.connection)
        .await
        .unwrap();
    assert_eq!(hash, BTreeMap::from([("m".to_owned(), "R".to_owned())]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_onto_an_expired_record_goes_the_full_way() {
    let Some((mut own, then)) = Own::start().await else {
        return;
    };
    let (key, _) = own.session(then).await;
    // Past the idle deadline, still stored (within the TTL's slack, or a
    // clock moved by the test): the create replaces it.
    let later = deadlines(then)
        .idle()
        .saturating_add(Duration::from_secs(1));
    let storage = own.storage.clone();
    let before = storage.round_trips();
    let (outcome, create) = ran(
        &mut own.connection,
        storage.create(&key, &record_with(&[("n", 9)], later), later),
    )
    .await;
    assert_eq!(outcome.unwrap(), CreateOutcome::Created);
    assert_eq!(storage.round_trips() - before, 2, "short, then full");
    assert_eq!(scripts_and_whole_reads(&create), (2, true), "{create:?}");
    let record = storage.load(&key, later).await.unwrap().unwrap();
    assert_eq!((record.version, int_at(&record.data, "n")), (1, Some(9)));
}
