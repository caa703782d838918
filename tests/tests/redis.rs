//! The suites on a real Redis server, and what only Redis has: the key
//! layout, TTLs, round trips, an outage and the recovery after it.

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use session_core::conformance::Harness;
use session_core::{
    ChangeSet, CreateOutcome, DEFAULT_MAX_RECORD_BYTES, Deadlines, Error, Record, SessionData,
    SessionId, SessionStorage, Timestamp, UpdateOutcome, Value,
};
use session_http::SessionConfig;
use session_redis::{RedisHarness, RedisStorage};
use session_tests::COOKIE;
use session_tests::app::{TestApp, get_request, post_request};
use session_tests::kept::Kept;
use session_tests::records::{created_with, deadlines, fresh_key, increment, int_at, record_with};
use session_tests::redis_server::{Redis, unique_prefix};
use session_tests::reply_dropper::{Faults, ReplyDropper, is_script_on};

/// Storage on `redis` under a prefix of its own.
fn storage(redis: &Redis, prefix: &str, timeout: Duration) -> RedisStorage {
    session_tests::redis_server::storage(&redis.url(), prefix, timeout)
}

async fn served() -> Option<Kept<Redis, RedisHarness>> {
    let redis = Redis::start()?;
    let storage = storage(&redis, &unique_prefix("suite"), Duration::from_secs(2));
    Some(Kept::new(redis, RedisHarness::new(storage)))
}

mod conformance {
    session_core::conformance_tests!(optional: super::served);
}

mod http_suite {
    session_tests::http_suite!(optional: super::served);
}

/// A raw connection for looking at what the storage wrote.
async fn inspect(redis: &Redis) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_prefixed_hashes_with_ttls_and_hold_no_id() {
    let Some(redis) = Redis::start() else { return };
    let prefix = unique_prefix("layout");
    let app = TestApp::with_defaults(Arc::new(storage(&redis, &prefix, Duration::from_secs(2))));
    let mut ids = Vec::new();
    let mut issued = |pair: Option<String>| {
        let pair = pair.expect("a cookie");
        ids.push(pair.split_once('=').unwrap().1.to_owned());
        pair
    };
    let first = issued(
        app.call(get_request("/visit", None))
            .await
            .cookie_pair(COOKIE),
    );
    app.call(post_request("/incr", Some(&first))).await;
    let login = issued(
        app.call(post_request("/login?user=ada", Some(&first)))
            .await
            .cookie_pair(COOKIE),
    );
    let other = issued(
        app.call(post_request("/set/x", None))
            .await
            .cookie_pair(COOKIE),
    );
    app.call(post_request("/logout", Some(&other))).await;
    assert_eq!(
        app.call(get_request("/whoami", Some(&login))).await.body,
        "ada"
    );

    let mut connection = inspect(&redis).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    let ours: Vec<&String> = keys.iter().filter(|key| key.starts_with(&prefix)).collect();
    assert_eq!(
        ours.len(),
        1,
        "only the logged-in session is left: {keys:?}"
    );
    if matches!(redis, Redis::Spawned(_)) {
        assert_eq!(
            ours.len(),
            keys.len(),
            "every key carries the prefix: {keys:?}"
        );
    }
    for key in ours {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no TTL");
        let fields: Vec<Vec<u8>> = redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        for id in &ids {
            assert!(!key.contains(id.as_str()), "a session id in a key name");
            for field in &fields {
                assert!(
                    !String::from_utf8_lossy(field).contains(id.as_str()),
                    "a session id in stored data"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_round_trip_to_read_two_to_read_then_write() {
    let Some(redis) = Redis::start() else { return };
    let storage = storage(&redis, &unique_prefix("trips"), Duration::from_secs(2));
    let app = TestApp::with_defaults(Arc::new(storage.clone()));
    let pair = app.session_with("n").await;
    let trips = |before: u64| storage.round_trips() - before;

    let before = storage.round_trips();
    app.call(get_request("/untouched", Some(&pair))).await;
    assert_eq!(trips(before), 0);
    let before = storage.round_trips();
    assert_eq!(
        app.call(get_request("/read", Some(&pair))).await.body,
        "n=1"
    );
    assert_eq!(trips(before), 1, "a read-only request");
    let before = storage.round_trips();
    app.call(post_request("/set/m", Some(&pair))).await;
    assert_eq!(trips(before), 2, "a read-then-write request");
    let before = storage.round_trips();
    app.call(post_request("/incr", Some(&pair))).await;
    assert_eq!(trips(before), 2, "load, then one conditioned update");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_answers_503_promptly_and_the_service_recovers() {
    let Some(Redis::Spawned(mut server)) = Redis::start() else {
        eprintln!("skipped: needs a redis-server this test can kill");
        return;
    };
    let timeout = Duration::from_millis(300);
    let storage =
        session_tests::redis_server::storage(&server.url(), &unique_prefix("outage"), timeout);
    let config = SessionConfig::builder().store_timeout(timeout);
    let app = TestApp::new(Arc::new(storage), config);
    let pair = app.session_with("x").await;
    assert_eq!(app.call(get_request("/names", Some(&pair))).await.body, "x");

    server.kill();
    for (request, label) in [
        (get_request("/names", Some(&pair)), "a read"),
        (post_request("/set/y", None), "a new session"),
        (post_request("/logout", Some(&pair)), "a logout"),
    ] {
        let started = Instant::now();
        let reply = app.call(request).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{label}: {reply:?}"
        );
        assert!(reply.set_cookies().is_empty(), "{label}");
        // A liveness bound, not a benchmark: a hung request never returns.
        assert!(
            started.elapsed() < 3 * timeout,
            "{label} took {:?}",
            started.elapsed()
        );
    }

    server.restart();
    // The same service reconnects by itself (the data did not survive:
    // nothing was persisted).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = app.call(get_request("/visit", None)).await;
        if reply.status == StatusCode::OK {
            assert_eq!(reply.body, "First time");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not recover: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pair = app.session_with("z").await;
    assert_eq!(app.call(get_request("/names", Some(&pair))).await.body, "z");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_starts_while_redis_is_down() {
    // Nothing listens on this port: building storage and a service works,
    // requests get the 503 until Redis is there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let storage = RedisStorage::open(&format!("redis://127.0.0.1:{port}/")).unwrap();
    let app = TestApp::new(
        Arc::new(storage),
        SessionConfig::builder().store_timeout(Duration::from_millis(300)),
    );
    let reply = app.call(post_request("/set/x", None)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.call(get_request("/untouched", None)).await.body,
        "untouched"
    );
}

#[test]
fn prefixes_with_hash_tags_are_refused() {
    let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    assert!(
        RedisStorage::builder(client.clone())
            .prefix("s{1}:")
            .build()
            .is_err()
    );
    assert!(
        RedisStorage::builder(client)
            .prefix("sessions:")
            .build()
            .is_ok()
    );
}

/// Storage and a raw connection on a fresh server, for planting records.
async fn planted() -> Option<(
    Redis,
    RedisStorage,
    redis::aio::MultiplexedConnection,
    String,
)> {
    let redis = Redis::start()?;
    let prefix = unique_prefix("planted");
    let storage = storage(&redis, &prefix, Duration::from_secs(2));
    let connection = inspect(&redis).await;
    Some((redis, storage, connection, prefix))
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_stored_values_are_decode_errors_never_backend_failures() {
    let Some((_redis, storage, mut connection, prefix)) = planted().await else {
        return;
    };
    let now = Timestamp::now();
    let later = now
        .saturating_add(Duration::from_secs(600))
        .as_unix_millis();
    let key = SessionId::generate().unwrap().key();
    let redis_key = format!("{prefix}{key}");
    let cases: [(&str, Vec<(&str, String)>); 3] = [
        (
            "a plus sign",
            vec![("m", format!("1;+1;{later};{later};1"))],
        ),
        (
            "a version past u64",
            vec![("m", format!("1;1;{later};{later};99999999999999999999"))],
        ),
        ("a value of another type", vec![]),
    ];
    for (label, fields) in cases {
        let _: () = redis::cmd("DEL")
            .arg(&redis_key)
            .query_async(&mut connection)
            .await
            .unwrap();
        if fields.is_empty() {
            let _: () = redis::cmd("SET")
                .arg(&redis_key)
                .arg("text")
                .query_async(&mut connection)
                .await
                .unwrap();
        } else {
            let _: () = redis::cmd("HSET")
                .arg(&redis_key)
                .arg(fields)
                .query_async(&mut connection)
                .await
                .unwrap();
        }
        let load = storage.load(&key, now).await;
        assert!(
            matches!(load, Err(Error::Decode(_))),
            "{label}: load gave {load:?}"
        );
        let touch = storage
            .touch(&key, now.saturating_add(Duration::from_secs(60)), now)
            .await;
        assert!(
            matches!(touch, Err(Error::Decode(_))),
            "{label}: touch gave {touch:?}"
        );
    }
    // Through HTTP, a cookie naming such a key is no session, not a 503.
    let app = TestApp::with_defaults(Arc::new(storage));
    let id = SessionId::generate().unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}{}", id.key()))
        .arg("text")
        .query_async(&mut connection)
        .await
        .unwrap();
    let reply = app
        .call(get_request(
            "/names",
            Some(&format!("__Host-id={}", id.to_cookie_value())),
        ))
        .await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, ""));
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_saturate_and_unknown_fields_are_kept_aside() {
    let Some((_redis, storage, mut connection, prefix)) = planted().await else {
        return;
    };
    let now = Timestamp::now();
    let later = now
        .saturating_add(Duration::from_secs(600))
        .as_unix_millis();
    let key = SessionId::generate().unwrap().key();
    let redis_key = format!("{prefix}{key}");
    let meta = format!("1;1;{later};{later};{}", u64::MAX);
    let _: () = redis::cmd("HSET")
        .arg(&redis_key)
        .arg(&[("m", meta.as_str()), ("future-field", "kept")])
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        storage.load(&key, now).await.unwrap().unwrap().version,
        u64::MAX
    );
    let mut changes = ChangeSet::new();
    changes.insert("n", Value::encode(&1).unwrap());
    let deadlines = Deadlines::new(now.saturating_add(Duration::from_secs(60)), Timestamp::MAX);
    let outcome = storage
        .update(&key, &changes, deadlines, now)
        .await
        .unwrap();
    assert_eq!(outcome, UpdateOutcome::Updated { version: u64::MAX });
    let kept: Option<String> = redis::cmd("HGET")
        .arg(&redis_key)
        .arg("future-field")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("kept"));
}

#[tokio::test(flavor = "multi_thread")]
async fn far_deadlines_get_a_finite_ttl() {
    let Some((_redis, storage, mut connection, prefix)) = planted().await else {
        return;
    };
    let now = Timestamp::now();
    let key = SessionId::generate().unwrap().key();
    let record = Record::new(
        SessionData::new(),
        now,
        Deadlines::new(Timestamp::MAX, Timestamp::MAX),
    );
    assert_eq!(
        storage.create(&key, &record, now).await.unwrap(),
        CreateOutcome::Created
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}{key}"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(ttl > 0, "PTTL {ttl}");
    assert!(storage.load(&key, now).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_whose_reply_was_dropped_is_not_resent() {
    let Some(Redis::Spawned(server)) = Redis::start() else {
        eprintln!("skipped: needs a redis-server this test can put a proxy in front of");
        return;
    };
    let faults = Faults::new();
    let proxy = ReplyDropper::start(
        SocketAddr::from(([127, 0, 0, 1], server.port())),
        faults.clone(),
    );
    let prefix = unique_prefix("dropped");
    let storage =
        session_tests::redis_server::storage(&proxy.url(), &prefix, Duration::from_secs(2));
    let now = Timestamp::now();
    let key = created_with(&storage, &[("n", 1)], now).await;
    let target = format!("{prefix}{key}");
    faults.drop_reply(move |command| is_script_on(command, &target));

    let outcome = storage
        .update(&key, &increment("n", 1, 2), deadlines(now), now)
        .await;
    assert_eq!(faults.dropped(), 1, "the update's reply was dropped");
    // The connection manager reports the broken connection and does not
    // send the update again: it ran exactly once.
    assert!(matches!(outcome, Err(Error::Backend(_))), "{outcome:?}");
    let record = storage.load(&key, now).await.unwrap().unwrap();
    assert_eq!((record.version, int_at(&record.data, "n")), (2, Some(2)));
}

/// A hash of `fields` values of `size` bytes each, plus live metadata.
fn huge_hash(now: Timestamp, fields: usize, size: usize) -> Vec<(String, Vec<u8>)> {
    let later = now
        .saturating_add(Duration::from_secs(600))
        .as_unix_millis();
    let mut hash = vec![(
        "m".to_owned(),
        format!("1;1;{later};{later};1").into_bytes(),
    )];
    hash.extend((0..fields).map(|n| (format!("d:k{n}"), vec![b'x'; size])));
    hash
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_stored_hash_is_too_large_on_load_and_left_alone() {
    let Some((_redis, storage, mut connection, prefix)) = planted().await else {
        return;
    };
    let harness = RedisHarness::new(storage.clone());
    let now = Timestamp::now();
    let key = fresh_key();
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}{key}"))
        .arg(huge_hash(now, 512, 1024))
        .query_async(&mut connection)
        .await
        .unwrap();
    let before = harness.read_raw(&key).await.unwrap();

    let load = storage.load(&key, now).await;
    assert!(
        matches!(load, Err(Error::TooLarge { size, limit })
            if limit == DEFAULT_MAX_RECORD_BYTES && size > 512 * 1024),
        "{load:?}"
    );
    assert_eq!(harness.read_raw(&key).await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn records_planted_unchecked_have_the_real_layout() {
    let Some((_redis, storage, _connection, _prefix)) = planted().await else {
        return;
    };
    let harness = RedisHarness::new(storage.clone());
    let now = Timestamp::now();
    let small = record_with(&[("a", 1), ("b", 2)], now);
    let key = fresh_key();
    harness
        .write_record_unchecked(&key, &small, now)
        .await
        .unwrap();
    assert_eq!(storage.load(&key, now).await.unwrap(), Some(small));

    let mut oversized = record_with(&[], now);
    let value = Value::encode(&vec![7_u8; harness.max_record_bytes()]).unwrap();
    oversized.data.insert_value("big".to_owned(), value);
    let key = fresh_key();
    harness
        .write_record_unchecked(&key, &oversized, now)
        .await
        .unwrap();
    let before = harness.read_raw(&key).await.unwrap();
    let load = storage.load(&key, now).await;
    assert!(matches!(load, Err(Error::TooLarge { .. })), "{load:?}");
    assert_eq!(harness.read_raw(&key).await.unwrap(), before);
}

/// A user of one test.
fn user_of_test() -> session_core::UserKey {
    session_core::UserKey::of(&fresh_key().to_string())
}

/// Logs a fresh session of `user` in at `now`; its key.
async fn logged_in(
    storage: &RedisStorage,
    user: session_core::UserKey,
    now: Timestamp,
) -> session_core::SessionKey {
    let new = fresh_key();
    let outcome = storage
        .login(
            None,
            &new,
            &ChangeSet::new(),
            deadlines(now),
            &session_core::Login::new(user),
            now,
        )
        .await
        .unwrap();
    assert_eq!(outcome, session_core::LoginOutcome::LoggedIn { revoked: 0 });
    new
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_cost_no_round_trip_on_unbound_requests_and_one_script_on_hinted_ones() {
    let Some(redis) = Redis::start() else { return };
    let storage = storage(&redis, &unique_prefix("acct-trips"), Duration::from_secs(2));
    let now = Timestamp::now();
    let trips = |before: u64| storage.round_trips() - before;
    let idle = deadlines(now).idle();
    let changes = increment("n", 1, 2);

    let before = storage.round_trips();
    let plain = created_with(&storage, &[("n", 1)], now).await;
    let loaded = storage.load(&plain, now).await.unwrap().unwrap();
    let _outcome = storage
        .update(&plain, &changes, deadlines(now), now)
        .await
        .unwrap();
    let _outcome = storage.touch(&plain, idle, now).await.unwrap();
    storage.delete(&plain).await.unwrap();
    assert_eq!(
        trips(before),
        5,
        "unbound create, load, update, touch, delete"
    );
    assert!(loaded.account.is_none());

    let user = user_of_test();
    let bound = logged_in(&storage, user, now).await;
    let loaded = storage.load(&bound, now).await.unwrap().unwrap();
    let before = storage.round_trips();
    let _outcome = storage
        .update_from(&bound, &loaded, &ChangeSet::new(), deadlines(now), now)
        .await
        .unwrap();
    let _outcome = storage
        .touch_from(&bound, &loaded, idle, now)
        .await
        .unwrap();
    assert_eq!(
        trips(before),
        2,
        "hinted bound update and touch: one script each"
    );
    let before = storage.round_trips();
    let _outcome = storage
        .update(&bound, &ChangeSet::new(), deadlines(now), now)
        .await
        .unwrap();
    let _outcome = storage.touch(&bound, idle, now).await.unwrap();
    storage.delete(&bound).await.unwrap();
    assert_eq!(
        trips(before),
        6,
        "plain bound writes: 'bound', then again with the index"
    );
    let before = storage.round_trips();
    logged_in(&storage, user, now).await;
    assert_eq!(trips(before), 1, "a login without a limit");
}

/// The index's PTTL and the longest of its members' PTTLs.
async fn ttls(
    connection: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    user: session_core::UserKey,
    members: &[session_core::SessionKey],
) -> (i64, i64) {
    let mut longest = -2;
    for key in members {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}{key}"))
            .query_async(connection)
            .await
            .unwrap();
        longest = longest.max(ttl);
    }
    let index: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}user:{user}"))
        .query_async(connection)
        .await
        .unwrap();
    (index, longest)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_index_lives_as_long_as_its_longest_member_and_no_longer() {
    let Some((_redis, storage, mut connection, prefix)) = planted().await else {
        return;
    };
    let harness = RedisHarness::new(storage.clone());
    let now = Timestamp::now();
    let user = user_of_test();
    let short = Deadlines::new(
        now.saturating_add(Duration::from_secs(60)),
        now.saturating_add(Duration::from_secs(120)),
    );
    let login = session_core::Login::new(user);
    let brief = fresh_key();
    let outcome = storage
        .login(None, &brief, &ChangeSet::new(), short, &login, now)
        .await
        .unwrap();
    assert_eq!(outcome, session_core::LoginOutcome::LoggedIn { revoked: 0 });
    let long = logged_in(&storage, user, now).await;
    let keys = [brief, long];
    let check = |(index, longest): (i64, i64), label: &str| {
        assert!(index > 0, "{label}: the index has a TTL ({index})");
        assert!(
            index <= longest,
            "{label}: index {index} ms, longest member {longest} ms"
        );
        assert!(
            longest - index < 10_000,
            "{label}: index {index} ms, longest member {longest} ms"
        );
    };
    check(
        ttls(&mut connection, &prefix, user, &keys).await,
        "after logins",
    );

    // Later writes move both members' expiry, and the index's with them.
    let later = now.saturating_add(Duration::from_secs(1));
    let loaded = storage.load(&brief, now).await.unwrap().unwrap();
    let _outcome = storage
        .update_from(&brief, &loaded, &ChangeSet::new(), short, later)
        .await
        .unwrap();
    let _outcome = storage
        .touch(&long, deadlines(later).idle(), later)
        .await
        .unwrap();
    check(
        ttls(&mut connection, &prefix, user, &keys).await,
        "after update and touch",
    );

    storage.delete(&long).await.unwrap();
    check(
        ttls(&mut connection, &prefix, user, &keys).await,
        "after a logout",
    );
    let (index, _) = ttls(&mut connection, &prefix, user, &keys).await;
    assert!(
        index <= 120_000,
        "the index follows its remaining member down: {index}"
    );

    // Past the short one's deadline an index operation prunes it.
    let past = short.expires_at().saturating_add(Duration::from_secs(1));
    let another = logged_in(&storage, user, past).await;
    assert_eq!(harness.index_members(&user).await.unwrap(), vec![another]);
    storage
        .revoke(&user, &session_core::Revoke::All, past)
        .await
        .unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("{prefix}user:{user}"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!exists, "the index is gone with its last member");
}
