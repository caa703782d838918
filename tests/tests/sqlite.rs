//! The suites on real SQLite files, and what only SQLite has: durability
//! across reopening, corrupt rows, what reaches the disk, write locks, two
//! processes creating the schema at once, the cleanup task.

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use session_core::conformance::Harness;
use session_core::{
    ChangeSet, Clock, CreateOutcome, Deadlines, Error, Lifetime, Login, LoginOutcome, Record,
    SessionData, SessionHandle, SessionId, SessionKey, SessionStorage, Timestamp, UserKey,
};
use session_http::SessionConfig;
use session_sqlite::{SqliteHarness, SqliteStorage};
use session_tests::COOKIE;
use session_tests::app::{TestApp, get_request, post_request};
use session_tests::kept::Kept;
use sqlx::{Connection, Row, SqliteConnection};
use tempfile::TempDir;

fn url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("sessions.db").display())
}

/// Storage on a new file in a directory of its own.
async fn on_file() -> Kept<TempDir, SqliteHarness> {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    Kept::new(dir, SqliteHarness::new(storage))
}

mod conformance {
    session_core::conformance_tests!(super::on_file);
}

mod http_suite {
    session_tests::http_suite!(super::on_file);
}

fn id_of(pair: &str) -> SessionId {
    SessionId::parse(pair.split_once('=').unwrap().1).unwrap()
}

#[tokio::test]
async fn sessions_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    let app = TestApp::with_defaults(Arc::new(storage.clone()));
    let pair = app
        .call(post_request("/login?user=ada", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    drop(app);
    storage.pool().close().await;
    drop(storage);

    let reopened = SqliteStorage::open(&url(&dir)).await.unwrap();
    let app = TestApp::with_defaults(Arc::new(reopened));
    assert_eq!(
        app.call(get_request("/whoami", Some(&pair))).await.body,
        "ada"
    );
}

#[tokio::test]
async fn a_corrupt_row_is_no_session_and_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    let app = TestApp::with_defaults(Arc::new(storage.clone()));
    let good = app.session_with("x").await;
    let bad = app.session_with("y").await;
    let bad_key = id_of(&bad).key();
    sqlx::query("UPDATE sessions SET data = x'01c1ff' WHERE key = ?1")
        .bind(bad_key.as_bytes().as_slice())
        .execute(storage.pool())
        .await
        .unwrap();

    let load = storage.load(&bad_key, Timestamp::now()).await;
    assert!(matches!(load, Err(Error::Decode(_))), "{load:?}");
    let reply = app.call(get_request("/names", Some(&bad))).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, ""));
    let write = app.call(post_request("/set/z", Some(&bad))).await;
    let issued = write.cookie_pair(COOKIE).unwrap();
    assert_ne!(issued, bad, "a new session, never the corrupt one");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT data FROM sessions WHERE key = ?1")
        .bind(bad_key.as_bytes().as_slice())
        .fetch_one(storage.pool())
        .await
        .unwrap();
    assert_eq!(
        stored,
        [0x01, 0xc1, 0xff],
        "the corrupt row was not overwritten"
    );
    assert_eq!(app.call(get_request("/names", Some(&good))).await.body, "x");
}

#[tokio::test]
async fn the_files_on_disk_hold_no_session_id() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    let app = TestApp::with_defaults(Arc::new(storage.clone()));
    let mut ids = Vec::new();
    for _ in 0..20 {
        let pair = app.session_with("x").await;
        let login = app
            .call(post_request("/login?user=ada", Some(&pair)))
            .await
            .cookie_pair(COOKIE)
            .unwrap();
        app.call(post_request("/incr", Some(&login))).await;
        ids.extend([id_of(&pair), id_of(&login)]);
    }
    let files = ["sessions.db", "sessions.db-wal", "sessions.db-shm"];
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap_or_default();
    let check = |when: &str| {
        let contents: Vec<Vec<u8>> = files.iter().map(|name| read(name)).collect();
        assert!(!contents[0].is_empty(), "{when}: the database file exists");
        for id in &ids {
            let secret = id.to_cookie_value();
            for (name, bytes) in files.iter().zip(&contents) {
                let found = bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes());
                assert!(!found, "{when}: a session id in {name}");
            }
        }
    };
    check("while open (WAL in use)");
    storage.pool().close().await;
    check("after closing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_write_lock_is_waited_for_then_answered_with_503() {
    let dir = tempfile::tempdir().unwrap();
    let busy = Duration::from_secs(2);
    let hold = Duration::from_millis(100);
    let storage = SqliteStorage::builder()
        .busy_timeout(busy)
        .open(&url(&dir))
        .await
        .unwrap();
    let config = SessionConfig::builder().store_timeout(Duration::from_secs(10));
    let app = Arc::new(TestApp::new(Arc::new(storage), config));
    let mut other = SqliteConnection::connect(&url(&dir)).await.unwrap();

    // Held briefly: the write waits for it and succeeds.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let started = Instant::now();
    let waiting = {
        let app = app.clone();
        tokio::spawn(async move { app.call(post_request("/set/x", None)).await })
    };
    tokio::time::sleep(hold).await;
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let reply = waiting.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert!(reply.cookie_pair(COOKIE).is_some());
    assert!(
        started.elapsed() >= hold,
        "the write did not wait for the lock"
    );

    // Held past the busy timeout: a 503, no cookie, no panic.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let started = Instant::now();
    let reply = app.call(post_request("/set/y", None)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert!(reply.set_cookies().is_empty());
    assert!(
        started.elapsed() >= busy,
        "the write gave up before the busy timeout"
    );
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_creating_a_new_file_at_once_both_work() {
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let opens: Vec<_> = (0..2)
            .map(|_| {
                let (url, barrier) = (url(&dir), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    SqliteStorage::open(&url).await
                })
            })
            .collect();
        let mut storages = Vec::new();
        for open in opens {
            storages.push(open.await.unwrap().expect("both pools open the new file"));
        }
        let now = Timestamp::now();
        let key = SessionId::generate().unwrap().key();
        let deadlines = Deadlines::new(
            now.saturating_add(Duration::from_secs(60)),
            now.saturating_add(Duration::from_secs(60)),
        );
        let record = Record::new(SessionData::new(), now, deadlines);
        assert_eq!(
            storages[0].create(&key, &record, now).await.unwrap(),
            CreateOutcome::Created
        );
        assert!(storages[1].load(&key, now).await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cleanup_task_deletes_expired_rows_keeps_going_and_stops_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    let harness = SqliteHarness::new(storage.clone());
    let expired = || async {
        let now = Timestamp::now();
        let key = SessionId::generate().unwrap().key();
        let past = Deadlines::new(now, now);
        let record = Record::new(
            SessionData::new(),
            now.saturating_sub(Duration::from_secs(1)),
            past,
        );
        assert_eq!(
            storage.create(&key, &record, now).await.unwrap(),
            CreateOutcome::Created
        );
        key
    };
    let gone_within = |key, limit: Duration| {
        let harness = harness.clone();
        async move {
            let deadline = Instant::now() + limit;
            while harness.raw_exists(&key).await.unwrap() {
                if Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            true
        }
    };

    let cleanup = storage.spawn_cleanup(Duration::from_millis(50));
    assert!(gone_within(expired().await, Duration::from_secs(10)).await);

    // Failures (the table is gone) are logged; the task keeps running.
    sqlx::query("DROP TABLE sessions")
        .execute(storage.pool())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let storage = SqliteStorage::from_pool(storage.pool().clone())
        .await
        .unwrap();
    let harness = SqliteHarness::new(storage.clone());
    let key = {
        let now = Timestamp::now();
        let key = SessionId::generate().unwrap().key();
        let record = Record::new(SessionData::new(), now, Deadlines::new(now, now));
        assert_eq!(
            storage.create(&key, &record, now).await.unwrap(),
            CreateOutcome::Created
        );
        key
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while harness.raw_exists(&key).await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "the cleanup task stopped after an error"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    drop(cleanup);
    // A delete already handed to SQLite may still finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let now = Timestamp::now();
    let key = SessionId::generate().unwrap().key();
    let record = Record::new(SessionData::new(), now, Deadlines::new(now, now));
    assert_eq!(
        storage.create(&key, &record, now).await.unwrap(),
        CreateOutcome::Created
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        harness.raw_exists(&key).await.unwrap(),
        "a dropped cleanup task kept running"
    );
}

/// A clock stopped at `at` that counts how often it is read.
fn counting_clock(at: Timestamp) -> (Clock, Arc<AtomicUsize>) {
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&reads);
    let clock = Clock::from_fn(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        at
    });
    (clock, reads)
}

/// Creates a session holding `data` under a fresh key, ending at `end`.
async fn created(
    storage: &SqliteStorage,
    data: SessionData,
    now: Timestamp,
    end: Timestamp,
) -> SessionKey {
    let key = SessionId::generate().unwrap().key();
    let record = Record::new(data, now, Deadlines::new(end, end));
    let created = storage.create(&key, &record, now).await.unwrap();
    assert_eq!(created, CreateOutcome::Created);
    key
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cleanup_task_goes_by_the_configured_clock() {
    let dir = tempfile::tempdir().unwrap();
    let hour = Duration::from_secs(3_600);
    let real = Timestamp::now();
    let (clock, reads) = counting_clock(real.saturating_add(2 * hour));
    let storage = SqliteStorage::builder()
        .clock(clock)
        .open(&url(&dir))
        .await
        .unwrap();
    let harness = SqliteHarness::new(storage.clone());
    let expired = created(
        &storage,
        SessionData::new(),
        real,
        real.saturating_add(hour),
    )
    .await;
    let live = created(
        &storage,
        SessionData::new(),
        real,
        real.saturating_add(3 * hour),
    )
    .await;

    let _cleanup = storage.spawn_cleanup(Duration::from_millis(10));
    // Each pass reads the clock once, then deletes: the third read means
    // two passes have finished.
    let deadline = Instant::now() + Duration::from_secs(10);
    while reads.load(Ordering::SeqCst) < 3 {
        assert!(
            Instant::now() < deadline,
            "the cleanup task read the configured clock {} times",
            reads.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !harness.raw_exists(&expired).await.unwrap(),
        "a row expired by the configured clock was kept"
    );
    assert!(
        harness.raw_exists(&live).await.unwrap(),
        "a row live by the configured clock was deleted"
    );
}

#[tokio::test]
async fn the_table_name_is_configurable_and_validated() {
    assert!(SqliteStorage::builder().table("s; DROP TABLE x").is_err());
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::builder()
        .table("app_sessions")
        .unwrap()
        .open(&url(&dir))
        .await
        .unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(storage.pool())
            .await
            .unwrap();
    assert_eq!(tables, ["app_sessions"]);
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(storage.pool())
        .await
        .unwrap();
    assert_eq!(version, 3);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    sqlx::query("PRAGMA user_version = 99")
        .execute(storage.pool())
        .await
        .unwrap();
    assert!(
        SqliteStorage::from_pool(storage.pool().clone())
            .await
            .is_err()
    );
}

/// The table as schema version 1 made it, before accounts.
const VERSION_1_TABLE: &str = "CREATE TABLE sessions (
    key BLOB PRIMARY KEY NOT NULL,
    data BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    idle_deadline INTEGER NOT NULL,
    absolute_deadline INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID";

#[tokio::test]
async fn a_version_1_file_migrates_and_keeps_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::now();
    let end = now.saturating_add(Duration::from_secs(3_600));
    let key = SessionId::generate().unwrap().key();
    let mut data = SessionData::new();
    data.insert("cart", &3).unwrap();
    {
        let mut file = SqliteConnection::connect(&format!("{}?mode=rwc", url(&dir)))
            .await
            .unwrap();
        for statement in [
            VERSION_1_TABLE,
            "CREATE INDEX sessions_expires_at ON sessions (expires_at)",
            "PRAGMA user_version = 1",
        ] {
            sqlx::query(statement).execute(&mut file).await.unwrap();
        }
        let end = i64::try_from(end.as_unix_millis()).unwrap();
        sqlx::query("INSERT INTO sessions VALUES (?1, ?2, ?3, ?4, ?4, ?4, 7)")
            .bind(key.as_bytes().as_slice())
            .bind(data.encode().unwrap())
            .bind(i64::try_from(now.as_unix_millis()).unwrap())
            .bind(end)
            .execute(&mut file)
            .await
            .unwrap();
        file.close().await.unwrap();
    }

    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(storage.pool())
        .await
        .unwrap();
    assert_eq!(version, 3);
    let kept = storage.load(&key, now).await.unwrap().unwrap();
    assert_eq!(
        (kept.data.clone(), kept.version, kept.account),
        (data, 7, None)
    );

    // The migrated session logs in with its own lifetime, and its user
    // lists it.
    let user = UserKey::of("ada");
    let new = SessionId::generate().unwrap().key();
    let deadlines = Deadlines::new(end, end);
    let mut remember = ChangeSet::new();
    remember.set_lifetime(Lifetime::new().persistent(true));
    let outcome = storage
        .login(
            Some(&key),
            &new,
            &remember,
            deadlines,
            &Login::new(user),
            now,
        )
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 });
    let logged_in = storage.load(&new, now).await.unwrap().unwrap();
    assert_eq!(logged_in.lifetime, Lifetime::new().persistent(true));
    let listed = storage.list(&user, now).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, SessionHandle::of(&new));
    storage.pool().close().await;

    // Opening again finds nothing to do.
    let reopened = SqliteStorage::open(&url(&dir)).await.unwrap();
    assert_eq!(reopened.list(&user, now).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_version_1_table_in_a_file_at_version_2_gets_the_binding_columns() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStorage::open(&url(&dir)).await.unwrap();
    let old_table = VERSION_1_TABLE.replace("TABLE sessions", "TABLE old_sessions");
    sqlx::query(sqlx::AssertSqlSafe(old_table))
        .execute(first.pool())
        .await
        .unwrap();
    // The file says version 2, but `old_sessions` is as version 1 made it.
    let second = SqliteStorage::builder()
        .table("old_sessions")
        .unwrap()
        .from_pool(first.pool().clone())
        .await
        .unwrap();
    let now = Timestamp::now();
    let end = now.saturating_add(Duration::from_secs(60));
    let user = UserKey::of("ada");
    let key = SessionId::generate().unwrap().key();
    let outcome = second
        .login(
            None,
            &key,
            &ChangeSet::new(),
            Deadlines::new(end, end),
            &Login::new(user),
            now,
        )
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 });
    assert_eq!(second.list(&user, now).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_corrupt_binding_is_a_decode_error_when_loaded_or_listed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    let now = Timestamp::now();
    let end = now.saturating_add(Duration::from_secs(60));
    let user = UserKey::of("ada");
    for corruption in [
        "device = x'01c1ff'",
        "last_seen = 'yesterday'",
        "last_seen = NULL",
        "last_seen = -1",
        "device = NULL",
        "device = 'text'",
        "device = zeroblob(100000)",
        "user_key = x'00'",
        "user_key = printf('%32d', 1)",
    ] {
        let key = SessionId::generate().unwrap().key();
        let outcome = storage
            .login(
                None,
                &key,
                &ChangeSet::new(),
                Deadlines::new(end, end),
                &Login::new(user),
                now,
            )
            .await
            .unwrap();
        assert_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 });
        let corrupt = format!("UPDATE sessions SET {corruption} WHERE key = ?1");
        sqlx::query(sqlx::AssertSqlSafe(corrupt))
            .bind(key.as_bytes().as_slice())
            .execute(storage.pool())
            .await
            .unwrap();
        let load = storage.load(&key, now).await;
        assert!(
            matches!(load, Err(Error::Decode(_))),
            "{corruption}: {load:?}"
        );
        if !corruption.starts_with("user_key") {
            let list = storage.list(&user, now).await;
            assert!(
                matches!(list, Err(Error::Decode(_))),
                "{corruption}: {list:?}"
            );
        }
        sqlx::query("DELETE FROM sessions WHERE key = ?1")
            .bind(key.as_bytes().as_slice())
            .execute(storage.pool())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_users_sessions_are_found_through_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    let plan = sqlx::query(
        "EXPLAIN QUERY PLAN SELECT key FROM sessions WHERE user_key = ?1 AND expires_at > ?2",
    )
    .bind(vec![0_u8; 32])
    .bind(0_i64)
    .fetch_all(storage.pool())
    .await
    .unwrap();
    let steps: Vec<String> = plan.iter().map(|row| row.get("detail")).collect();
    assert!(
        steps
            .iter()
            .any(|step| step.contains("USING INDEX sessions_user (user_key=?)")),
        "{steps:?}"
    );
}

/// The user index of the first version 2, on `(user_key, expires_at)`,
/// made SQLite maintain it on every write (each moves `expires_at`):
/// opening such a file replaces it with the index on `user_key` alone.
#[tokio::test]
async fn the_first_user_index_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStorage::open(&url(&dir)).await.unwrap();
    for statement in [
        "DROP INDEX sessions_user",
        "CREATE INDEX sessions_user_key ON sessions (user_key, expires_at) \
         WHERE user_key IS NOT NULL",
    ] {
        sqlx::query(statement).execute(first.pool()).await.unwrap();
    }
    first.pool().close().await;
    let reopened = SqliteStorage::open(&url(&dir)).await.unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions' \
         AND name LIKE 'sessions_user%' ORDER BY name",
    )
    .fetch_all(reopened.pool())
    .await
    .unwrap();
    assert_eq!(indexes, ["sessions_user"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_expired_works_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    let now = Timestamp::now();
    for _ in 0..2_500 {
        let key = SessionId::generate().unwrap().key();
        let record = Record::new(SessionData::new(), now, Deadlines::new(now, now));
        assert_eq!(
            storage.create(&key, &record, now).await.unwrap(),
            CreateOutcome::Created
        );
    }
    assert_eq!(storage.delete_expired(now).await.unwrap(), 2_500);
    assert_eq!(storage.delete_expired(now).await.unwrap(), 0);
}

#[tokio::test]
async fn a_column_of_the_wrong_type_is_a_corrupt_row() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&url(&dir)).await.unwrap();
    let now = Timestamp::now();
    let key = SessionId::generate().unwrap().key();
    let later = now.saturating_add(Duration::from_secs(60));
    let record = Record::new(SessionData::new(), now, Deadlines::new(later, later));
    assert_eq!(
        storage.create(&key, &record, now).await.unwrap(),
        CreateOutcome::Created
    );
    sqlx::query("UPDATE sessions SET created_at = 'yesterday' WHERE key = ?1")
        .bind(key.as_bytes().as_slice())
        .execute(storage.pool())
        .await
        .unwrap();
    let load = storage.load(&key, now).await;
    assert!(matches!(load, Err(Error::Decode(_))), "{load:?}");
}

/// Storage in `dir` with a record size limit of `limit` bytes.
async fn limited(dir: &TempDir, limit: usize) -> SqliteStorage {
    SqliteStorage::builder()
        .max_record_bytes(limit)
        .open(&url(dir))
        .await
        .unwrap()
}

#[tokio::test]
async fn rows_over_the_size_limit_are_too_large_on_every_read_and_left_alone() {
    let limit = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let storage = limited(&dir, limit).await;
    let harness = SqliteHarness::new(storage.clone());
    let now = Timestamp::now();
    let hour = now.saturating_add(Duration::from_secs(3_600));
    let mut over = SessionData::new();
    over.insert("blob", &vec![7_u8; limit]).unwrap();
    let over = over.encode().unwrap();
    // Data that decodes but is over the limit, and bytes longer than any
    // data within the limit: zeros, which would be `Decode` if fetched and
    // decoded, so `TooLarge` shows they were refused unread.
    let longest = SessionData::max_encoded_len(limit);
    let plants: [(&str, Vec<u8>); 2] = [("decodable", over), ("too long", vec![0; longest + 1])];
    for (label, bytes) in plants {
        let key = created(&storage, SessionData::new(), now, hour).await;
        sqlx::query("UPDATE sessions SET data = ?2 WHERE key = ?1")
            .bind(key.as_bytes().as_slice())
            .bind(&bytes)
            .execute(storage.pool())
            .await
            .unwrap();
        let planted = harness.read_raw(&key).await.unwrap();
        let later = Deadlines::new(hour, hour);
        let new = SessionId::generate().unwrap().key();
        let changes = ChangeSet::new();
        let results = [
            storage.load(&key, now).await.map(drop),
            storage.update(&key, &changes, later, now).await.map(drop),
            storage
                .cycle(&key, &new, &changes, later, now)
                .await
                .map(drop),
        ];
        for (operation, result) in ["load", "update", "cycle"].iter().zip(results) {
            assert!(
                matches!(result, Err(Error::TooLarge { limit: 1_000, .. })),
                "{label}: {operation} gave {result:?}"
            );
        }
        assert_eq!(harness.read_raw(&key).await.unwrap(), planted, "{label}");
        assert!(!harness.raw_exists(&new).await.unwrap(), "{label}");
    }
}

#[tokio::test]
async fn data_at_the_limit_in_many_small_values_loads() {
    let limit = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let storage = limited(&dir, limit).await;
    // One-byte values under short names: the most encoding per byte of
    // size a real session has.
    let mut data = SessionData::new();
    for n in 0.. {
        let name = n.to_string();
        if data.size() + name.len() + 1 > limit {
            break;
        }
        data.insert(&name, &true).unwrap();
    }
    let now = Timestamp::now();
    let hour = now.saturating_add(Duration::from_secs(3_600));
    let key = created(&storage, data.clone(), now, hour).await;
    assert_eq!(storage.load(&key, now).await.unwrap().unwrap().data, data);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_in_memory_database_works() {
    let storage = SqliteStorage::open("sqlite::memory:").await.unwrap();
    let app = TestApp::with_defaults(Arc::new(storage));
    let pair = app.session_with("x").await;
    let reads: Vec<_> = (0..8)
        .map(|_| app.call(get_request("/names", Some(&pair))))
        .collect();
    for read in reads {
        assert_eq!(read.await.body, "x");
    }
}
