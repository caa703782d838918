//! The application the HTTP tests drive, and helpers to call it in process.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde::Deserialize;
use session_core::SessionStorage;
use session_http::{Session, SessionConfig, SessionError, SessionLayer};
use tower::ServiceExt;

use crate::COOKIE;
use crate::clock::FakeClock;
use crate::probe::ProbeStorage;

/// The routes every test can use, behind `layer`.
pub fn router(layer: SessionLayer) -> Router {
    routes().layer(layer)
}

/// The routes every test can use, without a session layer yet (axum's
/// layers wrap the routes added before them).
pub fn routes() -> Router {
    Router::new()
        .route("/visit", get(visit))
        .route("/read", get(read))
        .route("/read3", get(read_three_times))
        .route("/names", get(names))
        .route("/set/{name}", post(set))
        .route("/incr", post(increment))
        .route("/login", post(login))
        .route("/whoami", get(whoami))
        .route("/logout", post(logout))
        .route("/untouched", get(|| async { "untouched" }))
        .route("/fail", post(fail))
        .route("/cached", get(cached))
        .route("/public", get(public))
        .merge(crate::app_accounts::routes())
        .merge(crate::app_lifetimes::routes())
}

/// A test application: the routes over probed storage and a fake clock.
pub struct TestApp {
    pub router: Router,
    pub probe: Arc<ProbeStorage>,
    pub clock: FakeClock,
}

impl TestApp {
    /// The routes over `storage` with `config` (its clock replaced by a
    /// fake one).
    pub fn new(
        storage: Arc<dyn SessionStorage>,
        config: session_http::SessionConfigBuilder,
    ) -> Self {
        let probe = ProbeStorage::new(storage);
        let clock = FakeClock::default();
        let config = config.clock(clock.clock()).build().unwrap();
        let layer = SessionLayer::from_arc(probe.clone()).with_config(config);
        Self {
            router: router(layer),
            probe,
            clock,
        }
    }

    /// The routes with the default configuration.
    pub fn with_defaults(storage: Arc<dyn SessionStorage>) -> Self {
        Self::new(storage, SessionConfig::builder())
    }

    /// Sends `request` through the application.
    pub async fn call(&self, request: Request<Body>) -> Reply {
        call(&self.router, request).await
    }

    /// A new session holding `name`, as its `Cookie` header value.
    pub async fn session_with(&self, name: &str) -> String {
        let reply = self.call(post_request(&format!("/set/{name}"), None)).await;
        assert_eq!(reply.status, StatusCode::OK);
        reply
            .cookie_pair(COOKIE)
            .expect("a new session sets its cookie")
    }
}

/// A response, with its body read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect()
    }

    /// `name=value` of the cookie `name` set by this response, if any.
    pub fn cookie_pair(&self, name: &str) -> Option<String> {
        self.set_cookies().into_iter().find_map(|cookie| {
            let pair = cookie.split(';').next()?.to_owned();
            (pair.split('=').next() == Some(name)).then_some(pair)
        })
    }

    /// The value of header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Sends `request` through `router`.
pub async fn call(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A GET request, with a `Cookie` header if given.
pub fn get_request(path: &str, cookie: Option<&str>) -> Request<Body> {
    request("GET", path, cookie)
}

/// A POST request, with a `Cookie` header if given.
pub fn post_request(path: &str, cookie: Option<&str>) -> Request<Body> {
    request("POST", path, cookie)
}

fn request(method: &str, path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::empty()).unwrap()
}

async fn visit(session: Session) -> Result<String, SessionError> {
    let previous: Option<u128> = session.get("visited").await?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    session.insert("visited", &now.as_millis()).await?;
    Ok(match previous {
        Some(previous) => format!("The time was {previous}"),
        None => "First time".to_owned(),
    })
}

async fn read(session: Session) -> Result<String, SessionError> {
    let n: Option<i64> = session.get("n").await?;
    Ok(n.map_or_else(|| "n=none".to_owned(), |n| format!("n={n}")))
}

async fn read_three_times(session: Session) -> Result<String, SessionError> {
    for _ in 0..3 {
        session.get::<i64>("n").await?;
    }
    Ok("ok".to_owned())
}

async fn names(session: Session) -> Result<String, SessionError> {
    Ok(session.names().await?.join(","))
}

async fn set(session: Session, Path(name): Path<String>) -> Result<String, SessionError> {
    session.insert(&name, &1).await?;
    Ok("set".to_owned())
}

async fn increment(session: Session) -> Result<String, SessionError> {
    let n = session
        .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(session: Session, Query(login): Query<Login>) -> Result<String, SessionError> {
    session.cycle_id().await?;
    session.insert("user", &login.user).await?;
    Ok(format!("welcome {}", login.user))
}

async fn whoami(session: Session) -> Result<String, SessionError> {
    Ok(session
        .get::<String>("user")
        .await?
        .unwrap_or_else(|| "anonymous".to_owned()))
}

async fn logout(session: Session) -> Response {
    match session.destroy().await {
        Ok(()) => "bye".into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "logout failed").into_response(),
    }
}

async fn fail(session: Session) -> Result<Response, SessionError> {
    session.insert("n", &99).await?;
    Ok((StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response())
}

async fn cached(session: Session) -> Result<Response, SessionError> {
    session.insert("n", &1).await?;
    Ok(([(header::CACHE_CONTROL, "private, max-age=60")], "cached").into_response())
}

/// A handler that marks its response cacheable by anyone, and writes.
async fn public(session: Session) -> Result<Response, SessionError> {
    session.insert("n", &1).await?;
    let headers = [(header::CACHE_CONTROL, "public, max-age=3600")];
    Ok((headers, "public").into_response())
}
