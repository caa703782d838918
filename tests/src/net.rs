//! Real sockets: a hyper server on 127.0.0.1, a client that keeps cookies
//! like a browser, and raw TCP for requests no client would send.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Mutex;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use session_http::{SessionLayer, session_data};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

use crate::app::Reply;

/// A hyper HTTP/1 server on a free loopback port, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

/// A service hyper can serve: any tower service over hyper's bodies.
pub type HyperService =
    BoxCloneSyncService<Request<Incoming>, Response<axum::body::Body>, Infallible>;

impl TestServer {
    /// Serves an axum router.
    pub async fn axum(router: axum::Router) -> Self {
        Self::serve(BoxCloneSyncService::new(router)).await
    }

    /// Serves `service`.
    pub async fn serve(service: HyperService) -> Self {
        Self::try_serve(service).await.unwrap()
    }

    /// [`serve`](Self::serve), returning the error if no loopback port can
    /// be bound instead of panicking.
    pub async fn try_serve(service: HyperService) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = TowerToHyperService::new(service.clone());
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The original's demo on plain hyper, no axum: `session_data(&request)`
/// in a `service_fn`. `/visit` counts visits, `/login?user=x`, `/whoami`,
/// `/logout`.
pub fn plain_hyper_service(layer: SessionLayer) -> HyperService {
    let service = ServiceBuilder::new().layer(layer).service_fn(plain_handler);
    BoxCloneSyncService::new(service)
}

async fn plain_handler(
    request: Request<Incoming>,
) -> Result<Response<axum::body::Body>, Infallible> {
    let Ok(session) = session_data(&request) else {
        return Ok(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no session layer".to_owned(),
        ));
    };
    let query = request.uri().query().unwrap_or_default().to_owned();
    let answer = match request.uri().path() {
        "/visit" => session
            .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .map(|n| format!("visit {n}")),
        "/login" => {
            let user = query.strip_prefix("user=").unwrap_or("nobody").to_owned();
            let logged_in = async {
                session.cycle_id().await?;
                session.insert("user", &user).await
            };
            logged_in.await.map(|()| format!("welcome {user}"))
        }
        "/whoami" => session
            .get::<String>("user")
            .await
            .map(|user| user.unwrap_or_else(|| "anonymous".to_owned())),
        "/logout" => session.destroy().await.map(|()| "bye".to_owned()),
        _ => return Ok(text(StatusCode::NOT_FOUND, String::new())),
    };
    Ok(match answer {
        Ok(body) => text(StatusCode::OK, body),
        Err(error) => text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    })
}

fn text(status: StatusCode, body: String) -> Response<axum::body::Body> {
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    response
}

/// An HTTP client over real sockets that keeps cookies the way a browser
/// does for `http://localhost`: it stores what `Set-Cookie` sets, drops
/// what it removes, and sends them all back (Secure ones too, as browsers
/// do for loopback).
pub struct CookieClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    jar: Mutex<BTreeMap<String, String>>,
}

impl CookieClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
            jar: Mutex::default(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str) -> Reply {
        self.send(Method::POST, path, None).await
    }

    /// POSTs an HTML form's fields, `application/x-www-form-urlencoded`.
    pub async fn post_form(&self, path: &str, form: &str) -> Reply {
        self.send(Method::POST, path, Some(form.to_owned())).await
    }

    /// The value of the cookie `name` in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    /// Puts a cookie into the jar by hand (a replayed, stolen or planted one).
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    async fn send(&self, method: Method, path: &str, form: Option<String>) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        let cookies = self
            .jar
            .lock()
            .unwrap()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !cookies.is_empty() {
            request = request.header(header::COOKIE, cookies);
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Full::from(form)
            }
            None => Full::default(),
        };
        let response = self
            .client
            .request(request.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let reply = Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        self.remember(&reply);
        reply
    }

    fn remember(&self, reply: &Reply) {
        let mut jar = self.jar.lock().unwrap();
        for set_cookie in reply.set_cookies() {
            let cookie = cookie::Cookie::parse(set_cookie).unwrap();
            let removed = cookie
                .max_age()
                .is_some_and(|age| age.is_zero() || age.is_negative());
            if removed || cookie.value().is_empty() {
                jar.remove(cookie.name());
            } else {
                jar.insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
    }
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub set_cookies: Vec<String>,
    pub body: Vec<u8>,
}

/// Sends `GET path` with these raw `Cookie` header values over a bare TCP
/// connection, so no client filters or re-encodes them.
pub async fn raw_get(addr: SocketAddr, path: &str, cookie_headers: &[Vec<u8>]) -> RawReply {
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").into_bytes();
    for value in cookie_headers {
        request.extend_from_slice(b"Cookie: ");
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    parse_raw(&raw)
}

fn parse_raw(raw: &[u8]) -> RawReply {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let set_cookies = lines
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.trim().to_owned())
        .collect();
    RawReply {
        status,
        set_cookies,
        body: raw[end + 4..].to_vec(),
    }
}
