//! Timeouts on the fake clock: idle and absolute timeouts to the millisecond,
//! throttled touches, and a persistent cookie's `Max-Age`.

use std::time::Duration;

use session_core::conformance::Harness;
use session_http::SessionConfig;

use crate::COOKIE;
use crate::app::{TestApp, get_request, post_request};
use crate::probe::Op;

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_expiry {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            touch_is_throttled,
            a_persistent_cookie_follows_the_deadlines,
            the_idle_timeout_is_exact,
            the_absolute_timeout_is_exact,
            an_update_moves_the_deadlines_it_wrote,
            login_restarts_the_absolute_timeout,
            a_persistent_cookie_never_outlives_the_absolute_timeout,
        );
    };
}

/// An app whose idle timeout is 20 minutes, on the fake clock.
fn idle_app(harness: &dyn Harness, persistent: bool) -> TestApp {
    let config = SessionConfig::builder()
        .idle_timeout(Duration::from_secs(20 * 60))
        .persistent(persistent);
    TestApp::new(harness.storage(), config)
}

/// A read touches only once under 3/4 of the idle timeout is left, then not again; it keeps alive.
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

/// A persistent cookie's `Max-Age` is the idle timeout, re-sent when a touch or update moves it.
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

/// An app with a 10-minute idle and a 30-minute absolute timeout.
fn timeout_app(harness: &dyn Harness) -> TestApp {
    let config = SessionConfig::builder()
        .idle_timeout(Duration::from_secs(10 * 60))
        .absolute_timeout(Duration::from_secs(30 * 60));
    TestApp::new(harness.storage(), config)
}

/// A session is live 1 ms before its idle timeout and gone, with no cookie sent, at it.
pub async fn the_idle_timeout_is_exact(harness: &dyn Harness) {
    let app = timeout_app(harness);
    let start = app.clock.now();
    let (early, late) = (app.session_with("x").await, app.session_with("x").await);
    app.clock
        .set(start.saturating_add(Duration::from_secs(10 * 60) - Duration::from_millis(1)));
    assert_eq!(
        app.call(get_request("/names", Some(&early))).await.body,
        "x"
    );
    app.clock
        .set(start.saturating_add(Duration::from_secs(10 * 60)));
    let expired = app.call(get_request("/names", Some(&late))).await;
    assert_eq!(expired.body, "");
    assert!(expired.set_cookies().is_empty());
}

/// However active, a session is live 1 ms before its absolute timeout and gone at it.
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
        app.call(get_request("/names", Some(&pair))).await.body,
        "m18,m27,m9,x"
    );
    app.clock.set(absolute);
    assert_eq!(
        app.call(get_request("/names", Some(&pair))).await.body,
        "",
        "activity never outlives the absolute timeout"
    );
}

/// An `update` moves the idle deadline itself, so the request needs no touch on top of it.
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

/// The absolute timeout counts from login with `reset_absolute_on_login`, else from the start.
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

/// A persistent cookie's `Max-Age` shrinks to what is left of the absolute timeout.
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
