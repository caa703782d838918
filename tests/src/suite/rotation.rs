//! Periodic id rotation on the fake clock: a session's id is replaced once
//! it is old enough, the old id keeps finding the same session for the
//! grace window and nothing after it, requests in flight across a rotation
//! keep their writes, and login, logout and revoke never have a grace
//! window.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use session_core::conformance::Harness;
use session_http::{Session, SessionConfig};
use tokio::sync::Notify;

use super::custom;
use crate::COOKIE;
use crate::app::{Reply, TestApp, call, get_request, post_request};
use crate::clock::FakeClock;
use crate::probe::Op;

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_rotation {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            ids_rotate_with_age_and_the_old_one_lasts_the_grace,
            a_write_in_flight_across_a_rotation_is_kept,
            writes_through_both_ids_are_all_kept,
            logout_or_revoke_in_the_grace_ends_both_ids,
            a_login_in_the_grace_ends_both_ids_at_once,
            a_persistent_cookie_is_not_sent_again_for_an_id_rotated_meanwhile,
        );
    };
}

const ROTATE_AFTER: Duration = Duration::from_secs(10 * 60);
const GRACE: Duration = Duration::from_secs(10);
const MS: Duration = Duration::from_millis(1);

/// The layer: ids rotate once 10 minutes old, with a 10-second grace.
fn rotating_app(harness: &dyn Harness) -> TestApp {
    let config = SessionConfig::builder()
        .rotate_after(ROTATE_AFTER)
        .rotation_grace(GRACE);
    TestApp::new(harness.storage(), config)
}

/// The new session cookie of `reply`, if it sets one.
fn new_pair(reply: &Reply) -> Option<String> {
    reply.cookie_pair(COOKIE)
}

/// A session holding `n = 1` created now, and its id rotated by a read
/// once it is due: the old pair and the new one.
async fn rotated(app: &TestApp) -> (String, String) {
    let old = app.session_with("n").await;
    app.clock.advance(ROTATE_AFTER);
    let read = app.call(get_request("/read", Some(&old))).await;
    assert_eq!(read.body, "n=1");
    let new = new_pair(&read).expect("the rotation's new id");
    assert_ne!(new, old);
    (old, new)
}

/// A read of `/read` with `pair`.
async fn read(app: &TestApp, pair: &str) -> Reply {
    app.call(get_request("/read", Some(pair))).await
}

/// No new id before the id is 10 minutes old; then the first request gets
/// one. The old id still reads and writes the same session, and is never
/// sent a cookie, until 10 seconds after the rotation, to the
/// millisecond; the new id rotates again 10 minutes after it was given.
pub async fn ids_rotate_with_age_and_the_old_one_lasts_the_grace(harness: &dyn Harness) {
    let app = rotating_app(harness);
    let start = app.clock.now();
    let at = |elapsed: Duration| start.saturating_add(elapsed);
    let old = app.session_with("n").await;
    app.clock.set(at(ROTATE_AFTER - MS));
    let early = read(&app, &old).await;
    assert_eq!(new_pair(&early), None, "{early:?}");
    assert_eq!(app.probe.calls(Op::Rotate), 0);

    app.clock.set(at(ROTATE_AFTER));
    let due = read(&app, &old).await;
    assert_eq!(due.body, "n=1");
    let new = new_pair(&due).expect("a new id once the old one is 10 minutes old");
    assert_ne!(new, old);
    assert_eq!(app.probe.calls(Op::Rotate), 1);

    // The grace window: the old id is the same session.
    app.clock.set(at(ROTATE_AFTER + GRACE - MS));
    let late = read(&app, &old).await;
    assert_eq!(late.body, "n=1");
    assert!(late.set_cookies().is_empty(), "{late:?}");
    let written = app.call(post_request("/set/m", Some(&old))).await;
    assert!(written.set_cookies().is_empty(), "{written:?}");
    let names = app.call(get_request("/names", Some(&new))).await;
    assert_eq!(
        names.body, "m,n",
        "a write through the old id is the session's"
    );
    assert_eq!(app.probe.calls(Op::Rotate), 1, "an old id never rotates");

    app.clock.set(at(ROTATE_AFTER + GRACE));
    let dead = read(&app, &old).await;
    assert_eq!(dead.body, "n=none");
    assert!(dead.set_cookies().is_empty());
    assert_eq!(read(&app, &new).await.body, "n=1");

    app.clock.set(at(2 * ROTATE_AFTER - MS));
    assert_eq!(new_pair(&read(&app, &new).await), None);
    app.clock.set(at(2 * ROTATE_AFTER));
    let again = new_pair(&read(&app, &new).await).expect("the second rotation");
    assert!(again != new && again != old);
}

/// A request that loaded the session under its old id before another
/// rotated it, and writes after (held between the two), writes to the
/// session through the forward: two updates, the first finding the old key
/// gone, and no cookie for it.
pub async fn a_write_in_flight_across_a_rotation_is_kept(harness: &dyn Harness) {
    let app = Arc::new(rotating_app(harness));
    let old = app.session_with("n").await;
    app.clock.advance(ROTATE_AFTER);
    app.probe.reset();
    let release = app.probe.hold_next_update();
    let writer = {
        let (app, old) = (Arc::clone(&app), old.clone());
        tokio::spawn(async move { app.call(post_request("/set/a", Some(&old))).await })
    };
    app.probe.until_held().await;
    let rotating = read(&app, &old).await;
    let new = new_pair(&rotating).expect("the rotation's new id");
    assert_eq!(app.probe.calls(Op::Rotate), 1);
    release.send(()).unwrap();
    let written = writer.await.unwrap();
    assert_eq!(written.body, "set");
    assert!(written.set_cookies().is_empty(), "{written:?}");
    assert_eq!(
        app.probe.calls(Op::Update),
        2,
        "gone under the old key, then through the forward"
    );
    assert_eq!(app.probe.calls(Op::Rotate), 1);
    let names = app.call(get_request("/names", Some(&new))).await;
    assert_eq!(names.body, "a,n");
}

/// During the grace window, concurrent increments through the old id and
/// the new one all count: one session, not a copy.
pub async fn writes_through_both_ids_are_all_kept(harness: &dyn Harness) {
    let app = Arc::new(rotating_app(harness));
    let (old, new) = rotated(&app).await;
    let mut requests = Vec::new();
    for pair in [&old, &new].repeat(8) {
        let (app, pair) = (Arc::clone(&app), pair.clone());
        requests.push(tokio::spawn(async move {
            app.call(post_request("/incr", Some(&pair))).await
        }));
    }
    for request in requests {
        let reply = request.await.unwrap();
        assert_eq!(reply.status, http::StatusCode::OK, "{reply:?}");
    }
    let total = app.call(post_request("/incr", Some(&new))).await;
    assert_eq!(total.body, "18", "n = 1, 16 increments and this one");
}

/// A logout through the old id, or through the new one, during the grace
/// window ends the session under both; so does revoking the user's
/// sessions, which list one session whichever id asks.
pub async fn logout_or_revoke_in_the_grace_ends_both_ids(harness: &dyn Harness) {
    let app = rotating_app(harness);
    for logout_with_old in [true, false] {
        let (old, new) = rotated(&app).await;
        let through = if logout_with_old { &old } else { &new };
        let bye = app.call(post_request("/logout", Some(through))).await;
        assert_eq!(bye.body, "bye");
        for pair in [&old, &new] {
            assert_eq!(
                read(&app, pair).await.body,
                "n=none",
                "old id {logout_with_old}"
            );
        }
    }

    let login = app
        .call(post_request("/account/login?user=ada", None))
        .await;
    let old = new_pair(&login).unwrap();
    app.clock.advance(ROTATE_AFTER);
    let new = new_pair(&read(&app, &old).await).expect("the rotation's new id");
    let listed_old = app
        .call(get_request("/account/sessions", Some(&old)))
        .await
        .body;
    let listed_new = app
        .call(get_request("/account/sessions", Some(&new)))
        .await
        .body;
    assert_eq!(listed_old.lines().count(), 1, "{listed_old}");
    assert_eq!(listed_old, listed_new, "one session, current for both ids");
    assert!(listed_old.contains(" current "), "{listed_old}");
    let revoked = app
        .call(post_request("/account/revoke-all", Some(&old)))
        .await;
    assert_eq!(revoked.body, "1");
    for pair in [&old, &new] {
        let user = app.call(get_request("/account/user", Some(pair))).await;
        assert_eq!(user.body, "none");
    }
}

/// A login through the old id during the grace window moves the session
/// to a fresh id, and neither the old id nor the rotated one finds it
/// afterwards: a login has no grace window.
pub async fn a_login_in_the_grace_ends_both_ids_at_once(harness: &dyn Harness) {
    let app = rotating_app(harness);
    let (old, new) = rotated(&app).await;
    let login = app
        .call(post_request("/account/login?user=ada", Some(&old)))
        .await;
    assert_eq!(login.body, "welcome ada");
    let logged_in = new_pair(&login).expect("a login's fresh id");
    assert!(logged_in != old && logged_in != new);
    for pair in [&old, &new] {
        assert_eq!(read(&app, pair).await.body, "n=none");
    }
    assert_eq!(read(&app, &logged_in).await.body, "n=1");
}

/// A persistent session's request that wrote under its id (so its cookie,
/// whose `Max-Age` moved, would be sent again) while another request
/// rotated that id is sent no cookie: the other response carries the new
/// id, which the old one must not overwrite in the browser. The write is
/// held between the handler's `update` and the end of its request; then
/// the held request finds its id due for rotation too (its rotate finds
/// a forward) or, on a server whose clock is a moment behind, not yet due
/// (it looks before resending). Either way the session goes on under the
/// new id.
pub async fn a_persistent_cookie_is_not_sent_again_for_an_id_rotated_meanwhile(
    harness: &dyn Harness,
) {
    for behind in [Duration::ZERO, MS] {
        let (written, go_on) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let route = {
            let (written, go_on) = (Arc::clone(&written), Arc::clone(&go_on));
            post(move |session: Session| async move {
                let n = session
                    .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
                    .await;
                written.notify_one();
                go_on.notified().await;
                n.map(|n| n.to_string())
            })
        };
        let clock = FakeClock::default();
        let config = SessionConfig::builder()
            .persistent(true)
            .rotate_after(ROTATE_AFTER)
            .rotation_grace(GRACE)
            .clock(clock.clock())
            .build()
            .unwrap();
        let (router, probe) = custom(harness.storage(), config, "/held-incr", route);
        let created = call(&router, post_request("/set/n", None)).await;
        let old = new_pair(&created).unwrap();
        let due = clock.now().saturating_add(ROTATE_AFTER);
        clock.set(due);
        let held = {
            let (router, old) = (router.clone(), old.clone());
            tokio::spawn(async move { call(&router, post_request("/held-incr", Some(&old))).await })
        };
        written.notified().await;
        // The update went to the old key; now another request rotates it.
        let rotating = call(&router, get_request("/read", Some(&old))).await;
        let new = new_pair(&rotating).expect("the rotation's new id");
        assert_eq!(probe.calls(Op::Rotate), 1);
        clock.set(due.saturating_sub(behind));
        go_on.notify_one();
        let reply = held.await.unwrap();
        assert_eq!(reply.body, "2");
        assert!(
            reply.set_cookies().is_empty(),
            "behind {behind:?}: {reply:?}"
        );
        let tried = if behind.is_zero() { 2 } else { 1 };
        assert_eq!(probe.calls(Op::Rotate), tried, "behind {behind:?}");
        let read = call(&router, get_request("/read", Some(&new))).await;
        assert_eq!(read.body, "n=2");
    }
}
