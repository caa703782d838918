//! One keep-alive HTTP/1 connection of a virtual user, re-made after a
//! failure; every exchange bounded in time, no panics.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The session cookie's name (the library's default).
pub(crate) const COOKIE: &str = session_http::DEFAULT_COOKIE_NAME;

/// Longer than any answer can take when the library keeps its promises
/// (1 s store timeout; `update` backs off for a few seconds at most).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What a response did to the session cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CookieChange {
    Kept,
    Set(String),
    Removed,
}

/// A response, read to the end.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) cookie: CookieChange,
    pub(crate) body: String,
}

pub(crate) struct Connection {
    addr: SocketAddr,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Connection {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// Sends one request carrying the session cookie `cookie`, if any.
    /// A broken or silent connection is dropped, so the next request makes
    /// a new one.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
    ) -> Result<Answer, String> {
        let exchanged = tokio::time::timeout(ANSWER_TIMEOUT, self.exchange(method, path, cookie));
        let result = match exchanged.await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", ANSWER_TIMEOUT.as_secs())),
        };
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
    ) -> Result<Answer, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "soak");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("{COOKIE}={cookie}"));
        }
        let request = request
            .body(Empty::new())
            .map_err(|error| error.to_string())?;
        let sender = self.ready().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        let status = response.status();
        let cookie = session_cookie(response.headers());
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("body failed: {error}"))?
            .to_bytes();
        Ok(Answer {
            status,
            cookie,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// The connection, made now if there is none, ready for a request.
    async fn ready(&mut self) -> Result<&mut SendRequest<Empty<Bytes>>, String> {
        let sender = match self.sender.take() {
            Some(sender) => sender,
            None => connect(self.addr).await?,
        };
        let sender = self.sender.insert(sender);
        sender
            .ready()
            .await
            .map_err(|error| format!("connection failed: {error}"))?;
        Ok(sender)
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|error| format!("connect failed: {error}"))?;
    // Requests are small and answered at once: no Nagle delay.
    stream
        .set_nodelay(true)
        .map_err(|error| format!("nodelay: {error}"))?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("handshake failed: {error}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// What the response's `Set-Cookie` headers did to the session cookie.
fn session_cookie(headers: &http::HeaderMap) -> CookieChange {
    let cookies = headers.get_all(header::SET_COOKIE).iter();
    let ours = cookies
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| cookie::Cookie::parse(value).ok())
        .find(|cookie| cookie.name() == COOKIE);
    let Some(cookie) = ours else {
        return CookieChange::Kept;
    };
    let expired = cookie
        .max_age()
        .is_some_and(|age| age.is_zero() || age.is_negative());
    if expired || cookie.value().is_empty() {
        CookieChange::Removed
    } else {
        CookieChange::Set(cookie.value().to_owned())
    }
}
