//! The demo's router, driven the way the README does: through a real TCP
//! listener with a client that keeps cookies.

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

#[path = "../../session-http/examples/demo/app.rs"]
mod app;

use http::StatusCode;
use session_http::SessionLayer;
use session_http::memory::MemoryStorage;
use session_tests::COOKIE;
use session_tests::net::{CookieClient, TestServer};

async fn demo() -> TestServer {
    TestServer::axum(app::router(SessionLayer::new(MemoryStorage::new()))).await
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
