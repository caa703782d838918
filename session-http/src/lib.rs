//! Cookie sessions for [tower] services: axum, hyper, and anything else
//! built on `http` types.
//!
//! [`SessionLayer`] gives every request a [`Session`]: a handle that loads
//! the session from storage the first time the handler asks, and saves what
//! the handler changed once it has answered. The browser holds only a random
//! id in a cookie (`HttpOnly; Secure; SameSite=Lax; Path=/` by default);
//! storage holds the data under a hash of that id.
//!
//! - **Lazy**: a request that never touches its session costs no storage
//!   call; one that only reads costs one `load` and writes nothing, except
//!   a throttled `touch` when the idle deadline runs low.
//! - **Concurrent requests keep each other's changes**: changes are written
//!   as change sets applied atomically to the stored session, and
//!   [`Session::update`] is a conditioned read-modify-write with retries.
//! - **Logout wins**: once a session is destroyed, a request still in
//!   flight cannot bring it back.
//! - **Expiry**: idle and absolute timeouts, both checked on every load;
//!   a session may choose its own within the layer's bounds, and a
//!   persistent cookie (remember me), with [`Session::set_lifetime`].
//! - **Ids renewed**: at login ([`Session::login`], [`Session::cycle_id`]),
//!   and, with [`rotate_after`](SessionConfigBuilder::rotate_after), once
//!   an id is old, with a grace window for requests still using the old
//!   one.
//! - **Store failures** answer `503` with an empty body and `Retry-After`
//!   (configurable), never a panic and never a cookie for unsaved data.
//!
//! Storage is any [`SessionStorage`]; the
//! memory backend comes with the default feature `memory`
//! ([`memory::MemoryStorage`]), Redis with the feature `redis`, SQLite with
//! the feature `sqlite`.
//!
//! ## With plain hyper
//!
//! The original's `session_data(request)` is [`session_data`]:
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper::body::Incoming;
//! use hyper::server::conn::http1;
//! use hyper::{Request, Response, StatusCode};
//! use hyper_util::rt::TokioIo;
//! use hyper_util::service::TowerToHyperService;
//! use session_http::{SessionLayer, memory::MemoryStorage, session_data};
//! use tokio::net::TcpListener;
//! use tower::ServiceBuilder;
//!
//! async fn visits(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     let Ok(session) = session_data(&request) else {
//!         return Ok(status(StatusCode::INTERNAL_SERVER_ERROR));
//!     };
//!     let counted = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await;
//!     Ok(match counted {
//!         Ok(n) => Response::new(Full::from(format!("visit number {n}"))),
//!         // The layer answers 503 anyway when storage fails.
//!         Err(_) => status(StatusCode::SERVICE_UNAVAILABLE),
//!     })
//! }
//!
//! fn status(code: StatusCode) -> Response<Full<Bytes>> {
//!     let mut response = Response::new(Full::default());
//!     *response.status_mut() = code;
//!     response
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let service = ServiceBuilder::new()
//!         .layer(SessionLayer::new(MemoryStorage::new()))
//!         .service_fn(visits);
//!     let listener = TcpListener::bind("127.0.0.1:3000").await?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         let service = TowerToHyperService::new(service.clone());
//!         tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
//!     }
//! }
//! ```
//!
//! [tower]: https://docs.rs/tower
#![cfg_attr(feature = "axum", doc = include_str!("../docs/axum.md"))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod cookie;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod failure;
mod layer;
mod lifetime;
mod service;
mod session;
mod throttle;

pub use config::{
    Clock, ConfigError, DEFAULT_COOKIE_NAME, SameSite, SessionConfig, SessionConfigBuilder,
};
pub use error::{MissingSessionLayer, SessionError};
pub use failure::{ServiceUnavailable, StoreFailureResponse};
pub use layer::SessionLayer;
pub use service::{ResponseFuture, SessionService};
pub use session::{Session, SessionInfo};
/// The storage contract, whole: for writing a custom store.
pub use session_core;
/// A session's own cookie kind and timeouts, for [`Session::set_lifetime`].
pub use session_core::Lifetime;
/// What the account calls take and return: the user a [`Login`] binds
/// (a [`UserKey`], the hash of the application's user id), the [`Device`]
/// facts it records, a session's [`Account`], and the [`SessionHandle`],
/// [`Timestamp`]s and [`Deadlines`] of a [`SessionInfo`].
pub use session_core::{Account, Deadlines, Device, Login, SessionHandle, Timestamp, UserKey};
/// What an application using this crate names: the storage it hands the
/// layer, the id [`Session::id`] returns, and the storage failure inside
/// [`SessionError::Storage`].
pub use session_core::{Error as StorageError, SessionId, SessionStorage};

/// The in-process memory backend (feature `memory`, on by default).
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub mod memory {
    pub use session_memory::{
        DEFAULT_MAX_BYTES, DEFAULT_MAX_SESSIONS, MemoryStorage, MemoryStorageBuilder,
    };
}

/// The Redis backend (feature `redis`; `redis-cluster` adds Redis Cluster,
/// `redis-tls` adds `rediss://`).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis {
    pub use session_redis::{
        DEFAULT_PREFIX, DEFAULT_TIMEOUT, InvalidPrefix, RedisStorage, RedisStorageBuilder,
    };
}

/// The SQLite backend (feature `sqlite`).
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite {
    pub use session_sqlite::{
        CleanupTask, DEFAULT_BUSY_TIMEOUT, DEFAULT_TABLE, InvalidTableName, SqliteStorage,
        SqliteStorageBuilder,
    };
}

/// The request's session, as the original's `session_data(request)`.
///
/// # Errors
///
/// [`MissingSessionLayer`] if the request did not pass through a
/// [`SessionLayer`].
pub fn session_data<B>(request: &http::Request<B>) -> Result<Session, MissingSessionLayer> {
    request
        .extensions()
        .get::<Session>()
        .cloned()
        .ok_or(MissingSessionLayer)
}
