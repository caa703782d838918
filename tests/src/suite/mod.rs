//! The HTTP end-to-end suite, written once and run on every backend with
//! [`http_suite!`](crate::http_suite).
//!
//! Each test takes a conformance [`Harness`]: the backend's storage (which
//! the tests wrap in a [`ProbeStorage`] to count
//! calls and inject faults) and its raw probes.
//!
//! # One file per topic, each registering its own tests
//!
//! Every file of `tests/src/suite/` holds the tests of one topic and, right
//! above them, a `__http_suite_<file>!` macro naming each of them;
//! [`http_suite!`](crate::http_suite) expands every topic's macro into
//! `#[tokio::test]`s (the topics are listed in `__http_suite_topics!`, next
//! to the `mod` lines below). A test the suite leaves out on purpose is
//! named in its file's `RUN_ALONE` list instead ([`RUN_ALONE`]),
//! and the test binary that runs it calls it by name.
//!
//! A unit test of this module, `every_suite_test_is_registered`, reads the
//! files and fails when a `pub async fn NAME(harness: &dyn Harness)` is in
//! neither its file's macro nor a `RUN_ALONE` list, when a topic's macro is
//! missing from `http_suite!`, or when a suite test has no `///` doc; the
//! compiler checks that every registered name exists.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use session_core::conformance::Harness;
use session_core::{SessionId, SessionKey, SessionStorage};
use session_http::{SessionConfig, SessionLayer};

use crate::app::{Reply, TestApp};
use crate::probe::ProbeStorage;

mod accounts;
mod bad_cookies;
mod expiry;
mod failures;
mod io;
mod lifetimes;
mod login;
mod races;
mod responses;
mod rotation;
mod traces;
mod visits;

pub use accounts::*;
pub use bad_cookies::*;
pub use expiry::*;
pub use failures::*;
pub use io::*;
pub use lifetimes::*;
pub use login::*;
pub use races::*;
pub use responses::*;
pub use rotation::*;
pub use traces::*;
pub use visits::*;

/// Expands into one `#[tokio::test]` per HTTP end-to-end test, each on a
/// fresh harness from the factory.
///
/// Like `conformance_tests!`, `optional: factory` takes a factory returning
/// an `Option`: `None` (a server that is not installed) ends each test early.
#[macro_export]
macro_rules! http_suite {
    (optional: $factory:expr) => {
        $crate::__http_suite_topics!(optional $factory);
    };
    ($factory:expr) => {
        $crate::__http_suite_topics!(required $factory);
    };
}

/// Every topic's tests: one line per file of `tests/src/suite/` that
/// registers tests (each file lists its own).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_topics {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite_visits!($mode $factory);
        $crate::__http_suite_io!($mode $factory);
        $crate::__http_suite_expiry!($mode $factory);
        $crate::__http_suite_login!($mode $factory);
        $crate::__http_suite_responses!($mode $factory);
        $crate::__http_suite_failures!($mode $factory);
        $crate::__http_suite_bad_cookies!($mode $factory);
        $crate::__http_suite_races!($mode $factory);
        $crate::__http_suite_accounts!($mode $factory);
        $crate::__http_suite_lifetimes!($mode $factory);
        $crate::__http_suite_rotation!($mode $factory);
    };
}

/// One `#[tokio::test]` per name, for a topic's `__http_suite_<file>!`.
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
    (routed(layer, path, route), probe)
}

/// The test routes and `route` at `path`, under `layer`.
fn routed(layer: SessionLayer, path: &str, route: axum::routing::MethodRouter) -> Router {
    crate::app::routes().route(path, route).layer(layer)
}

/// Checks the default store-failure response.
fn assert_service_unavailable(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.body, "");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(reply.set_cookies().is_empty());
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;
    use std::path::Path;

    use session_core::conformance::registry::{macro_body, tests_in, words};

    /// The suite's directory, read at test time: a new file is checked
    /// without being named anywhere.
    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/suite");

    /// Every `pub async fn NAME(harness: &dyn Harness)` of the suite is
    /// registered: in its file's `__http_suite_<file>!`, itself expanded by
    /// `http_suite!`, or in [`super::RUN_ALONE`] and run by
    /// `tests/tests/traces.rs`. Each has a `///` doc.
    #[test]
    fn every_suite_test_is_registered() {
        let module = fs::read_to_string(Path::new(DIR).join("mod.rs")).unwrap();
        let topics = words(macro_body(&module, "__http_suite_topics").unwrap());
        let runner = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/traces.rs");
        let runner = fs::read_to_string(runner).unwrap();
        let mut problems = Vec::new();
        let mut alone_found = BTreeSet::new();
        let mut files = 0;
        for entry in fs::read_dir(DIR).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if stem == "mod" || path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            files += 1;
            let source = fs::read_to_string(&path).unwrap();
            if !module.contains(&format!("\nmod {stem};\n")) {
                problems.push(format!("{stem}.rs is not a module of the suite"));
            }
            let macro_name = format!("__http_suite_{stem}");
            let registered = macro_body(&source, &macro_name).map(words);
            if registered.is_some() && !topics.contains(macro_name.as_str()) {
                problems.push(format!("{macro_name}! is not in __http_suite_topics!"));
            }
            for (name, documented) in tests_in(&source, "&dyn Harness") {
                let in_suite = registered
                    .as_ref()
                    .is_some_and(|r| r.contains(name.as_str()));
                let alone = super::RUN_ALONE.contains(&name.as_str());
                if alone {
                    alone_found.insert(name.clone());
                    if !words(&runner).contains(name.as_str()) {
                        problems.push(format!("{name}: in RUN_ALONE, not run by tests/traces.rs"));
                    }
                }
                if !in_suite && !alone {
                    problems.push(format!("{stem}.rs: {name} is registered nowhere"));
                }
                if in_suite && alone {
                    problems.push(format!("{stem}.rs: {name} is registered twice"));
                }
                if !documented {
                    problems.push(format!("{stem}.rs: {name} has no /// doc"));
                }
            }
        }
        for name in super::RUN_ALONE {
            if !alone_found.contains(name) {
                problems.push(format!("RUN_ALONE names {name}, not a suite test"));
            }
        }
        assert!(files > 1, "no topic files in {DIR}");
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
