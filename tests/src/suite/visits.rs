//! Visits and the session cookie: the demo's two visits, a real browser's cookie jar,
//! the cookie's attributes, and one `Set-Cookie` per response.

use axum::http::StatusCode;
use axum::routing::post;
use session_core::conformance::Harness;
use session_http::{Session, SessionConfig, SessionLayer};

use super::{app, custom};
use crate::COOKIE;
use crate::app::{TestApp, call, get_request, post_request};
use crate::net::{CookieClient, TestServer, plain_hyper_service};

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_visits {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            first_and_second_visit,
            plain_hyper_with_a_cookie_keeping_client,
            cookie_attributes_and_removal,
            one_set_cookie_per_response,
        );
    };
}

/// The demo's visits: `First time` and one exact secure cookie, then the first visit's time.
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

/// Plain hyper, real HTTP, a cookie jar: visits, login to a new id, logout; old ids anonymous.
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

/// Configured cookie name, domain, path and `SameSite` appear exactly, in the cookie and its removal.
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

/// Writes, cycles, a destroy and more writes in one request send one `Set-Cookie`: the last id.
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
        call(&router, get_request("/names", Some(&new_pair)))
            .await
            .body,
        "b,c"
    );
    assert_eq!(
        call(&router, get_request("/names", Some(&pair))).await.body,
        ""
    );
}
