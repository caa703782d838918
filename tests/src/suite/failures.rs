//! Store failures and timeouts (a 503, nothing half-written, a poisoned
//! session), records the store refuses, and a misconfiguration that fails
//! loudly.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Response, StatusCode};
use axum::routing::{get, post};
use session_core::conformance::Harness;
use session_http::{Session, SessionConfig, SessionError, SessionLayer};

use super::{app, assert_service_unavailable, custom, key_of};
use crate::COOKIE;
use crate::app::{TestApp, call, get_request, post_request};
use crate::probe::{Fault, Op, ProbeStorage};

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_failures {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            a_failed_load_answers_503_and_poisons_the_session,
            a_failed_write_answers_503_without_a_cookie,
            a_failed_destroy_keeps_the_session,
            a_failed_update_poisons_the_session,
            the_failure_response_is_configurable,
            a_hanging_store_times_out,
            a_refused_stored_record_is_no_session,
            two_session_layers_fail_loudly,
        );
    };
}

/// A failed load answers 503, the handler's next session call is `Poisoned`, nothing is written.
pub async fn a_failed_load_answers_503_and_poisons_the_session(harness: &dyn Harness) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let handler = move |session: Session| {
        let record = record.clone();
        async move {
            let first = session.get::<i64>("n").await;
            let second = session.insert("n", &1).await;
            record
                .lock()
                .unwrap()
                .push(format!("{first:?} / {second:?}"));
            "secret page"
        }
    };
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/ignore-errors",
        get(handler),
    );
    let pair = call(&router, post_request("/set/n", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    probe.set_fault(Op::Load, Some(Fault::Fail));
    probe.reset();
    let reply = call(&router, get_request("/ignore-errors", Some(&pair))).await;
    assert_service_unavailable(&reply);
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("Err(Storage(") && seen[0].ends_with("/ Err(Poisoned)"),
        "{seen:?}"
    );
    assert_eq!(probe.writes(), 0);
}

/// A failed create, update or cycle answers 503 without a cookie; the stored session is unchanged.
pub async fn a_failed_write_answers_503_without_a_cookie(harness: &dyn Harness) {
    let app = app(harness);
    let pair = app.session_with("x").await;
    for (op, path, cookie) in [
        (Op::Create, "/set/y", None),
        (Op::Update, "/set/y", Some(pair.as_str())),
        (Op::Cycle, "/login?user=ada", Some(pair.as_str())),
    ] {
        app.probe.set_fault(op, Some(Fault::Fail));
        let reply = app.call(post_request(path, cookie)).await;
        assert_service_unavailable(&reply);
        app.probe.set_fault(op, None);
    }
    assert_eq!(
        app.call(get_request("/names", Some(&pair))).await.body,
        "x",
        "nothing was half-written"
    );
}

/// A failed destroy answers 503 without a removal cookie; the session stays, logout can be retried.
pub async fn a_failed_destroy_keeps_the_session(harness: &dyn Harness) {
    let app = app(harness);
    let pair = app.session_with("x").await;
    app.probe.set_fault(Op::Delete, Some(Fault::Fail));
    let logout = app.call(post_request("/logout", Some(&pair))).await;
    assert_service_unavailable(&logout); // no removal cookie either
    app.probe.set_fault(Op::Delete, None);
    assert_eq!(app.call(get_request("/names", Some(&pair))).await.body, "x");
    assert_eq!(
        app.call(post_request("/logout", Some(&pair))).await.body,
        "bye",
        "logout can be retried"
    );
}

/// After a failed `update` nothing more is written and the handler's answer becomes a 503.
pub async fn a_failed_update_poisons_the_session(harness: &dyn Harness) {
    let handler = |session: Session| async move {
        session.insert("deferred", &1).await.unwrap();
        let failed = session
            .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
            .await;
        assert!(
            matches!(failed, Err(SessionError::Storage(_))),
            "{failed:?}"
        );
        let after = session.insert("later", &1).await;
        assert!(matches!(after, Err(SessionError::Poisoned)), "{after:?}");
        "the handler ignored the failure"
    };
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/ignore",
        post(handler),
    );
    let pair = call(&router, post_request("/set/x", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    probe.set_fault(Op::Update, Some(Fault::Fail));
    probe.reset();
    let reply = call(&router, post_request("/ignore", Some(&pair))).await;
    assert_service_unavailable(&reply);
    assert_eq!(
        probe.calls(Op::Update),
        1,
        "nothing more was written after the failure"
    );
    probe.set_fault(Op::Update, None);
    assert_eq!(
        call(&router, get_request("/names", Some(&pair))).await.body,
        "x"
    );
}

/// `on_store_failure` replaces the default 503 with the application's response, with no cookie.
pub async fn the_failure_response_is_configurable(harness: &dyn Harness) {
    let probe = ProbeStorage::new(harness.storage());
    let layer = SessionLayer::from_arc(probe.clone()).on_store_failure(|| {
        let mut response = Response::new(Body::from("try again soon"));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    });
    let router = Router::new()
        .route(
            "/set/{key}",
            post(|session: Session, Path(key): Path<String>| async move {
                session.insert(&key, &1).await.map(|()| "set")
            }),
        )
        .layer(layer);
    probe.set_fault(Op::Create, Some(Fault::Fail));
    let reply = call(&router, post_request("/set/x", None)).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "try again soon")
    );
    assert!(reply.set_cookies().is_empty());
}

/// A store that never answers costs `store_timeout`: a load and a create answer 503 promptly.
pub async fn a_hanging_store_times_out(harness: &dyn Harness) {
    let timeout = Duration::from_millis(100);
    let app = TestApp::new(
        harness.storage(),
        SessionConfig::builder().store_timeout(timeout),
    );
    let pair = app.session_with("x").await;
    app.probe.set_fault_all(Some(Fault::Hang));
    for (request, label) in [
        (get_request("/read", Some(&pair)), "load"),
        (post_request("/set/y", None), "create"),
    ] {
        let started = Instant::now();
        let reply = app.call(request).await;
        assert_service_unavailable(&reply);
        // A liveness bound, not a benchmark: a hung call would never return.
        assert!(
            started.elapsed() < 3 * timeout,
            "{label} took {:?}",
            started.elapsed()
        );
    }
}

/// Two different session layers on one request fail loudly (a 500 and an
/// error log) instead of the inner one silently hiding the outer one's
/// session; the same layer twice works as once.
pub async fn two_session_layers_fail_loudly(harness: &dyn Harness) {
    let storage = harness.storage();
    let inner = SessionLayer::from_arc(storage.clone());
    let outer = SessionLayer::from_arc(storage.clone()).with_config(
        SessionConfig::builder()
            .cookie_name("other")
            .build()
            .unwrap(),
    );
    let two = crate::app::routes().layer(inner.clone()).layer(outer);
    let reply = call(&two, post_request("/set/x", None)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());

    let twice = crate::app::routes().layer(inner.clone()).layer(inner);
    let reply = call(&twice, post_request("/set/x", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.set_cookies().len(), 1);
    let pair = reply.cookie_pair(COOKIE).unwrap();
    assert_eq!(
        call(&twice, get_request("/names", Some(&pair))).await.body,
        "x"
    );
}

/// A stored record the store refuses as over the size limit is no session
/// (not a 503): the request starts afresh and the stored bytes are left as
/// they were.
pub async fn a_refused_stored_record_is_no_session(harness: &dyn Harness) {
    let app = app(harness);
    let pair = app.session_with("x").await;
    let key = key_of(&pair);
    let before = harness.read_raw(&key).await.unwrap();
    app.probe.set_fault(Op::Load, Some(Fault::TooLarge));
    let read = app.call(get_request("/names", Some(&pair))).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, ""));
    let write = app.call(post_request("/set/y", Some(&pair))).await;
    assert_eq!(write.status, StatusCode::OK);
    let fresh = write.cookie_pair(COOKIE).expect("a fresh session");
    assert_ne!(fresh, pair);
    app.probe.set_fault(Op::Load, None);
    assert_eq!(harness.read_raw(&key).await.unwrap(), before);
    assert_eq!(
        app.call(get_request("/names", Some(&fresh))).await.body,
        "y"
    );
}
