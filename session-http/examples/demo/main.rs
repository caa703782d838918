//! The demo: sessions in the browser, on memory storage by default.
//!
//! ```text
//! cargo run -p session-http --example demo
//! curl -c jar -b jar http://localhost:3000/session     # First time
//! curl -c jar -b jar http://localhost:3000/session     # The time was ...
//! curl -c jar -b jar http://localhost:3000/counter
//! curl -c jar -b jar -d user=ada http://localhost:3000/login   # -d remember=1: a month
//! curl -c jar -b jar http://localhost:3000/whoami
//! curl -c jar -b jar http://localhost:3000/sessions
//! curl -c jar -b jar -X POST http://localhost:3000/logout
//! ```
//!
//! The README walks through two devices of one user: listing their
//! sessions, revoking one, logging out everywhere.
//!
//! Options: `--listen ADDR` (default `127.0.0.1:3000`), `--store URL`
//! (`memory`, `redis://127.0.0.1:6379` with `--features redis`, or
//! `sqlite://sessions.db` with `--features sqlite`),
//! `--insecure` (cookies without `Secure`, for serving plain HTTP beyond
//! localhost), `--rotate-after SECS` (give a session a new id once its id
//! is that old, with a grace window for the old one) and `--grace SECS`
//! (that window, default 10).

mod accounts;
mod app;
mod options;

use std::any::Any;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use options::Options;
use session_http::memory::MemoryStorage;
use session_http::{SessionLayer, SessionStorage};
use tokio::net::TcpListener;

const USAGE: &str = "usage: demo [--listen ADDR] [--store memory|redis://HOST:PORT|sqlite://FILE] \
     [--insecure] [--rotate-after SECS] [--grace SECS]";

/// The storage a `--store` URL names.
/// Storage, and whatever must live as long as it (a cleanup task).
type Store = (Arc<dyn SessionStorage>, Option<Box<dyn Any + Send>>);

async fn open_storage(url: &str) -> Result<Store, String> {
    if url == "memory" {
        return Ok((Arc::new(MemoryStorage::new()), None));
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return open_redis(url);
    }
    if url.starts_with("sqlite:") {
        return open_sqlite(url).await;
    }
    Err(format!(
        "unsupported --store {url:?}: use memory, redis://HOST:PORT or sqlite://FILE"
    ))
}

#[cfg(feature = "redis")]
fn open_redis(url: &str) -> Result<Store, String> {
    let storage = session_http::redis::RedisStorage::open(url)
        .map_err(|error| format!("--store {url:?}: {error}"))?;
    Ok((Arc::new(storage), None))
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(url: &str) -> Result<Store, String> {
    let storage = session_http::sqlite::SqliteStorage::open(url)
        .await
        .map_err(|error| format!("--store {url:?}: {error}"))?;
    // Expired sessions are never loaded; this also removes them from disk,
    // for as long as the demo runs.
    let cleanup = storage.spawn_cleanup(std::time::Duration::from_secs(60));
    Ok((Arc::new(storage), Some(Box::new(cleanup))))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(url: &str) -> Result<Store, String> {
    Err(format!(
        "--store {url:?} needs the sqlite feature: \
         cargo run -p session-http --example demo --features sqlite -- --store {url}"
    ))
}

#[cfg(not(feature = "redis"))]
fn open_redis(url: &str) -> Result<Store, String> {
    Err(format!(
        "--store {url:?} needs the redis feature: \
         cargo run -p session-http --example demo --features redis -- --store {url}"
    ))
}

/// One line per request: method, path, status, latency. Never the cookie.
async fn log_request(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(%method, path, status = response.status().as_u16(), latency = ?started.elapsed());
    response
}

async fn shutdown() {
    if tokio::signal::ctrl_c().await.is_ok() {
        tracing::info!("shutting down");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_target(false).init();
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (storage, _cleanup) = match open_storage(&options.store).await {
        Ok(store) => store,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if options.insecure {
        tracing::warn!(
            "--insecure: session cookies are sent without `Secure`, readable on the network"
        );
    } else if !options.listen.ip().is_loopback() {
        tracing::warn!(
            "browsers send `Secure` cookies over plain HTTP only to localhost; \
             serve HTTPS in front of this address, or pass --insecure for a trial"
        );
    }
    let config = match options.config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let app = app::router(SessionLayer::from_arc(storage).with_config(config))
        .layer(middleware::from_fn(log_request));
    let listener = match TcpListener::bind(options.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {}: {error}", options.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().unwrap_or(options.listen);
    let host = if address.ip().is_loopback() {
        "localhost".to_owned()
    } else {
        address.ip().to_string()
    };
    println!(
        "Sessions demo on http://{host}:{}/ ({} storage); Ctrl-C stops it",
        address.port(),
        options.store
    );
    match axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("server failed: {error}");
            ExitCode::FAILURE
        }
    }
}
