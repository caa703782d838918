//! Support for the integration tests: instrumented storage, a fake clock,
//! the test application, a real HTTP server and cookie-keeping client, the
//! HTTP end-to-end suite every backend runs, and the chaos soak (`soak`,
//! run by the `soak` binary).
// Test support, not a published API: panicking on a broken expectation is
// the point, and the fields and helpers speak for themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    missing_debug_implementations
)]

/// The session cookie's name with the default configuration.
pub const COOKIE: &str = session_http::DEFAULT_COOKIE_NAME;

pub mod app;
pub mod app_accounts;
pub mod app_lifetimes;
pub mod clock;
pub mod kept;
pub mod net;
pub mod no_accounts;
pub mod probe;
pub mod records;
pub mod redis_server;
pub mod reply_dropper;
pub mod soak;
pub mod suite;
pub mod trace;
