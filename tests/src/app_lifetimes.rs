//! The test application's lifetime routes: remember me at login, a
//! session's own timeouts, and what the session holds of them.

use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::{get, post};
use serde::Deserialize;
use session_http::{Lifetime, Login, Session, SessionError, UserKey};

/// `/lifetime/login?user=U&remember=1`, `/lifetime/set?persistent=0|1&idle=S&absolute=S`,
/// `/lifetime`.
pub fn routes() -> Router {
    Router::new()
        .route("/lifetime/login", post(login))
        .route("/lifetime/set", post(set))
        .route("/lifetime", get(show))
}

/// How long a remembered session lives: a month idle, two at most.
pub const REMEMBER_IDLE: Duration = Duration::from_secs(30 * 24 * 3600);
pub const REMEMBER_ABSOLUTE: Duration = Duration::from_secs(60 * 24 * 3600);

#[derive(Deserialize)]
struct LoginQuery {
    user: String,
    remember: Option<u8>,
}

/// Logs the user in, remembered (a persistent cookie, [`REMEMBER_IDLE`]
/// and [`REMEMBER_ABSOLUTE`]) if `remember=1`.
async fn login(session: Session, Query(query): Query<LoginQuery>) -> Result<String, SessionError> {
    if query.remember == Some(1) {
        let remember = Lifetime::new()
            .persistent(true)
            .idle_timeout(REMEMBER_IDLE)
            .absolute_timeout(REMEMBER_ABSOLUTE);
        session.set_lifetime(remember).await?;
    }
    session.login(&Login::new(UserKey::of(&query.user))).await?;
    session.insert("user", &query.user).await?;
    Ok(format!("welcome {}", query.user))
}

#[derive(Deserialize)]
struct SetQuery {
    persistent: Option<u8>,
    idle: Option<u64>,
    absolute: Option<u64>,
}

/// Gives the session the lifetime the query names (none of it: the
/// layer's defaults again).
async fn set(session: Session, Query(query): Query<SetQuery>) -> Result<String, SessionError> {
    let mut lifetime = Lifetime::new();
    if let Some(persistent) = query.persistent {
        lifetime = lifetime.persistent(persistent == 1);
    }
    if let Some(idle) = query.idle {
        lifetime = lifetime.idle_timeout(Duration::from_secs(idle));
    }
    if let Some(absolute) = query.absolute {
        lifetime = lifetime.absolute_timeout(Duration::from_secs(absolute));
    }
    session.set_lifetime(lifetime).await?;
    Ok("set".to_owned())
}

/// The session's own lifetime: `persistent=P idle=S absolute=S`, each `-`
/// where the layer's default applies; `none` without a session.
async fn show(session: Session) -> Result<String, SessionError> {
    if session.id().await?.is_none() {
        return Ok("none".to_owned());
    }
    let lifetime = session.lifetime().await?;
    let seconds = |timeout: Option<Duration>| {
        timeout.map_or_else(|| "-".to_owned(), |t| t.as_secs().to_string())
    };
    let persistent = lifetime
        .persistence()
        .map_or("-", |p| if p { "1" } else { "0" });
    Ok(format!(
        "persistent={persistent} idle={} absolute={}",
        seconds(lifetime.idle()),
        seconds(lifetime.absolute())
    ))
}
