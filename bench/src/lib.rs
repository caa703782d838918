//! The app every benchmark variant serves, shared by the `server` and
//! `requests` binaries.
//!
//! Variants: `bare` (no sessions); `ours-memory`, `ours-redis`,
//! `ours-sqlite` (this workspace); `ts-memory` (tower-sessions 0.15's
//! MemoryStore), `ts-moka`, `ts-redis`, `ts-sqlite` (tower-sessions 0.14
//! with its stores). Cookies unsigned, `Secure` off, idle expiry one hour,
//! an integer under one key. Routes: `GET /counter` (read n, store n+1,
//! answer it), `GET /read` (answer n), `GET /new` (create n=1),
//! `GET /counter-atomic` (this workspace's `update`); `ours-redis` also
//! answers `GET /__round-trips` with the Redis calls its storage made.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

const IDLE: Duration = Duration::from_secs(3600);

/// Where the variants that need a server find it.
pub struct Backends {
    /// A Redis URL.
    pub redis: String,
    /// A SQLite database file.
    pub sqlite: String,
}

impl Default for Backends {
    fn default() -> Self {
        Self {
            redis: "redis://127.0.0.1:6379".to_owned(),
            sqlite: "bench-sessions.db".to_owned(),
        }
    }
}

pub mod counting;

mod ours {
    use super::*;
    use session_core::SessionStorage;
    use session_http::{Session, SessionConfig, SessionError, SessionLayer};

    async fn counter(session: Session) -> Result<String, StatusCode> {
        let n: i64 = session
            .get("n")
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
            .unwrap_or(0);
        session
            .insert("n", &(n + 1))
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok((n + 1).to_string())
    }

    async fn read(session: Session) -> Result<String, StatusCode> {
        let n: Option<i64> = session
            .get("n")
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(n.unwrap_or(0).to_string())
    }

    async fn new(session: Session) -> Result<String, StatusCode> {
        session
            .insert("n", &1_i64)
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok("1".to_owned())
    }

    /// Answers the error's own response: 503 for `Contended`, which the
    /// load counts apart.
    async fn counter_atomic(session: Session) -> Result<String, SessionError> {
        let n = session
            .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
            .await?;
        Ok(n.to_string())
    }

    pub(crate) fn router(storage: Arc<dyn SessionStorage>) -> Router {
        let config = SessionConfig::builder()
            .secure(false)
            .idle_timeout(IDLE)
            .build()
            .expect("valid configuration");
        Router::new()
            .route("/counter", get(counter))
            .route("/read", get(read))
            .route("/new", get(new))
            .route("/counter-atomic", get(counter_atomic))
            .layer(SessionLayer::from_arc(storage).with_config(config))
    }
}

/// The same handlers for both tower-sessions versions (their `Session`
/// types differ).
macro_rules! tower_sessions_app {
    ($name:ident, $crate_name:ident) => {
        mod $name {
            use super::*;
            use $crate_name::{Expiry, Session, SessionManagerLayer, SessionStore};

            async fn counter(session: Session) -> Result<String, StatusCode> {
                let n: i64 = session
                    .get("n")
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
                    .unwrap_or(0);
                session
                    .insert("n", n + 1)
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                Ok((n + 1).to_string())
            }

            async fn read(session: Session) -> Result<String, StatusCode> {
                let n: Option<i64> = session
                    .get("n")
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                Ok(n.unwrap_or(0).to_string())
            }

            async fn new(session: Session) -> Result<String, StatusCode> {
                session
                    .insert("n", 1_i64)
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                Ok("1".to_owned())
            }

            pub(crate) fn router<S: SessionStore + Clone>(store: S) -> Router {
                let layer = SessionManagerLayer::new(store)
                    .with_secure(false)
                    .with_expiry(Expiry::OnInactivity(time::Duration::seconds(3600)));
                Router::new()
                    .route("/counter", get(counter))
                    .route("/read", get(read))
                    .route("/new", get(new))
                    .layer(layer)
            }
        }
    };
}

tower_sessions_app!(ts14, tower_sessions);
tower_sessions_app!(ts15, tower_sessions_015);

/// The app of `variant`.
pub async fn app(variant: &str, options: &Backends) -> Router {
    match variant {
        "bare" => Router::new()
            .route("/counter", get(|| async { "1" }))
            .route("/read", get(|| async { "1" }))
            .route("/new", get(|| async { "1" }))
            .route("/counter-atomic", get(|| async { "1" })),
        "ours-memory" => ours::router(Arc::new(session_memory::MemoryStorage::new())),
        "ours-redis" => {
            let storage = session_redis::RedisStorage::open(&options.redis).expect("redis url");
            // Round trips counted by the client, for the load generator.
            let counted = storage.clone();
            ours::router(Arc::new(storage)).route(
                "/__round-trips",
                get(move || {
                    let counted = counted.clone();
                    async move { counted.round_trips().to_string() }
                }),
            )
        }
        "ours-sqlite" => {
            let url = format!("sqlite://{}", options.sqlite);
            ours::router(Arc::new(
                session_sqlite::SqliteStorage::open(&url)
                    .await
                    .expect("sqlite file"),
            ))
        }
        "ts-memory" => ts15::router(tower_sessions_015::MemoryStore::default()),
        "ts-moka" => ts14::router(tower_sessions_moka_store::MokaStore::new(Some(1_000_000))),
        "ts-redis" => {
            use tower_sessions_redis_store::fred::prelude::*;
            let pool = Pool::new(
                Config::from_url(&options.redis).expect("redis url"),
                None,
                None,
                None,
                6,
            )
            .expect("fred pool");
            let _connection = pool.connect();
            pool.wait_for_connect().await.expect("redis reachable");
            ts14::router(tower_sessions_redis_store::RedisStore::new(pool))
        }
        "ts-sqlite" => {
            use tower_sessions_sqlx_store::sqlx::sqlite::{
                SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous,
            };
            // The same pragmas as this workspace's SQLite storage.
            let connect = SqliteConnectOptions::new()
                .filename(&options.sqlite)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePool::connect_with(connect)
                .await
                .expect("sqlite file");
            let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
            store.migrate().await.expect("tower-sessions migration");
            ts14::router(store)
        }
        other => panic!("unknown variant {other}"),
    }
}
