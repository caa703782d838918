//! The test application's account routes: log in as a user from a named
//! device, list the user's sessions, revoke them.

use std::num::NonZeroUsize;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use session_http::{Device, Login, Session, SessionError, SessionHandle, UserKey};

/// `/account/login?user=U&device=D&limit=N`, `/account/user`,
/// `/account/sessions`, `/account/revoke/{handle}`,
/// `/account/revoke-others`, `/account/revoke-all`.
pub fn routes() -> Router {
    Router::new()
        .route("/account/login", post(login))
        .route("/account/user", get(user))
        .route("/account/sessions", get(sessions))
        .route("/account/revoke/{handle}", post(revoke))
        .route("/account/revoke-others", post(revoke_others))
        .route("/account/revoke-all", post(revoke_all))
}

/// The answer to a result: its text, or the error's status with the
/// error's message (so a test can read which error it was).
fn answer(result: Result<String, SessionError>) -> Response {
    match result {
        Ok(body) => body.into_response(),
        Err(error) => {
            let message = error.to_string();
            (error.into_response().status(), message).into_response()
        }
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    user: String,
    device: Option<String>,
    limit: Option<NonZeroUsize>,
}

async fn login(session: Session, Query(query): Query<LoginQuery>) -> Response {
    let device = Device::new().with("name", query.device.as_deref().unwrap_or("unnamed"));
    let mut login = Login::new(UserKey::of(&query.user)).device(device);
    if let Some(limit) = query.limit {
        login = login.limit(limit);
    }
    answer(
        async {
            session.login(&login).await?;
            session.insert("user", &query.user).await?;
            Ok(format!("welcome {}", query.user))
        }
        .await,
    )
}

/// The bound user's key, or `none`.
async fn user(session: Session) -> Response {
    let user = session.user().await;
    answer(user.map(|user| user.map_or_else(|| "none".to_owned(), |user| user.to_string())))
}

/// One line a session: `<handle> current|other <device name>`.
async fn sessions(session: Session) -> Response {
    let listed = session.sessions().await.map(|sessions| {
        sessions
            .iter()
            .map(|info| {
                let which = if info.current { "current" } else { "other" };
                let device = info.device.get("name").unwrap_or("");
                format!("{} {which} {device}\n", info.handle)
            })
            .collect()
    });
    answer(listed)
}

/// 404 for a handle that is malformed or names no session of the user.
async fn revoke(session: Session, Path(handle): Path<String>) -> Response {
    let Some(handle) = SessionHandle::parse(&handle) else {
        return (StatusCode::NOT_FOUND, "unknown").into_response();
    };
    match session.revoke(handle).await {
        Ok(true) => "revoked".into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, "unknown").into_response(),
        Err(error) => answer(Err(error)),
    }
}

async fn revoke_others(session: Session) -> Response {
    answer(session.revoke_others().await.map(|n| n.to_string()))
}

async fn revoke_all(session: Session) -> Response {
    answer(session.revoke_all().await.map(|n| n.to_string()))
}
