//! No session id in the traces, on every backend: a full life cycle
//! (create, read, update, touch, login, logout, malformed and duplicate
//! cookies, a corrupt record, store failures) under a TRACE capture of
//! every target.
//!
//! Also: what anyone can make the layer log is rate-limited.
//!
//! Each test runs the backends one after another, in a binary of its own:
//! tracing caches per-callsite interest process-wide, so a capture is only
//! complete when no other test registers callsites at the same time. The
//! two tests share a lock for that reason.

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::time::Duration;

use session_memory::{MemoryHarness, MemoryStorage};
use session_redis::RedisHarness;
use session_sqlite::{SqliteHarness, SqliteStorage};
use session_tests::redis_server::{Redis, storage, unique_prefix};
use session_tests::suite::{
    client_triggered_logs_are_rate_limited, traces_never_contain_a_session_id,
};

/// Held by each test: one capture at a time.
static CAPTURE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn traces_never_contain_a_session_id_on_any_backend() {
    let _alone = CAPTURE.lock().await;
    traces_never_contain_a_session_id(&MemoryHarness::new(MemoryStorage::new())).await;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let sqlite = SqliteStorage::open(&url).await.unwrap();
    traces_never_contain_a_session_id(&SqliteHarness::new(sqlite)).await;

    if let Some(redis) = Redis::start() {
        let storage = storage(
            &redis.url(),
            &unique_prefix("traces"),
            Duration::from_secs(2),
        );
        traces_never_contain_a_session_id(&RedisHarness::new(storage)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_triggered_logs_are_rate_limited_on_memory() {
    let _alone = CAPTURE.lock().await;
    client_triggered_logs_are_rate_limited(&MemoryHarness::new(MemoryStorage::new())).await;
}
