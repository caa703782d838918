//! Accounts: a login binds the session to a user, the user lists their
//! sessions (one of them the current one) and revokes them by handle, all
//! but the current one, or all; a revoked session stays revoked, even
//! against a request in flight on it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use session_core::conformance::Harness;
use session_core::{Login, SessionHandle, Timestamp, UserKey};
use session_http::{Session, SessionConfig};

use super::races::requests_during;
use super::{app, assert_service_unavailable, custom, key_of};
use crate::COOKIE;
use crate::app::{Reply, call, get_request, post_request};
use crate::no_accounts::NoAccounts;
use crate::probe::{Fault, Op};
use crate::records::fresh_key;

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_accounts {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            a_login_binds_the_session_to_the_user,
            the_list_shows_every_device_and_one_current,
            a_session_is_revoked_by_its_handle,
            revoke_others_keeps_only_this_session,
            revoke_all_ends_this_session_too,
            a_request_in_flight_on_a_revoked_session_writes_nothing,
            a_login_with_a_limit_revokes_the_least_recently_seen,
            a_store_without_accounts_gives_a_clear_error,
            a_failed_revoke_poisons_the_session,
        );
    };
}

/// Logs `user` in from `device` (with the session of `cookie`, if any)
/// and returns the new cookie pair.
async fn log_in(router: &Router, user: &str, device: &str, cookie: Option<&str>) -> String {
    let path = format!("/account/login?user={user}&device={device}");
    let reply = call(router, post_request(&path, cookie)).await;
    assert_eq!(reply.body, format!("welcome {user}"), "{reply:?}");
    reply.cookie_pair(COOKIE).expect("a login sets a cookie")
}

/// A GET's body.
async fn body_of(router: &Router, path: &str, cookie: &str) -> String {
    call(router, get_request(path, Some(cookie))).await.body
}

/// A POST's reply.
async fn post_as(router: &Router, path: &str, cookie: &str) -> Reply {
    call(router, post_request(path, Some(cookie))).await
}

/// The sessions the session of `cookie` lists: `(handle, which, device)`.
async fn listed(router: &Router, cookie: &str) -> Vec<(String, String, String)> {
    let reply = call(router, get_request("/account/sessions", Some(cookie))).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply
        .body
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.splitn(3, ' ').collect();
            (fields[0].into(), fields[1].into(), fields[2].into())
        })
        .collect()
}

/// The handle the list gives the session of `cookie`.
fn handle_of(cookie: &str) -> String {
    SessionHandle::of(&key_of(cookie)).to_string()
}

/// Whether the session of `cookie` is anonymous now, and its reply sets no cookie.
async fn is_anonymous(router: &Router, cookie: &str) -> bool {
    let reply = call(router, get_request("/whoami", Some(cookie))).await;
    reply.body == "anonymous" && reply.set_cookies().is_empty()
}

/// A removal cookie: the name, no value, `Max-Age=0`.
fn removes_the_cookie(reply: &Reply) -> bool {
    let cookies = reply.set_cookies();
    cookies.len() == 1 && cookies[0].starts_with("__Host-id=;") && cookies[0].contains("Max-Age=0")
}

/// A login moves the session to a new id bound to the user (readable as
/// `user()`), keeps its data, and leaves the old id anonymous; a login
/// with no session creates a bound one.
pub async fn a_login_binds_the_session_to_the_user(harness: &dyn Harness) {
    let app = app(harness);
    let router = &app.router;
    let before = app.session_with("cart").await;
    let after = log_in(router, "ada", "laptop", Some(&before)).await;
    assert_ne!(after, before);
    assert_eq!(app.probe.calls(Op::Login), 1);
    assert_eq!(app.probe.calls(Op::Cycle), 0, "one login, no cycle");
    let ada = UserKey::of("ada").to_string();
    assert_eq!(body_of(router, "/account/user", &after).await, ada);
    assert_eq!(body_of(router, "/names", &after).await, "cart,user");
    assert_eq!(body_of(router, "/account/user", &before).await, "none");
    assert!(is_anonymous(router, &before).await);
    let storage = harness.storage();
    let old = storage.load(&key_of(&before), app.clock.now()).await;
    assert!(old.unwrap().is_none(), "the old id loads nothing");

    let fresh = log_in(router, "ada", "phone", None).await;
    let record = storage.load(&key_of(&fresh), app.clock.now()).await;
    let account = record.unwrap().unwrap().account.unwrap();
    assert_eq!(account.user, UserKey::of("ada"));
    assert_eq!(account.device.get("name"), Some("phone"));
    assert_eq!(body_of(router, "/names", &fresh).await, "user");
}

/// Two devices of one user list both sessions, each marking itself and
/// only itself `current`; another user's sessions are not in the list,
/// and a session not logged in lists nothing.
pub async fn the_list_shows_every_device_and_one_current(harness: &dyn Harness) {
    let app = app(harness);
    let router = &app.router;
    let laptop = log_in(router, "ada", "laptop", None).await;
    let phone = log_in(router, "ada", "phone", None).await;
    let tablet = log_in(router, "bob", "tablet", None).await;
    for (cookie, device) in [(&laptop, "laptop"), (&phone, "phone")] {
        let list = listed(router, cookie).await;
        assert_eq!(list.len(), 2, "{list:?}");
        let current: Vec<_> = list
            .iter()
            .filter(|(_, which, _)| which == "current")
            .collect();
        assert_eq!(current.len(), 1, "{list:?}");
        assert_eq!(current[0].0, handle_of(cookie));
        assert_eq!(current[0].2, device);
        let mut devices: Vec<&str> = list.iter().map(|(_, _, device)| device.as_str()).collect();
        devices.sort_unstable();
        assert_eq!(devices, ["laptop", "phone"]);
    }
    assert_eq!(listed(router, &tablet).await.len(), 1);
    let anonymous = app.session_with("x").await;
    assert!(listed(router, &anonymous).await.is_empty());
    assert_eq!(app.probe.calls(Op::List), 3, "no list without a user");
}

/// A revoke by handle ends that session only; an unknown or malformed
/// handle, or one of another user's sessions, revokes nothing (404); a
/// session's own handle ends it with a removal cookie.
pub async fn a_session_is_revoked_by_its_handle(harness: &dyn Harness) {
    let app = app(harness);
    let router = &app.router;
    let laptop = log_in(router, "ada", "laptop", None).await;
    let phone = log_in(router, "ada", "phone", None).await;
    let bobs = log_in(router, "bob", "tablet", None).await;
    let unknown = SessionHandle::of(&fresh_key()).to_string();
    for handle in [handle_of(&bobs), unknown, "not-a-handle".to_owned()] {
        let reply = post_as(router, &format!("/account/revoke/{handle}"), &laptop).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{handle}: {reply:?}");
        assert!(reply.set_cookies().is_empty());
    }
    assert_eq!(body_of(router, "/whoami", &bobs).await, "bob");
    assert_eq!(listed(router, &laptop).await.len(), 2, "nothing changed");

    let reply = post_as(
        router,
        &format!("/account/revoke/{}", handle_of(&phone)),
        &laptop,
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "revoked")
    );
    assert!(reply.set_cookies().is_empty(), "this session stays");
    assert!(is_anonymous(router, &phone).await);
    assert_eq!(listed(router, &laptop).await.len(), 1);

    let own = post_as(
        router,
        &format!("/account/revoke/{}", handle_of(&laptop)),
        &laptop,
    )
    .await;
    assert_eq!(own.body, "revoked");
    assert!(removes_the_cookie(&own), "{own:?}");
    assert!(is_anonymous(router, &laptop).await);
}

/// Revoke-others ends every other session of the user, none of another
/// user's, and keeps this one.
pub async fn revoke_others_keeps_only_this_session(harness: &dyn Harness) {
    let app = app(harness);
    let router = &app.router;
    let laptop = log_in(router, "ada", "laptop", None).await;
    let others = [
        log_in(router, "ada", "phone", None).await,
        log_in(router, "ada", "tablet", None).await,
    ];
    let bobs = log_in(router, "bob", "phone", None).await;
    let reply = post_as(router, "/account/revoke-others", &laptop).await;
    assert_eq!(reply.body, "2");
    assert!(reply.set_cookies().is_empty(), "{reply:?}");
    for other in &others {
        assert!(is_anonymous(router, other).await);
    }
    assert_eq!(body_of(router, "/whoami", &laptop).await, "ada");
    assert_eq!(body_of(router, "/whoami", &bobs).await, "bob");
    let list = listed(router, &laptop).await;
    assert_eq!((list.len(), list[0].1.as_str()), (1, "current"));
    assert_eq!(
        post_as(router, "/account/revoke-others", &laptop)
            .await
            .body,
        "0"
    );
}

/// Revoke-all ("log out everywhere") ends every session of the user, this
/// one too: its response removes the cookie. Without a user it ends
/// nothing.
pub async fn revoke_all_ends_this_session_too(harness: &dyn Harness) {
    let app = app(harness);
    let router = &app.router;
    let laptop = log_in(router, "ada", "laptop", None).await;
    let phone = log_in(router, "ada", "phone", None).await;
    let reply = post_as(router, "/account/revoke-all", &laptop).await;
    assert_eq!(reply.body, "2");
    assert!(removes_the_cookie(&reply), "{reply:?}");
    for cookie in [&laptop, &phone] {
        assert!(is_anonymous(router, cookie).await);
        assert!(!harness.raw_exists(&key_of(cookie)).await.unwrap());
    }
    let anonymous = app.session_with("cart").await;
    let reply = post_as(router, "/account/revoke-all", &anonymous).await;
    assert_eq!(reply.body, "0");
    assert!(reply.set_cookies().is_empty());
    assert_eq!(body_of(router, "/names", &anonymous).await, "cart");
}

/// A request that loaded its session before another device revoked it
/// writes nothing at its end: the session stays gone, and no cookie is
/// sent.
pub async fn a_request_in_flight_on_a_revoked_session_writes_nothing(harness: &dyn Harness) {
    let slow = |session: Session, pause: super::races::Pause| async move {
        let user = session.get::<String>("user").await;
        pause.wait().await;
        let inserted = session.insert("late", &1).await;
        format!("{user:?} / {inserted:?}")
    };
    let from_another_device = |router: Router, first: String| async move {
        let other = log_in(&router, "ada", "phone", None).await;
        let path = format!("/account/revoke/{}", handle_of(&first));
        post_as(&router, &path, &other).await
    };
    let setup = "/account/login?user=ada&device=laptop";
    let race = requests_during(harness, setup, slow, from_another_device).await;
    assert_eq!(race.interlude.body, "revoked");
    assert_eq!(race.slow.body, r#"Ok(Some("ada")) / Ok(())"#);
    assert!(race.slow.set_cookies().is_empty(), "{:?}", race.slow);
    // Each login's write of the user, then the slow request's, which
    // found the session gone.
    assert_eq!(race.probe.calls(Op::Update), 3);
    assert!(!harness.raw_exists(&key_of(&race.pair)).await.unwrap());
    let storage = harness.storage();
    let loaded = storage.load(&key_of(&race.pair), Timestamp::now()).await;
    assert!(loaded.unwrap().is_none(), "the revoke was undone");
}

/// A login with a limit of two revokes the user's least recently seen
/// other session: not the oldest, which was used since.
pub async fn a_login_with_a_limit_revokes_the_least_recently_seen(harness: &dyn Harness) {
    let app = app(harness);
    let router = &app.router;
    let oldest = log_in(router, "ada", "laptop", None).await;
    app.clock.advance(Duration::from_secs(60));
    let idle = log_in(router, "ada", "phone", None).await;
    app.clock.advance(Duration::from_secs(60));
    // A write: the oldest session is now the most recently seen.
    assert_eq!(
        post_as(router, "/set/cart", &oldest).await.status,
        StatusCode::OK
    );
    app.clock.advance(Duration::from_secs(60));
    let path = "/account/login?user=ada&device=tablet&limit=2";
    let newest = call(router, post_request(path, None)).await;
    let newest = newest.cookie_pair(COOKIE).unwrap();
    assert!(is_anonymous(router, &idle).await);
    assert_eq!(body_of(router, "/whoami", &oldest).await, "ada");
    let mut devices: Vec<String> = listed(router, &newest)
        .await
        .into_iter()
        .map(|(_, _, d)| d)
        .collect();
    devices.sort_unstable();
    assert_eq!(devices, ["laptop", "tablet"]);
}

/// A store without accounts: every account call fails with a clear error
/// before any storage call, and the session is not poisoned (the handler
/// goes on, its later writes are kept).
pub async fn a_store_without_accounts_gives_a_clear_error(harness: &dyn Harness) {
    let handler = |session: Session| async move {
        let tried = session.login(&Login::new(UserKey::of("ada"))).await;
        session.insert("after", &1).await.unwrap();
        format!("{tried:?}")
    };
    let storage = Arc::new(NoAccounts(harness.storage()));
    let config = SessionConfig::default();
    let (router, probe) = custom(
        storage,
        config,
        "/login-anyway",
        axum::routing::post(handler),
    );
    let pair = call(&router, post_request("/set/cart", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    let reply = post_as(&router, "/login-anyway", &pair).await;
    assert_eq!(reply.body, r#"Err(Unsupported("accounts"))"#);
    assert_eq!(probe.calls(Op::Login), 0);
    assert_eq!(body_of(&router, "/names", &pair).await, "after,cart");
    for (method, path) in [
        ("GET", "/account/sessions"),
        ("POST", "/account/login?user=ada"),
        ("POST", "/account/revoke-others"),
        ("POST", "/account/revoke-all"),
    ] {
        probe.reset();
        let reply = if method == "GET" {
            call(&router, get_request(path, Some(&pair))).await
        } else {
            post_as(&router, path, &pair).await
        };
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(reply.body, "this session storage does not support accounts");
        assert_eq!(probe.total_calls(), 0, "{path}: no storage call");
    }
    assert_eq!(body_of(&router, "/names", &pair).await, "after,cart");
}

/// A revoke that fails answers 503 like a failed destroy: nothing more
/// is written, and every session is as it was, so it can be retried.
pub async fn a_failed_revoke_poisons_the_session(harness: &dyn Harness) {
    let app = app(harness);
    let router = &app.router;
    let laptop = log_in(router, "ada", "laptop", None).await;
    let phone = log_in(router, "ada", "phone", None).await;
    app.probe.set_fault(Op::Revoke, Some(Fault::Fail));
    app.probe.reset();
    assert_service_unavailable(&post_as(router, "/account/revoke-all", &laptop).await);
    assert_eq!(app.probe.writes(), 1, "the revoke only");
    app.probe.set_fault(Op::Revoke, None);
    assert_eq!(body_of(router, "/whoami", &laptop).await, "ada");
    assert_eq!(body_of(router, "/whoami", &phone).await, "ada");
    assert_eq!(
        post_as(router, "/account/revoke-all", &laptop).await.body,
        "2"
    );
}
