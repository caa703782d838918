//! The demo's account routes: a user's sessions as JSON, and revoking
//! them. Times are RFC 3339 strings in UTC, to the second; a request with
//! no logged-in session gets `401 {"error": "not logged in"}`.

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use session_http::{Session, SessionError, SessionHandle, SessionInfo, Timestamp};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `GET /sessions`, `POST /sessions/revoke-others`,
/// `POST /sessions/{handle}/revoke` and `POST /logout-everywhere`.
pub(crate) fn routes() -> Router {
    Router::new()
        .route("/sessions", get(sessions))
        .route("/sessions/revoke-others", post(revoke_others))
        .route("/sessions/{handle}/revoke", post(revoke))
        .route("/logout-everywhere", post(logout_everywhere))
}

/// One session in `GET /sessions`.
#[derive(Serialize)]
struct Listed {
    handle: String,
    current: bool,
    created_at: String,
    last_seen: String,
    expires_at: String,
    user_agent: Option<String>,
}

impl From<SessionInfo> for Listed {
    fn from(info: SessionInfo) -> Self {
        Self {
            handle: info.handle.to_string(),
            current: info.current,
            created_at: rfc3339(info.created_at),
            last_seen: rfc3339(info.last_seen),
            expires_at: rfc3339(info.deadlines.expires_at()),
            user_agent: info.device.get("user_agent").map(str::to_owned),
        }
    }
}

/// `{"revoked": n}`.
#[derive(Serialize)]
struct Revoked {
    revoked: u64,
}

fn rfc3339(at: Timestamp) -> String {
    let seconds = i64::try_from(at.as_unix_millis() / 1000).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `{"error": "..."}`.
#[derive(Serialize)]
struct Refused {
    error: &'static str,
}

fn error(status: StatusCode, error: &'static str) -> Response {
    (status, Json(Refused { error })).into_response()
}

/// The 401 of a request with no logged-in session, if it has none.
async fn not_logged_in(session: &Session) -> Result<Option<Response>, SessionError> {
    let user = session.user().await?;
    Ok(user
        .is_none()
        .then(|| error(StatusCode::UNAUTHORIZED, "not logged in")))
}

/// The user's live sessions, most recently seen first.
async fn sessions(session: Session) -> Result<Response, SessionError> {
    if let Some(refused) = not_logged_in(&session).await? {
        return Ok(refused);
    }
    let listed: Vec<Listed> = session
        .sessions()
        .await?
        .into_iter()
        .map(Listed::from)
        .collect();
    Ok(Json(listed).into_response())
}

/// Logs out the user's other devices.
async fn revoke_others(session: Session) -> Result<Response, SessionError> {
    if let Some(refused) = not_logged_in(&session).await? {
        return Ok(refused);
    }
    let revoked = session.revoke_others().await?;
    Ok(Json(Revoked { revoked }).into_response())
}

/// Logs out one session by its handle: 404 for a handle that is malformed
/// or names none of the user's sessions (nothing changes then).
async fn revoke(session: Session, Path(handle): Path<String>) -> Result<Response, SessionError> {
    if let Some(refused) = not_logged_in(&session).await? {
        return Ok(refused);
    }
    let no_such = || error(StatusCode::NOT_FOUND, "no such session");
    let Some(handle) = SessionHandle::parse(&handle) else {
        return Ok(no_such());
    };
    Ok(if session.revoke(handle).await? {
        Json(Revoked { revoked: 1 }).into_response()
    } else {
        no_such()
    })
}

/// Logs out every session of the user, this one too (its cookie goes).
async fn logout_everywhere(session: Session) -> Result<Response, SessionError> {
    if let Some(refused) = not_logged_in(&session).await? {
        return Ok(refused);
    }
    let revoked = session.revoke_all().await?;
    Ok(Json(Revoked { revoked }).into_response())
}
