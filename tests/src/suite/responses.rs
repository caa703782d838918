//! What the response's status does to the request's changes, and the
//! caching headers the layer adds or keeps.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use session_core::conformance::Harness;
use session_http::{Session, SessionConfig, SessionError};

use super::{app, custom};
use crate::COOKIE;
use crate::app::{TestApp, call, get_request, post_request};

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_responses {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            server_errors_do_not_persist_deferred_changes,
            redirects_and_client_errors_persist_deferred_changes,
            caching_headers,
            a_handler_vary_is_kept,
        );
    };
}

/// A 5xx drops the deferred changes and sets no cookie, unless `persist_on_server_error` is set.
pub async fn server_errors_do_not_persist_deferred_changes(harness: &dyn Harness) {
    let app = app(harness);
    let pair = app.session_with("x").await;
    let failed = app.call(post_request("/fail", Some(&pair))).await;
    assert_eq!(
        (failed.status, failed.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "oops")
    );
    assert!(failed.set_cookies().is_empty());
    assert_eq!(
        app.call(get_request("/read", Some(&pair))).await.body,
        "n=none"
    );
    app.probe.reset();
    let anonymous = app.call(post_request("/fail", None)).await;
    assert!(anonymous.set_cookies().is_empty());
    assert_eq!(app.probe.writes(), 0);

    let config = SessionConfig::builder().persist_on_server_error(true);
    let persisting = TestApp::new(harness.storage(), config);
    let pair = persisting.session_with("x").await;
    persisting.call(post_request("/fail", Some(&pair))).await;
    assert_eq!(
        persisting
            .call(get_request("/read", Some(&pair)))
            .await
            .body,
        "n=99"
    );
}

/// `Vary: Cookie` on any session use, `no-store` with a cookie; a public cache header is replaced.
pub async fn caching_headers(harness: &dyn Harness) {
    let app = app(harness);
    let untouched = app.call(get_request("/untouched", None)).await;
    assert_eq!(
        (untouched.header("vary"), untouched.header("cache-control")),
        (None, None)
    );
    let read = app.call(get_request("/read", None)).await;
    assert_eq!(
        (read.header("vary"), read.header("cache-control")),
        (Some("cookie"), None)
    );
    let written = app.call(post_request("/set/x", None)).await;
    assert_eq!(
        (written.header("vary"), written.header("cache-control")),
        (Some("cookie"), Some("no-store"))
    );
    let own = app.call(get_request("/cached", None)).await;
    assert_eq!(own.set_cookies().len(), 1);
    assert_eq!(own.header("cache-control"), Some("private, max-age=60"));
    let public = app.call(get_request("/public", None)).await;
    assert_eq!(public.set_cookies().len(), 1);
    assert_eq!(
        public.header("cache-control"),
        Some("no-store"),
        "a shared cache would hand the cookie to everyone after"
    );
}

/// A handler's own `Vary` is kept: `*` alone, one naming `Cookie` as is, others with `cookie` added.
pub async fn a_handler_vary_is_kept(harness: &dyn Harness) {
    let handler = |session: Session, Path(vary): Path<String>| async move {
        session.get::<i64>("n").await?;
        let vary = match vary.as_str() {
            "star" => "*",
            "accept" => "Accept",
            _ => "Accept, Cookie",
        };
        Ok::<_, SessionError>(([(http::header::VARY, vary)], "varied"))
    };
    let (router, _) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/vary/{vary}",
        get(handler),
    );
    for (path, expected) in [
        ("/vary/star", &["*"][..]),
        ("/vary/both", &["Accept, Cookie"]),
        ("/vary/accept", &["Accept", "cookie"]),
    ] {
        let reply = call(&router, get_request(path, None)).await;
        let vary: Vec<_> = reply.headers.get_all("vary").iter().collect();
        assert_eq!(vary, expected, "{path}");
    }
}

/// 3xx and 4xx answers persist the request's deferred changes, and a new session gets its cookie.
pub async fn redirects_and_client_errors_persist_deferred_changes(harness: &dyn Harness) {
    let handler = |session: Session, Path(code): Path<u16>| async move {
        session.insert(&format!("s{code}"), &1).await?;
        Ok::<_, SessionError>(StatusCode::from_u16(code).unwrap())
    };
    let (router, _) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/status/{code}",
        post(handler),
    );
    let redirect = call(&router, post_request("/status/303", None)).await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    let pair = redirect.cookie_pair(COOKIE).expect("a new session");
    let missing = call(&router, post_request("/status/404", Some(&pair))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&router, get_request("/names", Some(&pair))).await.body,
        "s303,s404"
    );
}
