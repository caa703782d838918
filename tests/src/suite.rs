//! The HTTP end-to-end suite, written once and run on every backend with
//! [`http_suite!`](crate::http_suite).
//!
//! Each test takes a conformance [`Harness`]: the backend's storage (which
//! the tests wrap in a [`ProbeStorage`] to count
//! calls and inject faults) and its raw probes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Response, StatusCode};
use axum::routing::{get, post};
use session_core::conformance::Harness;
use session_core::{SessionId, SessionKey, SessionStorage, Timestamp};
use session_http::{Session, SessionConfig, SessionError, SessionLayer};
use tokio::sync::{Barrier, oneshot};

use crate::COOKIE;
use crate::app::{Reply, TestApp, call, get_request, post_request};
use crate::net::{CookieClient, TestServer, plain_hyper_service, raw_get};
use crate::probe::{Fault, Op, ProbeStorage};

/// Expands into one `#[tokio::test]` per HTTP end-to-end test, each on a
/// fresh harness from the factory.
///
/// Like `conformance_tests!`, `optional: factory` takes a factory returning
/// an `Option`: `None` (a server that is not installed) ends each test early.
#[macro_export]
macro_rules! http_suite {
    (optional: $factory:expr) => {
        $crate::__http_suite_names!(optional $factory);
    };
    ($factory:expr) => {
        $crate::__http_suite_names!(required $factory);
    };
}

/// The list of HTTP tests, kept in one place.
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_names {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            first_and_second_visit,
            plain_hyper_with_a_cookie_keeping_client,
            login_moves_the_session_to_a_new_id,
            logout_removes_the_session_and_the_cookie,
            the_session_loads_lazily_and_once,
            a_read_only_request_writes_nothing,
            io_happens_when_the_table_says,
            calls_after_the_response_are_closed,
            touch_is_throttled,
            a_persistent_cookie_follows_the_deadlines,
            an_unknown_id_costs_one_load_and_is_not_adopted,
            malformed_cookies_cost_no_store_call,
            server_errors_do_not_persist_deferred_changes,
            the_idle_timeout_is_exact,
            the_absolute_timeout_is_exact,
            cookie_attributes_and_removal,
            one_set_cookie_per_response,
            caching_headers,
            a_failed_load_answers_503_and_poisons_the_session,
            a_failed_write_answers_503_without_a_cookie,
            a_failed_destroy_keeps_the_session,
            a_failed_update_poisons_the_session,
            the_failure_response_is_configurable,
            a_hanging_store_times_out,
            bad_cookies_get_a_fresh_session,
            bad_cookies_over_raw_tcp,
            a_host_prefix_is_matched_exactly,
            concurrent_requests_keep_every_key,
            concurrent_increments_are_exact,
            logout_wins_over_a_slow_request,
            a_handler_vary_is_kept,
            the_handler_sees_its_own_writes,
            an_update_moves_the_deadlines_it_wrote,
            login_restarts_the_absolute_timeout,
            a_persistent_cookie_never_outlives_the_absolute_timeout,
            an_update_after_a_concurrent_logout_ends_the_session,
            a_write_between_load_and_update_is_kept,
            redirects_and_client_errors_persist_deferred_changes,
            id_collisions_are_retried,
            a_login_is_never_written_under_the_old_id,
            a_login_races_requests_on_the_old_id,
            a_login_can_start_from_a_clean_record,
            two_session_layers_fail_loudly,
            a_refused_stored_record_is_no_session,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite {
    (required $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let harness = ($factory)().await;
                $crate::suite::$name(&harness).await;
            }
        )*
    };
    (optional $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(harness) = ($factory)().await else {
                    return;
                };
                $crate::suite::$name(&harness).await;
            }
        )*
    };
}

/// The test application on the harness's storage, default configuration.
fn app(harness: &dyn Harness) -> TestApp {
    TestApp::with_defaults(harness.storage())
}

/// The storage key of a `name=value` cookie pair.
fn key_of(pair: &str) -> SessionKey {
    let value = pair
        .split_once('=')
        .map(|(_, value)| value)
        .unwrap_or_default();
    SessionId::parse(value).expect("a session id").key()
}

/// A fresh, well-formed session id nobody stored, as a cookie pair.
fn forged_pair() -> String {
    format!(
        "__Host-id={}",
        SessionId::generate().unwrap().to_cookie_value()
    )
}

/// A router with one extra route over probed storage.
fn custom(
    storage: Arc<dyn SessionStorage>,
    config: SessionConfig,
    path: &str,
    route: axum::routing::MethodRouter,
) -> (Router, Arc<ProbeStorage>) {
    let probe = ProbeStorage::new(storage);
    let layer = SessionLayer::from_arc(probe.clone()).with_config(config);
    (crate::app::routes().route(path, route).layer(layer), probe)
}

pub async fn first_and_second_visit(harness: &dyn Harness) {
    let app = app(harness);
    let first = app.call(get_request("/visit", None)).await;
    assert_eq!(
        (first.status, first.body.as_str()),
        (StatusCode::OK, "First time")
    );
    let cookies = first.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let pair = first.cookie_pair(COOKIE).unwrap();
    assert_eq!(
        cookies[0],
        format!("{pair}; HttpOnly; SameSite=Lax; Secure; Path=/")
    );
    assert_eq!(first.header("cache-control"), Some("no-store"));
    assert_eq!(first.header("vary"), Some("cookie"));

    let second = app.call(get_request("/visit", Some(&pair))).await;
    assert!(second.body.starts_with("The time was "), "{second:?}");
    assert!(second.set_cookies().is_empty(), "{second:?}");
}

pub async fn plain_hyper_with_a_cookie_keeping_client(harness: &dyn Harness) {
    let layer = SessionLayer::from_arc(harness.storage());
    let server = TestServer::serve(plain_hyper_service(layer)).await;
    let browser = CookieClient::new(server.addr);
    assert_eq!(browser.get("/visit").await.body, "visit 1");
    let anonymous_id = browser.cookie(COOKIE).unwrap();
    assert_eq!(browser.get("/visit").await.body, "visit 2");
    assert_eq!(browser.cookie(COOKIE).unwrap(), anonymous_id);

    assert_eq!(browser.post("/login?user=ada").await.body, "welcome ada");
    let logged_in_id = browser.cookie(COOKIE).unwrap();
    assert_ne!(logged_in_id, anonymous_id);
    assert_eq!(browser.get("/whoami").await.body, "ada");
    assert_eq!(
        browser.get("/visit").await.body,
        "visit 3",
        "the data came along"
    );

    let attacker = CookieClient::new(server.addr);
    attacker.set_cookie(COOKIE, &anonymous_id);
    assert_eq!(attacker.get("/whoami").await.body, "anonymous");

    assert_eq!(browser.post("/logout").await.body, "bye");
    assert_eq!(
        browser.cookie(COOKIE),
        None,
        "the removal cookie emptied the jar"
    );
    assert_eq!(browser.get("/whoami").await.body, "anonymous");
    let replay = CookieClient::new(server.addr);
    replay.set_cookie(COOKIE, &logged_in_id);
    assert_eq!(replay.get("/whoami").await.body, "anonymous");
}

pub async fn login_moves_the_session_to_a_new_id(harness: &dyn Harness) {
    let app = app(harness);
    let before = app.session_with("cart").await;
    let login = app
        .call(post_request("/login?user=ada", Some(&before)))
        .await;
    assert_eq!(login.body, "welcome ada");
    let after = login.cookie_pair(COOKIE).unwrap();
    assert_ne!(after, before);
    assert_eq!(app.probe.calls(Op::Cycle), 1);

    let keys = app.call(get_request("/keys", Some(&after))).await;
    assert_eq!(keys.body, "cart,user");
    let stale = app.call(get_request("/whoami", Some(&before))).await;
    assert_eq!(stale.body, "anonymous");
    assert!(stale.set_cookies().is_empty());
    let storage = harness.storage();
    assert!(
        storage
            .load(&key_of(&before), Timestamp::now())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn logout_removes_the_session_and_the_cookie(harness: &dyn Harness) {
    let app = app(harness);
    let login = app.call(post_request("/login?user=ada", None)).await;
    let pair = login.cookie_pair(COOKIE).unwrap();
    let logout = app.call(post_request("/logout", Some(&pair))).await;
    assert_eq!(logout.body, "bye");
    let cookies = logout.set_cookies();
    assert_eq!(cookies.len(), 1);
    assert!(
        cookies[0]
            .starts_with("__Host-id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires="),
        "{cookies:?}"
    );
    assert!(!harness.raw_exists(&key_of(&pair)).await.unwrap());
    let replay = app.call(get_request("/whoami", Some(&pair))).await;
    assert_eq!(replay.body, "anonymous");
    assert!(replay.set_cookies().is_empty());
    // Logging out with the dead cookie still tells the browser to drop it;
    // without a session cookie there is nothing to remove.
    let again = app.call(post_request("/logout", Some(&pair))).await;
    let removal = again.set_cookies();
    assert_eq!(removal.len(), 1);
    assert!(
        removal[0].starts_with("__Host-id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0;")
    );
    assert!(
        app.call(post_request("/logout", None))
            .await
            .set_cookies()
            .is_empty()
    );
}

pub async fn the_session_loads_lazily_and_once(harness: &dyn Harness) {
    let app = app(harness);
    let pair = app.session_with("n").await;
    app.probe.reset();
    let untouched = app.call(get_request("/untouched", Some(&pair))).await;
    assert_eq!(untouched.body, "untouched");
    assert_eq!(app.probe.total_calls(), 0);
    assert_eq!(untouched.header("vary"), None);

    app.call(get_request("/read3", Some(&pair))).await;
    assert_eq!(app.probe.calls(Op::Load), 1);
    assert_eq!(app.probe.total_calls(), 1);
}

pub async fn a_read_only_request_writes_nothing(harness: &dyn Harness) {
    let app = app(harness);
    let pair = app.session_with("n").await;
    app.probe.reset();
    let read = app.call(get_request("/read", Some(&pair))).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "n=1"));
    assert!(read.set_cookies().is_empty());
    assert_eq!((app.probe.calls(Op::Load), app.probe.writes()), (1, 0));
    assert_eq!(read.header("vary"), Some("cookie"));
    assert_eq!(read.header("cache-control"), None);
}

/// The value of `x` in the stored session of `id`, right now.
async fn stored_x(storage: &dyn SessionStorage, id: &SessionId) -> Option<i64> {
    let record = storage.load(&id.key(), Timestamp::now()).await.unwrap()?;
    record.data.get("x").unwrap()
}

pub async fn io_happens_when_the_table_says(harness: &dyn Harness) {
    let storage = harness.storage();
    let observed: Arc<Mutex<Vec<String>>> = Arc::default();
    let watch = |what: &'static str| {
        let (storage, observed) = (storage.clone(), observed.clone());
        post(move |session: Session| async move {
            let id = session.id().await.unwrap().unwrap();
            let before = stored_x(&*storage, &id).await;
            match what {
                "insert" => session.insert("x", &5).await.unwrap(),
                "update" => {
                    session
                        .update("x", |n: Option<i64>| n.unwrap_or(0) + 1)
                        .await
                        .unwrap();
                }
                "cycle" => session.cycle_id().await.unwrap(),
                _ => session.destroy().await.unwrap(),
            }
            let after = stored_x(&*storage, &id).await;
            observed
                .lock()
                .unwrap()
                .push(format!("{what}: {before:?} -> {after:?}"));
            "done"
        })
    };
    let router = crate::app::routes()
        .route("/io/insert", watch("insert"))
        .route("/io/update", watch("update"))
        .route("/io/cycle", watch("cycle"))
        .route("/io/destroy", watch("destroy"))
        .layer(SessionLayer::from_arc(storage.clone()));
    let pair = call(&router, post_request("/set/x", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    for step in ["insert", "update", "cycle"] {
        call(&router, post_request(&format!("/io/{step}"), Some(&pair))).await;
    }
    let cycled = call(&router, get_request("/keys", Some(&pair))).await;
    assert_eq!(
        cycled.body, "",
        "the old id stopped working when the cycle returned"
    );
    let observed_cycle = observed.lock().unwrap().len();
    assert_eq!(observed_cycle, 3);
    let _ = cycled;

    assert_eq!(
        observed.lock().unwrap()[..],
        [
            "insert: Some(1) -> Some(1)", // deferred to the end of the request
            "update: Some(5) -> Some(6)", // written when it returns
            "cycle: Some(6) -> None",     // now: the old id is dead when it returns
        ]
    );
    let login = call(&router, post_request("/login?user=ada", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    call(&router, post_request("/set/x", Some(&login))).await;
    call(&router, post_request("/io/destroy", Some(&login))).await;
    assert_eq!(
        observed.lock().unwrap()[3],
        "destroy: Some(1) -> None",
        "destroy deletes at once"
    );
}

pub async fn calls_after_the_response_are_closed(harness: &dyn Harness) {
    let (go, wait) = oneshot::channel::<()>();
    let (report, result) = oneshot::channel::<(bool, bool)>();
    let slot = Arc::new(Mutex::new(Some((wait, report))));
    let handler = move |session: Session| {
        let slot = slot.clone();
        async move {
            let (wait, report) = slot.lock().unwrap().take().unwrap();
            tokio::spawn(async move {
                let _ = wait.await;
                let inserted = session.insert("late", &1).await;
                let read = session.get::<i64>("late").await;
                let _ = report.send((
                    matches!(inserted, Err(SessionError::Closed)),
                    matches!(read, Err(SessionError::Closed)),
                ));
            });
            "spawned"
        }
    };
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/spawn",
        get(handler),
    );
    let reply = call(&router, get_request("/spawn", None)).await;
    assert_eq!(reply.body, "spawned");
    go.send(()).unwrap();
    assert_eq!(result.await.unwrap(), (true, true));
    assert_eq!(probe.writes(), 0);
}

/// An app whose idle timeout is 20 minutes, on the fake clock.
fn idle_app(harness: &dyn Harness, persistent: bool) -> TestApp {
    let config = SessionConfig::builder()
        .idle_timeout(Duration::from_secs(20 * 60))
        .persistent(persistent);
    TestApp::new(harness.storage(), config)
}

pub async fn touch_is_throttled(harness: &dyn Harness) {
    let app = idle_app(harness, false);
    let pair = app.session_with("n").await;
    app.probe.reset();
    // Exactly 3/4 of the idle timeout (15 min) still ahead: no touch.
    app.clock.advance(Duration::from_secs(5 * 60));
    let early = app.call(get_request("/read", Some(&pair))).await;
    assert_eq!(app.probe.calls(Op::Touch), 0);
    assert!(early.set_cookies().is_empty());
    // Less than 3/4 ahead: one touch, no cookie for a browser-session cookie.
    app.clock.advance(Duration::from_millis(1));
    let due = app.call(get_request("/read", Some(&pair))).await;
    assert_eq!(app.probe.calls(Op::Touch), 1);
    assert!(due.set_cookies().is_empty());
    // Just touched: no touch again.
    app.call(get_request("/read", Some(&pair))).await;
    assert_eq!(app.probe.calls(Op::Touch), 1);
    assert_eq!(app.probe.writes(), 1);
    // The touch moved the idle deadline: alive 20 minutes after it.
    app.clock.advance(Duration::from_secs(20 * 60 - 1));
    assert_eq!(
        app.call(get_request("/read", Some(&pair))).await.body,
        "n=1"
    );
}

pub async fn a_persistent_cookie_follows_the_deadlines(harness: &dyn Harness) {
    let app = idle_app(harness, true);
    let created = app.call(post_request("/set/n", None)).await;
    let cookie = &created.set_cookies()[0];
    assert!(cookie.ends_with("; Max-Age=1200"), "{cookie}");
    let pair = created.cookie_pair(COOKIE).unwrap();
    app.clock.advance(Duration::from_secs(6 * 60));
    let touched = app.call(get_request("/read", Some(&pair))).await;
    assert_eq!(app.probe.calls(Op::Touch), 1);
    let cookies = touched.set_cookies();
    assert_eq!(cookies.len(), 1);
    assert_eq!(
        cookies[0],
        format!("{pair}; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=1200")
    );
    // An immediate update moves the deadlines too: the cookie follows.
    app.clock.advance(Duration::from_secs(60));
    let updated = app.call(post_request("/incr", Some(&pair))).await;
    assert_eq!(updated.body, "2");
    assert_eq!(updated.set_cookies(), cookies);
}

pub async fn an_unknown_id_costs_one_load_and_is_not_adopted(harness: &dyn Harness) {
    let app = app(harness);
    let forged = forged_pair();
    let visit = app.call(get_request("/visit", Some(&forged))).await;
    assert_eq!(visit.body, "First time");
    assert_eq!(app.probe.calls(Op::Load), 1);
    assert_eq!(app.probe.calls(Op::Create), 1);
    let issued = visit.cookie_pair(COOKIE).unwrap();
    assert_ne!(issued, forged);
    assert!(!harness.raw_exists(&key_of(&forged)).await.unwrap());
    assert!(harness.raw_exists(&key_of(&issued)).await.unwrap());
}

pub async fn malformed_cookies_cost_no_store_call(harness: &dyn Harness) {
    let app = app(harness);
    let long = format!(
        "__Host-id={}x",
        SessionId::generate().unwrap().to_cookie_value()
    );
    let short = &long[..long.len() - 2];
    for cookie in [
        "__Host-id=",
        "__Host-id=malformed",
        short,
        &long,
        "__Host-id=\"quoted\"",
        "theme=dark",
    ] {
        app.probe.reset();
        let read = app.call(get_request("/read", Some(cookie))).await;
        assert_eq!(
            (read.status, read.body.as_str()),
            (StatusCode::OK, "n=none"),
            "{cookie}"
        );
        assert_eq!(app.probe.total_calls(), 0, "{cookie}");
    }
}

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

/// An app with a 10-minute idle and a 30-minute absolute timeout.
fn timeout_app(harness: &dyn Harness) -> TestApp {
    let config = SessionConfig::builder()
        .idle_timeout(Duration::from_secs(10 * 60))
        .absolute_timeout(Duration::from_secs(30 * 60));
    TestApp::new(harness.storage(), config)
}

pub async fn the_idle_timeout_is_exact(harness: &dyn Harness) {
    let app = timeout_app(harness);
    let start = app.clock.now();
    let (early, late) = (app.session_with("x").await, app.session_with("x").await);
    app.clock
        .set(start.saturating_add(Duration::from_secs(10 * 60) - Duration::from_millis(1)));
    assert_eq!(app.call(get_request("/keys", Some(&early))).await.body, "x");
    app.clock
        .set(start.saturating_add(Duration::from_secs(10 * 60)));
    let expired = app.call(get_request("/keys", Some(&late))).await;
    assert_eq!(expired.body, "");
    assert!(expired.set_cookies().is_empty());
}

pub async fn the_absolute_timeout_is_exact(harness: &dyn Harness) {
    let app = timeout_app(harness);
    let start = app.clock.now();
    let pair = app.session_with("x").await;
    // Active every 9 minutes: the idle timeout never strikes.
    for minute in [9, 18, 27] {
        app.clock
            .set(start.saturating_add(Duration::from_secs(minute * 60)));
        let reply = app
            .call(post_request(&format!("/set/m{minute}"), Some(&pair)))
            .await;
        assert_eq!(reply.body, "set");
    }
    let absolute = start.saturating_add(Duration::from_secs(30 * 60));
    app.clock
        .set(absolute.saturating_sub(Duration::from_millis(1)));
    assert_eq!(
        app.call(get_request("/keys", Some(&pair))).await.body,
        "m18,m27,m9,x"
    );
    app.clock.set(absolute);
    assert_eq!(
        app.call(get_request("/keys", Some(&pair))).await.body,
        "",
        "activity never outlives the absolute timeout"
    );
}

pub async fn cookie_attributes_and_removal(harness: &dyn Harness) {
    let config = SessionConfig::builder().cookie_name("__Host-id");
    let app = TestApp::new(harness.storage(), config);
    let created = app.call(post_request("/set/x", None)).await;
    let pair = created.cookie_pair("__Host-id").unwrap();
    assert_eq!(
        created.set_cookies(),
        [format!("{pair}; HttpOnly; SameSite=Lax; Secure; Path=/")]
    );
    let removal = app
        .call(post_request("/logout", Some(&pair)))
        .await
        .set_cookies();
    assert!(
        removal[0]
            .starts_with("__Host-id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires="),
        "{removal:?}"
    );

    let config = SessionConfig::builder()
        .cookie_name("__Secure-sid")
        .domain("example.com")
        .path("/app")
        .same_site(session_http::SameSite::Strict);
    let app = TestApp::new(harness.storage(), config);
    let created = app.call(post_request("/set/x", None)).await;
    let pair = created.cookie_pair("__Secure-sid").unwrap();
    let attributes = "HttpOnly; SameSite=Strict; Secure; Path=/app; Domain=example.com";
    assert_eq!(created.set_cookies(), [format!("{pair}; {attributes}")]);
    let removal = app
        .call(post_request("/logout", Some(&pair)))
        .await
        .set_cookies();
    assert!(
        removal[0].starts_with(&format!("__Secure-sid=; {attributes}; Max-Age=0; Expires=")),
        "{removal:?}"
    );
}

pub async fn one_set_cookie_per_response(harness: &dyn Harness) {
    let busy = |session: Session| async move {
        session.insert("a", &1).await.unwrap();
        session.cycle_id().await.unwrap();
        session.destroy().await.unwrap();
        session.insert("b", &2).await.unwrap();
        session.cycle_id().await.unwrap();
        session.insert("c", &3).await.unwrap();
        "busy"
    };
    let (router, _) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/busy",
        post(busy),
    );
    let fresh = call(&router, post_request("/busy", None)).await;
    assert_eq!(fresh.set_cookies().len(), 1, "{fresh:?}");
    let pair = call(&router, post_request("/set/x", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    let existing = call(&router, post_request("/busy", Some(&pair))).await;
    let cookies = existing.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let new_pair = existing.cookie_pair(COOKIE).unwrap();
    assert_ne!(new_pair, pair);
    assert_eq!(
        call(&router, get_request("/keys", Some(&new_pair)))
            .await
            .body,
        "b,c"
    );
    assert_eq!(
        call(&router, get_request("/keys", Some(&pair))).await.body,
        ""
    );
}

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

/// Checks the default store-failure response.
fn assert_service_unavailable(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.body, "");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(reply.set_cookies().is_empty());
}

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
        app.call(get_request("/keys", Some(&pair))).await.body,
        "x",
        "nothing was half-written"
    );
}

pub async fn a_failed_destroy_keeps_the_session(harness: &dyn Harness) {
    let app = app(harness);
    let pair = app.session_with("x").await;
    app.probe.set_fault(Op::Delete, Some(Fault::Fail));
    let logout = app.call(post_request("/logout", Some(&pair))).await;
    assert_service_unavailable(&logout); // no removal cookie either
    app.probe.set_fault(Op::Delete, None);
    assert_eq!(app.call(get_request("/keys", Some(&pair))).await.body, "x");
    assert_eq!(
        app.call(post_request("/logout", Some(&pair))).await.body,
        "bye",
        "logout can be retried"
    );
}

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
        call(&router, get_request("/keys", Some(&pair))).await.body,
        "x"
    );
}

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

/// The bad-input table: each entry's `Cookie` headers, and whether the live
/// session `x` must be found through them.
fn bad_cookie_table(live: &str, other_live: &str) -> Vec<(&'static str, Vec<Vec<u8>>, bool)> {
    let garbage = "__Host-id=AAAAAAAAAAAAAAAAAAAAA!".to_owned();
    let value = |pair: &str| pair.split_once('=').unwrap().1.to_owned();
    let short = format!("__Host-id={}", &value(live)[1..]);
    let long = format!("{live}A");
    let mut random = vec![0_u8; 10 * 1024];
    getrandom::fill(&mut random).unwrap();
    // Any byte a header value may carry: visible ASCII, space, obs-text.
    let noise: Vec<u8> = random
        .iter()
        .map(|b| if *b < 0x20 || *b == 0x7f { b'~' } else { *b })
        .collect();
    let mut other_non_utf8 = b"lang=\xff\xfe\x80; ".to_vec();
    other_non_utf8.extend_from_slice(live.as_bytes());
    let bytes = |text: &str| text.as_bytes().to_vec();
    vec![
        ("no cookie", vec![], false),
        ("empty value", vec![bytes("__Host-id=")], false),
        ("malformed", vec![bytes("__Host-id=malformed")], false),
        ("one character short", vec![bytes(&short)], false),
        ("one character long", vec![bytes(&long)], false),
        (
            "10 KB of random bytes",
            vec![[b"__Host-id=".to_vec(), noise].concat()],
            false,
        ),
        ("non-UTF-8 in another cookie", vec![other_non_utf8], true),
        (
            "in the second Cookie header",
            vec![bytes("theme=dark"), bytes(live)],
            true,
        ),
        (
            "live then garbage",
            vec![bytes(&format!("{live}; {garbage}"))],
            true,
        ),
        (
            "garbage then live",
            vec![bytes(&format!("{garbage}; {live}"))],
            true,
        ),
        (
            "two live, one order",
            vec![bytes(&format!("{live}; {other_live}"))],
            false,
        ),
        (
            "two live, other order",
            vec![bytes(&format!("{other_live}; {live}"))],
            false,
        ),
    ]
}

pub async fn bad_cookies_get_a_fresh_session(harness: &dyn Harness) {
    let app = app(harness);
    let live = app.session_with("x").await;
    let other_live = app.session_with("y").await;
    for (label, headers, found) in bad_cookie_table(&live, &other_live) {
        let mut request = get_request("/keys", None);
        for value in &headers {
            request
                .headers_mut()
                .append("cookie", http::HeaderValue::from_bytes(value).unwrap());
        }
        let reply = app.call(request).await;
        assert_eq!(reply.status, StatusCode::OK, "{label}");
        assert_eq!(reply.body, if found { "x" } else { "" }, "{label}");
        assert!(
            reply.set_cookies().is_empty(),
            "{label}: reading sets no cookie"
        );

        // A write from a fresh session gets a new id, never a client's.
        if !found {
            let mut write = post_request("/set/z", None);
            for value in &headers {
                write
                    .headers_mut()
                    .append("cookie", http::HeaderValue::from_bytes(value).unwrap());
            }
            let issued = app.call(write).await.cookie_pair(COOKIE);
            let issued = issued.unwrap_or_else(|| panic!("{label}: no new session"));
            assert!(issued != live && issued != other_live, "{label}");
        }
    }
}

pub async fn bad_cookies_over_raw_tcp(harness: &dyn Harness) {
    let app = app(harness);
    let live = app.session_with("x").await;
    let other_live = app.session_with("y").await;
    let server = TestServer::axum(app.router.clone()).await;
    for (label, headers, found) in bad_cookie_table(&live, &other_live) {
        let reply = raw_get(server.addr, "/keys", &headers).await;
        assert_eq!(reply.status, 200, "{label}");
        assert_eq!(
            reply.body,
            if found { b"x".to_vec() } else { Vec::new() },
            "{label}"
        );
        assert!(reply.set_cookies.is_empty(), "{label}");
    }
    // The server is still serving.
    assert_eq!(
        raw_get(server.addr, "/keys", &[live.into_bytes()])
            .await
            .body,
        b"x"
    );
}

pub async fn a_host_prefix_is_matched_exactly(harness: &dyn Harness) {
    let app = TestApp::new(
        harness.storage(),
        SessionConfig::builder().cookie_name("__Host-id"),
    );
    let pair = app
        .call(post_request("/set/x", None))
        .await
        .cookie_pair("__Host-id")
        .unwrap();
    assert_eq!(app.call(get_request("/keys", Some(&pair))).await.body, "x");
    app.probe.reset();
    let encoded = pair.replacen("__Host-id", "__Host%2Did", 1);
    assert_eq!(
        app.call(get_request("/keys", Some(&encoded))).await.body,
        ""
    );
    assert_eq!(app.probe.total_calls(), 0);
}

pub async fn concurrent_requests_keep_every_key(harness: &dyn Harness) {
    const REQUESTS: usize = 100;
    let barrier = Arc::new(Barrier::new(REQUESTS));
    let handler = move |session: Session, Path(index): Path<usize>| {
        let barrier = barrier.clone();
        async move {
            let loaded = session.keys().await.map(|_| ());
            barrier.wait().await; // every request has loaded before any writes
            loaded?;
            session
                .insert(&format!("k{index}"), &index)
                .await
                .map(|()| "ok")
        }
    };
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/write/{index}",
        post(handler),
    );
    let pair = call(&router, post_request("/set/base", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    let requests: Vec<_> = (0..REQUESTS)
        .map(|index| {
            let (router, pair) = (router.clone(), pair.clone());
            tokio::spawn(async move {
                call(
                    &router,
                    post_request(&format!("/write/{index}"), Some(&pair)),
                )
                .await
            })
        })
        .collect();
    for request in requests {
        let reply = request.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    }
    let keys = call(&router, get_request("/keys", Some(&pair))).await.body;
    assert_eq!(keys.split(',').count(), REQUESTS + 1, "{keys}");
    assert_eq!(probe.calls(Op::Update), REQUESTS);
}

pub async fn concurrent_increments_are_exact(harness: &dyn Harness) {
    const REQUESTS: usize = 4;
    let barrier = Arc::new(Barrier::new(REQUESTS));
    let handler = move |session: Session| {
        let barrier = barrier.clone();
        async move {
            let loaded = session.get::<i64>("n").await;
            barrier.wait().await;
            loaded?;
            session
                .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
                .await
                .map(|n| n.to_string())
        }
    };
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/count",
        post(handler),
    );
    let pair = call(&router, post_request("/set/x", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    let requests: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let (router, pair) = (router.clone(), pair.clone());
            tokio::spawn(async move { call(&router, post_request("/count", Some(&pair))).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        let reply = request.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        answers.push(reply.body);
    }
    answers.sort();
    assert_eq!(answers, ["1", "2", "3", "4"]);
    assert_eq!(
        call(&router, get_request("/read", Some(&pair))).await.body,
        "n=4"
    );
    assert!(
        probe.conflicts() >= REQUESTS - 1,
        "only {} conflicts",
        probe.conflicts()
    );
}

/// Where a slow handler stops until the test has logged its session out.
pub struct Pause {
    loaded: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

impl Pause {
    /// Tells the test the handler has loaded, then waits for the logout.
    pub async fn wait(self) {
        self.loaded.send(()).unwrap();
        self.release.await.unwrap();
    }
}

/// Another request that lands while a slow request is between its reads
/// and its writes, deterministically.
struct Race {
    slow: Reply,
    interlude: Reply,
    probe: Arc<ProbeStorage>,
    pair: String,
}

/// Makes a session with `setup`, starts `slow` on it, logs the session out
/// when `slow` pauses, then lets `slow` finish.
async fn logout_during<F, Fut>(harness: &dyn Harness, setup: &str, slow: F) -> Race
where
    F: Fn(Session, Pause) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    let race = request_during(harness, setup, "/logout", slow).await;
    assert_eq!(race.interlude.body, "bye");
    race
}

/// Makes a session with `setup`, starts `slow` on it, sends `interlude`
/// (a POST) when `slow` pauses, then lets `slow` finish.
async fn request_during<F, Fut>(
    harness: &dyn Harness,
    setup: &str,
    interlude: &str,
    slow: F,
) -> Race
where
    F: Fn(Session, Pause) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    let (loaded, loaded_rx) = oneshot::channel();
    let (release_tx, release) = oneshot::channel();
    let slot = Arc::new(Mutex::new(Some(Pause { loaded, release })));
    let handler = move |session: Session| {
        let (slot, slow) = (slot.clone(), slow.clone());
        async move {
            let pause = slot.lock().unwrap().take().unwrap();
            slow(session, pause).await
        }
    };
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/slow",
        post(handler),
    );
    let pair = call(&router, post_request(setup, None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    let slow_request = {
        let (router, pair) = (router.clone(), pair.clone());
        tokio::spawn(async move { call(&router, post_request("/slow", Some(&pair))).await })
    };
    loaded_rx.await.unwrap();
    let interlude = call(&router, post_request(interlude, Some(&pair))).await;
    release_tx.send(()).unwrap();
    let slow = slow_request.await.unwrap();
    Race {
        slow,
        interlude,
        probe,
        pair,
    }
}

pub async fn logout_wins_over_a_slow_request(harness: &dyn Harness) {
    let race = logout_during(harness, "/login?user=ada", |session, pause| async move {
        session.insert("late", &1).await.unwrap();
        pause.wait().await;
        "slow done".to_owned()
    })
    .await;
    assert_eq!(race.interlude.set_cookies().len(), 1);
    assert_eq!(race.slow.body, "slow done");
    assert!(race.slow.set_cookies().is_empty(), "{:?}", race.slow);
    assert!(
        !harness.raw_exists(&key_of(&race.pair)).await.unwrap(),
        "logout was undone"
    );
    assert_eq!(
        race.probe.calls(Op::Update),
        1,
        "the slow request tried its write and was told Gone"
    );
}

/// Runs a full life cycle under a TRACE capture of every target and checks
/// that no session id reaches it. Not part of `http_suite!`: tracing caches
/// per-callsite interest process-wide, so a capture is only complete when no
/// other test registers callsites at the same time; `tests/tests/traces.rs` runs
/// it on every backend, alone in its test binary.
pub async fn traces_never_contain_a_session_id(harness: &dyn Harness) {
    let storage = harness.storage();
    let corrupt = SessionId::generate().unwrap();
    harness
        .write_raw(&corrupt.key(), b"\x01garbage", Timestamp::now())
        .await
        .unwrap();
    // A thread of its own, with its own single-thread runtime, so that every
    // event of the life cycle reaches this test's subscriber.
    let (log, ids) = tokio::task::spawn_blocking(move || {
        crate::trace::capture(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(life_cycle(storage, corrupt))
        })
    })
    .await
    .unwrap();
    assert!(
        log.contains("session created"),
        "the capture holds the life cycle: {log}"
    );
    assert!(
        log.contains("stored session refused"),
        "the capture holds the error paths"
    );
    for id in ids {
        assert!(!log.contains(&id), "a session id leaked into the traces");
    }
}

/// Every path that logs: create, read, update, touch, login, logout,
/// malformed and duplicate cookies, corrupt records, store failures.
/// Returns every session id that was issued or sent.
async fn life_cycle(storage: Arc<dyn SessionStorage>, corrupt: SessionId) -> Vec<String> {
    let app = TestApp::new(
        storage.clone(),
        SessionConfig::builder().idle_timeout(Duration::from_secs(60)),
    );
    let mut ids = Vec::new();
    let mut issued = |reply: &Reply| {
        if let Some(pair) = reply.cookie_pair(COOKIE) {
            ids.push(pair.split_once('=').unwrap().1.to_owned());
        }
    };
    let first = app.call(get_request("/visit", None)).await;
    issued(&first);
    let pair = first.cookie_pair(COOKIE).unwrap();
    app.call(post_request("/incr", Some(&pair))).await;
    app.clock.advance(Duration::from_secs(50));
    app.call(get_request("/read", Some(&pair))).await;
    let login = app.call(post_request("/login?user=ada", Some(&pair))).await;
    issued(&login);
    let pair = login.cookie_pair(COOKIE).unwrap();
    let other = app.session_with("y").await;
    app.call(get_request("/keys", Some(&format!("{pair}; {other}"))))
        .await;
    app.call(get_request("/keys", Some("__Host-id=malformed")))
        .await;
    app.call(post_request("/logout", Some(&pair))).await;

    app.call(get_request(
        "/keys",
        Some(&format!("__Host-id={}", corrupt.to_cookie_value())),
    ))
    .await;
    app.probe.set_fault_all(Some(Fault::Fail));
    app.call(get_request("/keys", Some(&other))).await;
    app.call(post_request("/set/x", None)).await;
    ids.extend([&pair, &other].map(|pair| pair.split_once('=').unwrap().1.to_owned()));
    ids.push(corrupt.to_cookie_value());
    ids
}

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

/// After an `update`, the handler's next step: what it then sees, and what
/// the request writes.
pub async fn the_handler_sees_its_own_writes(harness: &dyn Harness) {
    let handler = |session: Session, Path(next): Path<String>| async move {
        session.insert("a", &1).await?;
        let n = session
            .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
            .await?;
        match next.as_str() {
            "cycle" => session.cycle_id().await?,
            "destroy" => session.destroy().await?,
            "clear" => session.clear().await?,
            _ => {}
        }
        let seen: Option<i64> = session.get("n").await?;
        let keys = session.keys().await?.join(",");
        Ok::<_, SessionError>(format!("{n} {seen:?} [{keys}]"))
    };
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/then/{next}",
        post(handler),
    );
    // Writes per operation: create, update, touch, cycle, delete.
    let table: [(bool, &str, &str, usize, [usize; 5]); 6] = [
        (false, "read", "1 Some(1) [a,n]", 1, [1, 0, 0, 0, 0]),
        // A session the browser does not know yet needs no new id.
        (false, "cycle", "1 Some(1) [a,n]", 1, [1, 0, 0, 0, 0]),
        // Nor any removal cookie: the browser never had one.
        (false, "destroy", "1 None []", 0, [1, 0, 0, 0, 1]),
        (true, "read", "1 Some(1) [a,n,x]", 0, [0, 1, 0, 0, 0]),
        (true, "cycle", "1 Some(1) [a,n,x]", 1, [0, 1, 0, 1, 0]),
        (true, "clear", "1 None []", 0, [0, 2, 0, 0, 0]),
    ];
    for (existing, next, body, cookies, writes) in table {
        let pair = if existing {
            call(&router, post_request("/set/x", None))
                .await
                .cookie_pair(COOKIE)
        } else {
            None
        };
        probe.reset();
        let reply = call(
            &router,
            post_request(&format!("/then/{next}"), pair.as_deref()),
        )
        .await;
        let label = format!("{next} (existing session: {existing})");
        assert_eq!(reply.body, body, "{label}");
        assert_eq!(reply.set_cookies().len(), cookies, "{label}: {reply:?}");
        let calls =
            [Op::Create, Op::Update, Op::Touch, Op::Cycle, Op::Delete].map(|op| probe.calls(op));
        assert_eq!(calls, writes, "{label}");
    }
}

pub async fn an_update_moves_the_deadlines_it_wrote(harness: &dyn Harness) {
    let app = idle_app(harness, false);
    let pair = app.session_with("x").await;
    // Touching would be due now, but the update moved the idle deadline.
    app.clock.advance(Duration::from_secs(6 * 60));
    app.probe.reset();
    let reply = app.call(post_request("/incr", Some(&pair))).await;
    assert_eq!(reply.body, "1");
    assert_eq!(app.probe.calls(Op::Touch), 0);
    assert_eq!(app.probe.writes(), 1);
}

pub async fn login_restarts_the_absolute_timeout(harness: &dyn Harness) {
    let minutes = |m: u64| Duration::from_secs(m * 60);
    let ms = Duration::from_millis(1);
    for reset in [true, false] {
        let config = SessionConfig::builder()
            .idle_timeout(minutes(10))
            .absolute_timeout(minutes(30))
            .reset_absolute_on_login(reset);
        let app = TestApp::new(harness.storage(), config);
        let start = app.clock.now();
        let pair = app.session_with("x").await;
        for minute in [9, 18] {
            app.clock.set(start.saturating_add(minutes(minute)));
            app.call(post_request("/set/y", Some(&pair))).await;
        }
        app.clock.set(start.saturating_add(minutes(25)));
        let login = app.call(post_request("/login?user=ada", Some(&pair))).await;
        let pair = login.cookie_pair(COOKIE).unwrap();
        // Active every 9 minutes or less: only the absolute timeout ends it,
        // 30 minutes after login, or after the session began.
        let (active, end) = if reset {
            (&[31, 40, 49][..], minutes(55))
        } else {
            (&[29][..], minutes(30))
        };
        for minute in active {
            app.clock.set(start.saturating_add(minutes(*minute)));
            let reply = app.call(get_request("/whoami", Some(&pair))).await;
            assert_eq!(reply.body, "ada", "reset {reset}, minute {minute}");
        }
        app.clock.set(start.saturating_add(end - ms));
        let reply = app.call(get_request("/whoami", Some(&pair))).await;
        assert_eq!(reply.body, "ada", "reset {reset}, just before the end");
        app.clock.set(start.saturating_add(end));
        let reply = app.call(get_request("/whoami", Some(&pair))).await;
        assert_eq!(reply.body, "anonymous", "reset {reset}, at the end");
    }
}

pub async fn a_persistent_cookie_never_outlives_the_absolute_timeout(harness: &dyn Harness) {
    let config = SessionConfig::builder()
        .persistent(true)
        .idle_timeout(Duration::from_secs(10 * 60))
        .absolute_timeout(Duration::from_secs(30 * 60));
    let app = TestApp::new(harness.storage(), config);
    let start = app.clock.now();
    let pair = app.session_with("x").await;
    for (minute, max_age) in [(9, 600), (18, 600), (27, 180)] {
        app.clock
            .set(start.saturating_add(Duration::from_secs(minute * 60)));
        let reply = app
            .call(post_request(&format!("/set/m{minute}"), Some(&pair)))
            .await;
        assert_eq!(
            reply.set_cookies(),
            [format!(
                "{pair}; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age={max_age}"
            )],
            "minute {minute}"
        );
    }
}

pub async fn an_update_after_a_concurrent_logout_ends_the_session(harness: &dyn Harness) {
    let race = logout_during(harness, "/set/n", |session, pause| async move {
        let before = session.get::<i64>("n").await;
        pause.wait().await;
        let updated = session
            .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
            .await;
        let inserted = session.insert("late", &1).await;
        let after = session.get::<i64>("n").await;
        format!("{before:?} / {updated:?} / {inserted:?} / {after:?}")
    })
    .await;
    assert_eq!(
        race.slow.body,
        "Ok(Some(1)) / Err(Gone) / Err(Gone) / Ok(None)"
    );
    assert!(race.slow.set_cookies().is_empty(), "{:?}", race.slow);
    assert_eq!(
        race.probe.calls(Op::Update),
        1,
        "nothing written after Gone"
    );
    assert!(!harness.raw_exists(&key_of(&race.pair)).await.unwrap());
}

/// A write that lands between a slow request's load and its conditioned
/// update is kept, also by the slow request's later writes: what that
/// update learnt of one key leaves its view of the others stale.
pub async fn a_write_between_load_and_update_is_kept(harness: &dyn Harness) {
    let race = request_during(
        harness,
        "/set/n",
        "/set/other",
        |session, pause| async move {
            let before = session.get::<i64>("n").await;
            pause.wait().await;
            let updated = session
                .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
                .await;
            let inserted = session.insert("late", &1).await;
            format!("{before:?} / {updated:?} / {inserted:?}")
        },
    )
    .await;
    assert_eq!(race.interlude.body, "set");
    assert_eq!(race.slow.body, "Ok(Some(1)) / Ok(2) / Ok(())");
    let stored = harness
        .storage()
        .load(&key_of(&race.pair), Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.data.keys().collect::<Vec<_>>(),
        ["late", "n", "other"]
    );
    assert_eq!(stored.data.get::<i64>("n").unwrap(), Some(2));
}

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
        call(&router, get_request("/keys", Some(&pair))).await.body,
        "s303,s404"
    );
}

pub async fn id_collisions_are_retried(harness: &dyn Harness) {
    let app = app(harness);
    app.probe.collide_next(Op::Create, 1);
    let created = app.call(post_request("/set/x", None)).await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    let pair = created.cookie_pair(COOKIE).unwrap();
    assert_eq!(app.probe.calls(Op::Create), 2);
    assert_eq!(app.call(get_request("/keys", Some(&pair))).await.body, "x");

    app.probe.collide_next(Op::Cycle, 1);
    let login = app.call(post_request("/login?user=ada", Some(&pair))).await;
    assert_eq!(login.body, "welcome ada", "{login:?}");
    assert_eq!(app.probe.calls(Op::Cycle), 2);
    let after = login.cookie_pair(COOKIE).unwrap();
    assert_ne!(after, pair);
    assert_eq!(
        app.call(get_request("/whoami", Some(&after))).await.body,
        "ada"
    );
}

/// A login handler's steps: cycle the id, then a deferred insert and an
/// immediate update, so both kinds of write follow the cycle.
async fn log_in(session: &Session) -> Result<(), SessionError> {
    session.cycle_id().await?;
    session.insert("user", "ada").await?;
    session
        .update("logins", |n: Option<i64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(())
}

/// Whether anything stored under the id of `pair`, live or not, holds a
/// value the login wrote.
async fn login_under(harness: &dyn Harness, pair: &str) -> bool {
    let key = key_of(pair);
    let raw = harness.read_raw(&key).await.unwrap().unwrap_or_default();
    let holds = |name: &[u8]| raw.windows(name.len()).any(|window| window == name);
    let loaded = harness.storage().load(&key, Timestamp::now()).await;
    let live_with_login = loaded.unwrap().is_some_and(|record| {
        record.data.contains_key("user") || record.data.contains_key("logins")
    });
    live_with_login || holds(b"logins") || holds(b"ada")
}

/// Fixation: once `cycle_id` was called, nothing the request writes is ever
/// visible under the old id, whether the handler then answers 5xx, the
/// cycle fails, or the client goes away after the update.
pub async fn a_login_is_never_written_under_the_old_id(harness: &dyn Harness) {
    let (updated, updated_rx) = oneshot::channel::<()>();
    let updated = Arc::new(Mutex::new(Some(updated)));
    let hangs = move |session: Session| {
        let updated = updated.clone();
        async move {
            log_in(&session).await.unwrap();
            let _ = updated.lock().unwrap().take().unwrap().send(());
            std::future::pending::<&str>().await
        }
    };
    let probe = ProbeStorage::new(harness.storage());
    let router = crate::app::routes()
        .route(
            "/login-fails",
            post(|session: Session| async move {
                let logged_in = log_in(&session).await;
                let status = StatusCode::INTERNAL_SERVER_ERROR;
                (status, format!("{logged_in:?}"))
            }),
        )
        .route("/login-hangs", post(hangs))
        .layer(SessionLayer::from_arc(probe.clone()));
    let planted = || async {
        call(&router, post_request("/set/cart", None))
            .await
            .cookie_pair(COOKIE)
            .unwrap()
    };

    // A 5xx after the update: the cycle happened, the new cookie goes out.
    let old = planted().await;
    let reply = call(&router, post_request("/login-fails", Some(&old))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !login_under(harness, &old).await,
        "5xx: the login is in the old id"
    );
    let new = reply
        .cookie_pair(COOKIE)
        .expect("the new id's cookie, even on a 5xx");
    assert_ne!(new, old);
    assert_eq!(
        call(&router, get_request("/keys", Some(&new))).await.body,
        "cart,logins,user",
        "the update wrote itself and the changes before it, under the new id"
    );

    // A failing cycle: the old session is as it was, nothing more written.
    let old = planted().await;
    probe.set_fault(Op::Cycle, Some(Fault::Fail));
    let reply = call(&router, post_request("/login-fails", Some(&old))).await;
    probe.set_fault(Op::Cycle, None);
    assert_service_unavailable(&reply);
    assert!(
        !login_under(harness, &old).await,
        "failed cycle: the login is in the old id"
    );
    assert_eq!(
        call(&router, get_request("/keys", Some(&old))).await.body,
        "cart"
    );

    // The client goes away after the update: the response future is dropped.
    let old = planted().await;
    let request = {
        let (router, old) = (router.clone(), old.clone());
        tokio::spawn(async move { call(&router, post_request("/login-hangs", Some(&old))).await })
    };
    updated_rx.await.unwrap();
    request.abort();
    assert!(request.await.unwrap_err().is_cancelled());
    assert!(
        !login_under(harness, &old).await,
        "dropped: the login is in the old id"
    );
    assert_eq!(
        call(&router, get_request("/keys", Some(&old))).await.body,
        ""
    );
}

/// A request on the old id while a login is in flight: once `cycle_id` has
/// returned, the old id loads nothing (the other request starts afresh);
/// a request that loaded the old id before writes nothing after it.
pub async fn a_login_races_requests_on_the_old_id(harness: &dyn Harness) {
    let storage = harness.storage();
    let old_is_dead = |pair: String| {
        let storage = storage.clone();
        async move {
            let loaded = storage.load(&key_of(&pair), Timestamp::now()).await;
            loaded.unwrap().is_none()
        }
    };

    // The login has cycled and is still running when `/incr` arrives.
    let race = request_during(harness, "/set/cart", "/incr", |session, pause| async move {
        session.cycle_id().await.unwrap();
        pause.wait().await;
        session.insert("user", "ada").await.unwrap();
        "logged in".to_owned()
    })
    .await;
    assert_eq!(race.slow.body, "logged in");
    let fresh = race.interlude.cookie_pair(COOKIE);
    assert!(
        fresh.as_ref().is_some_and(|fresh| *fresh != race.pair),
        "the old id still loaded after cycle_id returned: {:?}",
        race.interlude
    );
    assert!(old_is_dead(race.pair.clone()).await);
    let logged_in = race.slow.cookie_pair(COOKIE).unwrap();
    let keys = call(
        &crate::app::router(SessionLayer::from_arc(storage.clone())),
        get_request("/keys", Some(&logged_in)),
    )
    .await;
    assert_eq!(keys.body, "cart,user");

    // A request that loaded the old id before the login writes after it.
    let race = request_during(
        harness,
        "/set/cart",
        "/login?user=ada",
        |session, pause| async move {
            session.get::<i64>("cart").await.unwrap();
            pause.wait().await;
            let late = session
                .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
                .await;
            format!("{late:?}")
        },
    )
    .await;
    assert_eq!(race.slow.body, "Err(Gone)");
    assert!(race.slow.set_cookies().is_empty());
    assert!(old_is_dead(race.pair.clone()).await);
    let logged_in = race.interlude.cookie_pair(COOKIE).unwrap();
    let keys = call(
        &crate::app::router(SessionLayer::from_arc(storage.clone())),
        get_request("/keys", Some(&logged_in)),
    )
    .await;
    assert_eq!(keys.body, "cart,user");
}

/// Cookie tossing: a login can start from a clean record, so values an
/// attacker planted in the session before login (a CSRF token, a
/// `return_to`) do not survive it; the keys the application names do.
pub async fn a_login_can_start_from_a_clean_record(harness: &dyn Harness) {
    let (router, _probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/login-clean",
        post(|session: Session| async move {
            session.cycle_id_keeping(&["cart", "absent"]).await.unwrap();
            session.insert("user", "ada").await.unwrap();
            "welcome"
        }),
    );
    let planted = call(&router, post_request("/set/csrf", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    for key in ["return_to", "cart"] {
        call(
            &router,
            post_request(&format!("/set/{key}"), Some(&planted)),
        )
        .await;
    }
    let login = call(&router, post_request("/login-clean", Some(&planted))).await;
    let logged_in = login.cookie_pair(COOKIE).unwrap();
    assert_ne!(logged_in, planted);
    assert_eq!(
        call(&router, get_request("/keys", Some(&logged_in)))
            .await
            .body,
        "cart,user"
    );
    assert_eq!(
        call(&router, get_request("/keys", Some(&planted)))
            .await
            .body,
        ""
    );
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
        call(&twice, get_request("/keys", Some(&pair))).await.body,
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
    let read = app.call(get_request("/keys", Some(&pair))).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, ""));
    let write = app.call(post_request("/set/y", Some(&pair))).await;
    assert_eq!(write.status, StatusCode::OK);
    let fresh = write.cookie_pair(COOKIE).expect("a fresh session");
    assert_ne!(fresh, pair);
    app.probe.set_fault(Op::Load, None);
    assert_eq!(harness.read_raw(&key).await.unwrap(), before);
    assert_eq!(app.call(get_request("/keys", Some(&fresh))).await.body, "y");
}

/// Runs requests that anyone can send (unknown, malformed, too many and
/// ambiguous session cookies) under a capture and checks that each kind
/// logs at INFO or above at most once a minute, with a count. Not part of
/// `http_suite!`, for the reason given at
/// [`traces_never_contain_a_session_id`]; `tests/tests/traces.rs` runs it.
pub async fn client_triggered_logs_are_rate_limited(harness: &dyn Harness) {
    let storage = harness.storage();
    let (log, ()) = tokio::task::spawn_blocking(move || {
        crate::trace::capture(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(floods(storage))
        })
    })
    .await
    .unwrap();
    let summaries: Vec<&str> = log
        .lines()
        .filter(|line| !line.contains("DEBUG") && !line.contains("TRACE"))
        .filter(|line| line.contains("since the last such line"))
        .collect();
    let count = |what: &str| summaries.iter().filter(|line| line.contains(what)).count();
    for what in [
        "no live session",
        "malformed",
        "beyond the first few",
        "several live sessions",
    ] {
        assert_eq!(
            count(what),
            2,
            "{what}: one line a minute, twice: {summaries:#?}"
        );
    }
    let counts: Vec<u64> = summaries
        .iter()
        .filter(|line| line.contains("no live session"))
        .filter_map(|line| {
            line.split("count=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        counts.len() == 2 && counts[0] == 1 && counts[1] > 400,
        "the second line counts what the first did not: {counts:?}"
    );
}

/// A hundred of each request anyone can send, then a minute later one more.
async fn floods(storage: Arc<dyn SessionStorage>) {
    let app = TestApp::with_defaults(storage);
    let live = [app.session_with("a").await, app.session_with("b").await];
    let forged = (0..4).map(|_| forged_pair()).collect::<Vec<_>>().join("; ");
    let malformed = format!("{COOKIE}=malformed");
    let excess = (0..6).map(|_| forged_pair()).collect::<Vec<_>>().join("; ");
    let ambiguous = live.join("; ");
    for round in 0..2 {
        let requests = if round == 0 { 100 } else { 1 };
        for _ in 0..requests {
            for cookie in [&forged, &malformed, &excess, &ambiguous] {
                app.call(get_request("/keys", Some(cookie))).await;
            }
        }
        app.clock.advance(Duration::from_secs(61));
    }
}
