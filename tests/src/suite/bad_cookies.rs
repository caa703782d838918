//! Cookies anyone can send: unknown ids, malformed values, duplicates,
//! noise, over the router and over raw TCP. None costs more than one load,
//! and none is ever adopted.

use axum::http::StatusCode;
use session_core::SessionId;
use session_core::conformance::Harness;
use session_http::SessionConfig;

use super::{app, forged_pair, key_of};
use crate::COOKIE;
use crate::app::{TestApp, get_request, post_request};
use crate::net::{TestServer, raw_get};
use crate::probe::Op;

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_bad_cookies {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            an_unknown_id_costs_one_load_and_is_not_adopted,
            malformed_cookies_cost_no_store_call,
            bad_cookies_get_a_fresh_session,
            bad_cookies_over_raw_tcp,
            a_host_prefix_is_matched_exactly,
        );
    };
}

/// A well-formed id nobody stored costs one load and is never stored; a write gets a fresh id.
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

/// Malformed session cookies (empty, garbage, short, long, quoted) cost no store call.
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

/// Each bad-cookie table entry finds the live session or none, and a write gets a fresh id.
pub async fn bad_cookies_get_a_fresh_session(harness: &dyn Harness) {
    let app = app(harness);
    let live = app.session_with("x").await;
    let other_live = app.session_with("y").await;
    for (label, headers, found) in bad_cookie_table(&live, &other_live) {
        let mut request = get_request("/names", None);
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

/// The bad-cookie table as raw bytes over TCP gets the same answers; the server keeps serving.
pub async fn bad_cookies_over_raw_tcp(harness: &dyn Harness) {
    let app = app(harness);
    let live = app.session_with("x").await;
    let other_live = app.session_with("y").await;
    let server = TestServer::axum(app.router.clone()).await;
    for (label, headers, found) in bad_cookie_table(&live, &other_live) {
        let reply = raw_get(server.addr, "/names", &headers).await;
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
        raw_get(server.addr, "/names", &[live.into_bytes()])
            .await
            .body,
        b"x"
    );
}

/// A `__Host-` name is matched byte for byte: `__Host%2Did` is no session and costs no call.
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
    assert_eq!(app.call(get_request("/names", Some(&pair))).await.body, "x");
    app.probe.reset();
    let encoded = pair.replacen("__Host-id", "__Host%2Did", 1);
    assert_eq!(
        app.call(get_request("/names", Some(&encoded))).await.body,
        ""
    );
    assert_eq!(app.probe.total_calls(), 0);
}
