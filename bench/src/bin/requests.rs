//! Runs requests through a variant's app in process, without a network:
//! the session layer's own cost, for `valgrind --tool=callgrind` to count
//! in instructions (repeatable whatever else the machine does).
//!
//! ```text
//! requests --variant NAME --route /counter --count 1000 [--redis URL] [--sqlite FILE]
//! ```
//!
//! Requests that read a session carry the cookie of one session made
//! first. `instructions.py` runs this twice with different counts and
//! takes the difference, so that start-up is not counted. The last line
//! of output is `allocations N`: the calls to the allocator (allocations
//! and reallocations) over the whole run, counted the same way.

use axum::body::Body;
use http::Request;
use http::header::{COOKIE, SET_COOKIE};
use session_bench::counting::{Counting, allocations};
use session_bench::{Backends, app};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Options {
    variant: String,
    route: String,
    count: u64,
    backends: Backends,
}

fn options() -> Options {
    let mut options = Options {
        variant: String::new(),
        route: "/counter".to_owned(),
        count: 1000,
        backends: Backends::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--variant" => options.variant = value,
            "--route" => options.route = value,
            "--count" => options.count = value.parse().expect("--count N"),
            "--redis" => options.backends.redis = value,
            "--sqlite" => options.backends.sqlite = value,
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

fn request(route: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(route);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.body(Body::empty()).expect("request")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = options();
    let app = app(&options.variant, &options.backends).await;
    let created = app
        .clone()
        .oneshot(request("/new", None))
        .await
        .expect("/new");
    let cookie = created
        .headers()
        .get(SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::to_owned);
    let cookie = cookie.filter(|_| options.route != "/new");
    for _ in 0..options.count {
        let response = app
            .clone()
            .oneshot(request(&options.route, cookie.as_deref()))
            .await
            .expect("response");
        assert!(response.status().is_success(), "{}", response.status());
    }
    println!("allocations {}", allocations());
}
