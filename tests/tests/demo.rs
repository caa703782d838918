//! The demo's router, driven the way the README does: through a real TCP
//! listener with a client that keeps cookies.

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

#[path = "../../session-http/examples/demo/accounts.rs"]
mod accounts;
#[path = "../../session-http/examples/demo/app.rs"]
mod app;
#[path = "../../session-http/examples/demo/options.rs"]
mod options;

use http::StatusCode;
use session_http::SessionLayer;
use session_http::memory::MemoryStorage;
use session_tests::COOKIE;
use session_tests::net::{CookieClient, TestServer};

async fn demo() -> TestServer {
    let config = app::config().build().unwrap();
    let layer = SessionLayer::new(MemoryStorage::new()).with_config(config);
    TestServer::axum(app::router(layer)).await
}

#[tokio::test]
async fn the_root_redirects_to_the_session_page() {
    let server = demo().await;
    let reply = CookieClient::new(server.addr).get("/").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.header("location"), Some("/session"));
    assert!(reply.set_cookies().is_empty());
}

#[tokio::test]
async fn the_session_page_shows_the_previous_visit() {
    let server = demo().await;
    let browser = CookieClient::new(server.addr);
    assert_eq!(browser.get("/session").await.body, "First time\n");
    let second = browser.get("/session").await.body;
    let previous = second.strip_prefix("The time was ").expect(&second);
    assert!(
        previous.trim_end().ends_with('Z'),
        "an RFC 3339 time: {previous}"
    );
    let third = browser.get("/session").await.body;
    assert!(third.starts_with("The time was "));

    let stranger = CookieClient::new(server.addr);
    assert_eq!(stranger.get("/session").await.body, "First time\n");
}

#[tokio::test]
async fn the_counter_counts_per_session() {
    let server = demo().await;
    let (one, two) = (
        CookieClient::new(server.addr),
        CookieClient::new(server.addr),
    );
    assert_eq!(one.get("/counter").await.body, "Visits: 1\n");
    assert_eq!(one.get("/counter").await.body, "Visits: 2\n");
    assert_eq!(two.get("/counter").await.body, "Visits: 1\n");
    assert_eq!(one.get("/counter").await.body, "Visits: 3\n");
}

#[tokio::test]
async fn login_whoami_logout() {
    let server = demo().await;
    let browser = CookieClient::new(server.addr);
    assert_eq!(browser.get("/whoami").await.body, "anonymous\n");
    browser.get("/counter").await;
    let before = browser.cookie(COOKIE).unwrap();

    assert_eq!(
        browser.post_form("/login", "user=ada").await.body,
        "Welcome, ada\n"
    );
    let after = browser.cookie(COOKIE).unwrap();
    assert_ne!(after, before, "login gives the session a new id");
    assert_eq!(browser.get("/whoami").await.body, "ada\n");
    assert_eq!(
        browser.get("/counter").await.body,
        "Visits: 2\n",
        "the data came along"
    );

    let old = CookieClient::new(server.addr);
    old.set_cookie(COOKIE, &before);
    assert_eq!(old.get("/whoami").await.body, "anonymous\n");

    assert_eq!(browser.post("/logout").await.body, "Logged out\n");
    assert_eq!(browser.cookie(COOKIE), None);
    assert_eq!(browser.get("/whoami").await.body, "anonymous\n");
    let replay = CookieClient::new(server.addr);
    replay.set_cookie(COOKIE, &after);
    assert_eq!(replay.get("/whoami").await.body, "anonymous\n");
}

#[tokio::test]
async fn login_takes_the_user_from_the_query_too() {
    let server = demo().await;
    let browser = CookieClient::new(server.addr);
    assert_eq!(
        browser.post("/login?user=grace").await.body,
        "Welcome, grace\n"
    );
    assert_eq!(browser.get("/whoami").await.body, "grace\n");
    assert_eq!(browser.post("/login").await.body, "Welcome, guest\n");
}

/// `remember=1` makes the login's cookie persistent for a month, and the
/// choice stays with the session; a login without it keeps a
/// browser-session cookie.
/// The `Max-Age` of a `Set-Cookie`, if any.
fn max_age(cookie: &str) -> Option<u64> {
    let (_, seconds) = cookie.split_once("; Max-Age=")?;
    seconds.parse().ok()
}

#[tokio::test]
async fn remember_me_gives_a_month_long_persistent_cookie() {
    let server = demo().await;
    let browser = CookieClient::new(server.addr);
    let login = browser.post_form("/login", "user=ada&remember=1").await;
    assert_eq!(login.body, "Welcome, ada\n");
    let cookie = &login.set_cookies()[0];
    assert!(cookie.contains("; HttpOnly;"), "{cookie}");
    let month = 30 * 24 * 3600;
    assert_eq!(max_age(cookie), Some(month));
    // A write moves the deadline: the persistent cookie follows.
    let counted = browser.get("/counter").await;
    assert_eq!(max_age(&counted.set_cookies()[0]), Some(month));

    let plain = CookieClient::new(server.addr);
    let login = plain.post("/login?user=grace").await;
    let cookie = &login.set_cookies()[0];
    assert!(!cookie.contains("Max-Age"), "{cookie}");
    assert!(plain.get("/counter").await.set_cookies().is_empty());
}

/// The demo with `args` on its command line, on memory storage.
async fn demo_with(args: &[&str]) -> TestServer {
    let options = options::Options::parse(args.iter().map(|arg| (*arg).to_owned())).unwrap();
    let layer = SessionLayer::new(MemoryStorage::new()).with_config(options.config().unwrap());
    TestServer::axum(app::router(layer)).await
}

/// `--rotate-after 2 --grace 1`, on the real clock: a session's id is
/// replaced once two seconds old; the old cookie keeps counting the same
/// visits for the second after, and finds nothing once it has passed.
#[tokio::test]
async fn rotation_flags_rotate_ids_with_a_grace_window() {
    let refused =
        options::Options::parse(["--rotate-after".to_owned(), "5".to_owned()].into_iter());
    assert!(
        refused.unwrap().config().is_err(),
        "a grace (10 s) not shorter than 5 s"
    );
    let bad = options::Options::parse(["--grace".to_owned(), "soon".to_owned()].into_iter());
    assert!(bad.is_err());

    let server = demo_with(&["--rotate-after", "2", "--grace", "1"]).await;
    let browser = CookieClient::new(server.addr);
    assert_eq!(browser.get("/counter").await.body, "Visits: 1\n");
    let first = browser.cookie(COOKIE).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let rotated = browser.get("/counter").await;
    assert_eq!(rotated.body, "Visits: 2\n");
    let second = browser.cookie(COOKIE).unwrap();
    assert_ne!(second, first, "a new id once the first is two seconds old");

    let old_tab = CookieClient::new(server.addr);
    old_tab.set_cookie(COOKIE, &first);
    let reply = old_tab.get("/counter").await;
    assert_eq!(reply.body, "Visits: 3\n", "the old id is the same session");
    assert!(reply.set_cookies().is_empty(), "and is told no id");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(old_tab.get("/whoami").await.body, "anonymous\n");
    assert_eq!(browser.get("/counter").await.body, "Visits: 4\n");
}

#[tokio::test]
async fn on_sqlite_a_session_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let open = || async {
        let storage = session_http::sqlite::SqliteStorage::open(&url)
            .await
            .unwrap();
        let server = TestServer::axum(app::router(SessionLayer::new(storage.clone()))).await;
        (storage, server)
    };
    let (storage, server) = open().await;
    let browser = CookieClient::new(server.addr);
    assert_eq!(
        browser.post_form("/login", "user=ada").await.body,
        "Welcome, ada\n"
    );
    let cookie = browser.cookie(COOKIE).unwrap();
    drop(server);
    storage.pool().close().await;

    let (_storage, server) = open().await;
    let browser = CookieClient::new(server.addr);
    browser.set_cookie(COOKIE, &cookie);
    assert_eq!(browser.get("/whoami").await.body, "ada\n");
}

/// Logs `browser` in as `user`.
async fn log_in(browser: &CookieClient, user: &str) {
    let reply = browser.post_form("/login", &format!("user={user}")).await;
    assert_eq!(reply.body, format!("Welcome, {user}\n"));
}

/// Two devices logged in as the same user.
async fn two_devices(server: &TestServer) -> (CookieClient, CookieClient) {
    let devices = (
        CookieClient::new(server.addr),
        CookieClient::new(server.addr),
    );
    log_in(&devices.0, "ada").await;
    log_in(&devices.1, "ada").await;
    devices
}

/// `GET /sessions`, parsed.
async fn sessions(browser: &CookieClient) -> Vec<serde_json::Value> {
    let reply = browser.get("/sessions").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    serde_json::from_str(&reply.body).unwrap()
}

/// The handle of the first listed session that is not `browser`'s own.
async fn other_handle(browser: &CookieClient) -> String {
    let listed = sessions(browser).await;
    let other = listed.iter().find(|session| session["current"] == false);
    other.unwrap()["handle"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sessions_lists_both_devices_with_one_current() {
    let server = demo().await;
    let (a, _b) = two_devices(&server).await;
    let listed = sessions(&a).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let current: Vec<_> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    for session in &listed {
        for field in ["handle", "created_at", "last_seen", "expires_at"] {
            assert!(session[field].is_string(), "{field}: {session}");
        }
        assert!(session["created_at"].as_str().unwrap().ends_with('Z'));
        // The test client sends no User-Agent.
        assert_eq!(session["user_agent"], "unknown");
    }
    let stranger = CookieClient::new(server.addr);
    let refused = stranger.get("/sessions").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body, r#"{"error":"not logged in"}"#);
}

#[tokio::test]
async fn a_device_is_revoked_by_its_handle_and_unknown_handles_are_404() {
    let server = demo().await;
    let (a, b) = two_devices(&server).await;
    let handle = other_handle(&a).await;
    for unknown in ["AAAAAAAAAAAAAAAAAAAAAA", "not-a-handle"] {
        let reply = a.post(&format!("/sessions/{unknown}/revoke")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{unknown}");
        assert_eq!(reply.body, r#"{"error":"no such session"}"#);
    }
    assert_eq!(sessions(&a).await.len(), 2, "nothing changed");
    let revoked = a.post(&format!("/sessions/{handle}/revoke")).await;
    assert_eq!(
        (revoked.status, revoked.body.as_str()),
        (StatusCode::OK, r#"{"revoked":1}"#)
    );
    assert_eq!(b.get("/whoami").await.body, "anonymous\n");
    assert_eq!(a.get("/whoami").await.body, "ada\n");
    let again = a.post(&format!("/sessions/{handle}/revoke")).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn revoke_others_logs_out_the_other_devices() {
    let server = demo().await;
    let devices: Vec<CookieClient> = (0..3).map(|_| CookieClient::new(server.addr)).collect();
    for device in &devices {
        log_in(device, "ada").await;
    }
    let reply = devices[0].post("/sessions/revoke-others").await;
    assert_eq!(reply.body, r#"{"revoked":2}"#);
    assert_eq!(devices[0].get("/whoami").await.body, "ada\n");
    for other in &devices[1..] {
        assert_eq!(other.get("/whoami").await.body, "anonymous\n");
    }
    assert_eq!(sessions(&devices[0]).await.len(), 1);
}

#[tokio::test]
async fn logout_everywhere_removes_this_cookie_too() {
    let server = demo().await;
    let (a, b) = two_devices(&server).await;
    let reply = a.post("/logout-everywhere").await;
    assert_eq!(reply.body, r#"{"revoked":2}"#);
    assert_eq!(a.cookie(COOKIE), None, "the removal cookie emptied the jar");
    assert_eq!(a.get("/whoami").await.body, "anonymous\n");
    assert_eq!(b.get("/whoami").await.body, "anonymous\n");
    assert_eq!(
        a.post("/logout-everywhere").await.status,
        StatusCode::UNAUTHORIZED
    );
}
