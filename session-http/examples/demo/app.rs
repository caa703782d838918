//! The demo's routes. Kept apart from `main.rs` so the integration tests
//! drive exactly this router.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::{HeaderMap, header};
use axum::response::Redirect;
use axum::routing::{get, post};
use session_http::{
    Device, Lifetime, Login, Session, SessionConfig, SessionConfigBuilder, SessionError,
    SessionLayer, UserKey,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long a remembered login lives: a persistent cookie, a month idle
/// and a month at most.
const REMEMBER: Duration = Duration::from_secs(30 * 24 * 3600);

/// The demo's session settings: the defaults (a browser-session cookie,
/// 30 minutes idle, 12 hours at most), and room for a remembered login to
/// live [`REMEMBER`].
pub(crate) fn config() -> SessionConfigBuilder {
    SessionConfig::builder()
        .max_idle_timeout(REMEMBER)
        .max_absolute_timeout(REMEMBER)
}

/// `/` redirects to `/session`; `/session` shows the time of the previous
/// visit; `/counter` counts; `/login`, `/whoami` and `/logout` manage a
/// user; `/sessions` and the revokes manage the user's devices
/// (`accounts.rs`).
pub(crate) fn router(layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/session") }))
        .route("/session", get(last_visit))
        .route("/counter", get(counter))
        .route("/login", post(login))
        .route("/whoami", get(whoami))
        .route("/logout", post(logout))
        .merge(super::accounts::routes())
        .layer(layer)
}

/// The original's demo: `First time`, then `The time was <previous visit>`.
async fn last_visit(session: Session) -> Result<String, SessionError> {
    let previous: Option<String> = session.get("now").await?;
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "now".to_owned());
    session.insert("now", &now).await?;
    Ok(match previous {
        Some(previous) => format!("The time was {previous}\n"),
        None => "First time\n".to_owned(),
    })
}

/// Counts this session's visits with an atomic `update`.
async fn counter(session: Session) -> Result<String, SessionError> {
    let visits = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(format!("Visits: {visits}\n"))
}

/// Logs in the user named by the form field or query parameter `user`,
/// under a new session id bound to the user, recording the user agent;
/// with `remember=1`, the session gets a persistent cookie and lives a
/// month ([`REMEMBER`]) instead of the browser session.
async fn login(
    session: Session,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<String, SessionError> {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| form.get(name).or_else(|| query.get(name)).map(|v| v.trim());
    let user = field("user")
        .filter(|user| !user.is_empty())
        .unwrap_or("guest")
        .to_owned();
    if field("remember") == Some("1") {
        let remember = Lifetime::new()
            .persistent(true)
            .idle_timeout(REMEMBER)
            .absolute_timeout(REMEMBER);
        session.set_lifetime(remember).await?;
    }
    // A clean record: values planted before login (cookie tossing) do not
    // survive it; the visit time and the counter do.
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok())
        .unwrap_or("unknown");
    let login = Login::new(UserKey::of(&user)).device(Device::new().with("user_agent", agent));
    session.login_keeping(&login, &["now", "counter"]).await?;
    session.insert("user", &user).await?;
    Ok(format!("Welcome, {user}\n"))
}

async fn whoami(session: Session) -> Result<String, SessionError> {
    let user: Option<String> = session.get("user").await?;
    Ok(format!("{}\n", user.as_deref().unwrap_or("anonymous")))
}

async fn logout(session: Session) -> Result<String, SessionError> {
    session.destroy().await?;
    Ok("Logged out\n".to_owned())
}
