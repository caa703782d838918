//! Micro-benchmarks: the pieces every request pays for.
//!
//! ```text
//! cargo bench --manifest-path bench/Cargo.toml --bench micro
//! ```
//!
//! - `id/*`: drawing an id from the OS, hashing it into a storage key,
//!   parsing a cookie value;
//! - `codec/*`: one session value and a five-value record, encoded and
//!   decoded;
//! - `layer/*`: a request through `SessionLayer` on memory storage, against
//!   the same service without the layer: untouched (with a realistic
//!   `Cookie` header to scan), reading a live session, writing one.

use std::convert::Infallible;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response, header};
use http_body_util::Empty;
use serde::{Deserialize, Serialize};
use session_core::{Deadlines, Record, SessionData, SessionId, Timestamp, Value};
use session_http::{DEFAULT_COOKIE_NAME, SessionLayer, session_data};
use session_memory::MemoryStorage;
use tower::{Service, ServiceBuilder, ServiceExt};

#[derive(Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    roles: Vec<String>,
}

fn user() -> User {
    User {
        id: 42,
        name: "ada lovelace".into(),
        roles: vec!["admin".into(), "editor".into()],
    }
}

fn ids(c: &mut Criterion) {
    let id = SessionId::generate().unwrap();
    let text = id.to_cookie_value();
    c.bench_function("id/generate", |b| b.iter(|| SessionId::generate().unwrap()));
    c.bench_function("id/key (SHA-256)", |b| b.iter(|| black_box(&id).key()));
    c.bench_function("id/parse", |b| {
        b.iter(|| SessionId::parse(black_box(&text)))
    });
}

fn codec(c: &mut Criterion) {
    let value = Value::encode(&user()).unwrap();
    c.bench_function("codec/encode value", |b| {
        b.iter(|| Value::encode(black_box(&user())).unwrap())
    });
    c.bench_function("codec/decode value", |b| {
        b.iter(|| black_box(&value).decode::<User>().unwrap())
    });
    let mut data = SessionData::new();
    for key in ["user", "cart", "theme", "csrf", "visits"] {
        data.insert(key, &user()).unwrap();
    }
    let now = Timestamp::now();
    let record = Record::new(data, now, Deadlines::new(now, now));
    let bytes = record.encode(usize::MAX).unwrap();
    c.bench_function("codec/encode record (5 values)", |b| {
        b.iter(|| black_box(&record).encode(usize::MAX).unwrap())
    });
    c.bench_function("codec/decode record (5 values)", |b| {
        b.iter(|| Record::decode(black_box(&bytes)).unwrap())
    });
}

/// A Cookie header as browsers send them: analytics and preference cookies
/// around the session's.
fn cookie_header(session: &str) -> String {
    format!(
        "_ga=GA1.1.1234567890.1700000000; _gid=GA1.1.987654321.1700000000; theme=dark; \
         lang=en-GB; consent=%7B%22analytics%22%3Atrue%7D; {session}; \
         _fbp=fb.1.1700000000000.1234567890; cart_hint=3"
    )
}

async fn handler(
    request: Request<Empty<bytes::Bytes>>,
) -> Result<Response<Empty<bytes::Bytes>>, Infallible> {
    match request.uri().path() {
        "/read" => {
            let n: Option<i64> = session_data(&request).unwrap().get("n").await.unwrap();
            black_box(n);
        }
        "/write" => session_data(&request)
            .unwrap()
            .insert("n", &1_i64)
            .await
            .unwrap(),
        _ => {}
    }
    Ok(Response::new(Empty::new()))
}

fn request(path: &str, cookie: &str) -> Request<Empty<bytes::Bytes>> {
    Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Empty::new())
        .unwrap()
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare = tower::service_fn(handler);
    let layered = ServiceBuilder::new()
        .layer(SessionLayer::new(MemoryStorage::new()))
        .service_fn(handler);
    // A live session to read.
    let cookie = runtime.block_on(async {
        let response = layered
            .clone()
            .oneshot(Request::get("/write").body(Empty::new()).unwrap())
            .await
            .unwrap();
        let set_cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
        cookie_header(set_cookie.split(';').next().unwrap())
    });
    let mut group = c.benchmark_group("layer");
    group.bench_function("bare service", |b| {
        b.to_async(&runtime)
            .iter(|| bare.oneshot(request("/untouched", &cookie)))
    });
    group.bench_function("untouched (Cookie header scanned)", |b| {
        b.to_async(&runtime)
            .iter(|| layered.clone().oneshot(request("/untouched", &cookie)))
    });
    group.bench_function("read a live session", |b| {
        b.to_async(&runtime)
            .iter(|| layered.clone().oneshot(request("/read", &cookie)))
    });
    group.bench_function("write (new session each time)", |b| {
        b.to_async(&runtime).iter(|| {
            let mut service = layered.clone();
            async move {
                service
                    .call(Request::get("/write").body(Empty::new()).unwrap())
                    .await
            }
        })
    });
    group.finish();
}

/// A hostile Cookie header of about `size` bytes: nothing but distinct,
/// well-formed session ids under the session's name, the most work per
/// byte the scan does (each is decoded and compared with those kept).
fn adversarial_header(size: usize) -> String {
    let mut header = String::with_capacity(size + 32);
    while header.len() < size {
        let id = SessionId::generate().unwrap().to_cookie_value();
        header.push_str(&format!("{DEFAULT_COOKIE_NAME}={id}; "));
    }
    header
}

/// The scan's cost grows with the header, no faster: a 64 KiB header
/// against a 4 KiB one (issue 8 asks for at most 20 times the time).
fn hostile_headers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let layered = ServiceBuilder::new()
        .layer(SessionLayer::new(MemoryStorage::new()))
        .service_fn(handler);
    let mut group = c.benchmark_group("hostile Cookie header");
    for kib in [4, 64] {
        let header = adversarial_header(kib * 1024);
        group.bench_function(format!("{kib} KiB of session ids, untouched"), |b| {
            b.to_async(&runtime)
                .iter(|| layered.clone().oneshot(request("/untouched", &header)))
        });
    }
    group.finish();
}

criterion_group!(benches, ids, codec, layer, hostile_headers);
criterion_main!(benches);
