//! The server side of the soak: routes for each kind of traffic, behind
//! the session layer, counting the errors handlers see from the library.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use session_http::{Session, SessionError, SessionLayer};

/// The session key the increment traffic counts in.
pub(crate) const COUNTER: &str = "n";

/// Errors the handlers got from `Session` methods, by kind. End-of-request
/// write failures never reach a handler: the client sees those as 503s.
#[derive(Debug, Default)]
pub struct HandlerErrors {
    /// A storage call that did not finish within the store timeout.
    pub timeout: AtomicU64,
    /// Any other storage failure.
    pub storage: AtomicU64,
    pub poisoned: AtomicU64,
    pub contended: AtomicU64,
    pub gone: AtomicU64,
    pub other: AtomicU64,
}

impl HandlerErrors {
    /// Counts `error` and hands it back, for `map_err`.
    fn note(&self, error: SessionError) -> SessionError {
        let count = match &error {
            SessionError::Storage(session_core::Error::Timeout(_)) => &self.timeout,
            SessionError::Storage(_) => &self.storage,
            SessionError::Poisoned => &self.poisoned,
            SessionError::Contended { .. } => &self.contended,
            SessionError::Gone => &self.gone,
            _ => &self.other,
        };
        count.fetch_add(1, Ordering::Relaxed);
        error
    }
}

type Errors = State<Arc<HandlerErrors>>;

/// The soak's routes behind `layer`. Handlers answer errors the library's
/// way (`SessionError` as a response: 503 for storage trouble).
pub(crate) fn router(layer: SessionLayer, errors: Arc<HandlerErrors>) -> Router {
    Router::new()
        .route("/dump", get(dump))
        .route("/put/{key}/{value}", post(put))
        .route("/del/{key}", post(del))
        .route("/incr", post(increment))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .with_state(errors)
        .layer(layer)
}

/// Every key and value, one `key=value` line each, sorted by key.
async fn dump(State(errors): Errors, session: Session) -> Result<String, SessionError> {
    let noted = |error| errors.note(error);
    let mut keys = session.names().await.map_err(noted)?;
    keys.sort();
    let mut body = String::new();
    for key in keys {
        let value = if key == COUNTER {
            let count: Option<u64> = session.get(&key).await.map_err(noted)?;
            count.map(|count| count.to_string())
        } else {
            session.get::<String>(&key).await.map_err(noted)?
        };
        if let Some(value) = value {
            body.push_str(&format!("{key}={value}\n"));
        }
    }
    Ok(body)
}

async fn put(
    State(errors): Errors,
    session: Session,
    Path((key, value)): Path<(String, String)>,
) -> Result<&'static str, SessionError> {
    session
        .insert(&key, &value)
        .await
        .map_err(|error| errors.note(error))?;
    Ok("ok")
}

async fn del(
    State(errors): Errors,
    session: Session,
    Path(key): Path<String>,
) -> Result<&'static str, SessionError> {
    session
        .remove(&key)
        .await
        .map_err(|error| errors.note(error))?;
    Ok("ok")
}

async fn increment(State(errors): Errors, session: Session) -> Result<String, SessionError> {
    let count = session
        .update(COUNTER, |count: Option<u64>| count.unwrap_or(0) + 1)
        .await
        .map_err(|error| errors.note(error))?;
    Ok(count.to_string())
}

async fn login(State(errors): Errors, session: Session) -> Result<&'static str, SessionError> {
    session
        .cycle_id()
        .await
        .map_err(|error| errors.note(error))?;
    Ok("ok")
}

async fn logout(State(errors): Errors, session: Session) -> Result<&'static str, SessionError> {
    session
        .destroy()
        .await
        .map_err(|error| errors.note(error))?;
    Ok("ok")
}
