//! What reaches the logs, under a capture. Not part of
//! [`http_suite!`](crate::http_suite): tracing caches per-callsite interest
//! process-wide, so a capture is only complete when no other test registers
//! callsites at the same time; `tests/tests/traces.rs` runs these alone in
//! its binary, on every backend.

use std::sync::Arc;
use std::time::Duration;

use session_core::conformance::Harness;
use session_core::{SessionId, SessionStorage, Timestamp};
use session_http::SessionConfig;

use super::forged_pair;
use crate::COOKIE;
use crate::app::{Reply, TestApp, get_request, post_request};
use crate::probe::Fault;

/// The tests of this file, which [`http_suite!`](crate::http_suite) leaves
/// out for the reason above: `tests/tests/traces.rs` runs each of them.
/// The registration check counts a test named here as registered, and
/// checks that `tests/tests/traces.rs` calls it.
pub const RUN_ALONE: [&str; 2] = [
    "traces_never_contain_a_session_id",
    "client_triggered_logs_are_rate_limited",
];

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
    assert!(
        log.contains("session_http::rejection") && log.contains("rejection_type=\"SessionError\""),
        "a handler's SessionError is logged as axum logs its rejections"
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
    app.call(get_request("/names", Some(&format!("{pair}; {other}"))))
        .await;
    app.call(get_request("/names", Some("__Host-id=malformed")))
        .await;
    app.call(post_request("/logout", Some(&pair))).await;

    app.call(get_request(
        "/names",
        Some(&format!("__Host-id={}", corrupt.to_cookie_value())),
    ))
    .await;
    app.probe.set_fault_all(Some(Fault::Fail));
    app.call(get_request("/names", Some(&other))).await;
    app.call(post_request("/set/x", None)).await;
    ids.extend([&pair, &other].map(|pair| pair.split_once('=').unwrap().1.to_owned()));
    ids.push(corrupt.to_cookie_value());
    ids
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
                app.call(get_request("/names", Some(cookie))).await;
            }
        }
        app.clock.advance(Duration::from_secs(61));
    }
}
