//! [`SessionLayer`] and the service it wraps around a handler.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, RETRY_AFTER, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use session_core::SessionStorage;
use tower_layer::Layer;
use tower_service::Service;

use crate::config::SessionConfig;
use crate::cookies;
use crate::session::{Finish, Session, Shared};

/// The response sent instead of the handler's when session storage fails.
///
/// Implemented for [`ServiceUnavailable`] (the default) and for any
/// `Fn() -> Response<B>` closure, so an application can render its own.
pub trait StoreFailureResponse<B>: Clone + Send + Sync + 'static {
    /// The response to send.
    fn response(&self) -> Response<B>;
}

/// The default store-failure response: `503 Service Unavailable`, an empty
/// body, `Retry-After: 1` and `Cache-Control: no-store`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServiceUnavailable;

impl<B: Default> StoreFailureResponse<B> for ServiceUnavailable {
    fn response(&self) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let headers = response.headers_mut();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl<B, F> StoreFailureResponse<B> for F
where
    F: Fn() -> Response<B> + Clone + Send + Sync + 'static,
{
    fn response(&self) -> Response<B> {
        self()
    }
}

/// Gives every request a [`Session`], loaded from the storage on first use
/// and saved when the handler has answered.
///
/// ```
/// use session_http::{SessionConfig, SessionLayer, memory::MemoryStorage};
///
/// let layer = SessionLayer::new(MemoryStorage::new())
///     .with_config(SessionConfig::builder().cookie_name("__Host-id").build()?);
/// # let _ = layer;
/// # Ok::<(), session_http::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SessionLayer<F = ServiceUnavailable> {
    shared: Arc<Shared>,
    on_failure: F,
}

impl SessionLayer {
    /// A layer over `storage`, with the default configuration.
    pub fn new(storage: impl SessionStorage) -> Self {
        Self::from_arc(Arc::new(storage))
    }

    /// A layer over shared storage.
    pub fn from_arc(storage: Arc<dyn SessionStorage>) -> Self {
        Self {
            shared: Arc::new(Shared::new(storage, SessionConfig::default())),
            on_failure: ServiceUnavailable,
        }
    }
}

impl<F> SessionLayer<F> {
    /// This layer with `config`.
    #[must_use]
    pub fn with_config(self, config: SessionConfig) -> Self {
        Self {
            shared: Arc::new(Shared::new(Arc::clone(&self.shared.storage), config)),
            on_failure: self.on_failure,
        }
    }

    /// This layer answering store failures with `on_failure` instead of the
    /// default [`ServiceUnavailable`].
    pub fn on_store_failure<G>(self, on_failure: G) -> SessionLayer<G> {
        SessionLayer {
            shared: self.shared,
            on_failure,
        }
    }
}

impl<F> std::fmt::Debug for SessionLayer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<S, F: Clone> Layer<S> for SessionLayer<F> {
    type Service = SessionService<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
            on_failure: self.on_failure.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around another.
#[derive(Clone)]
pub struct SessionService<S, F = ServiceUnavailable> {
    inner: S,
    shared: Arc<Shared>,
    on_failure: F,
}

impl<S, F> std::fmt::Debug for SessionService<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").finish_non_exhaustive()
    }
}

/// The response future of [`SessionService`].
pub type ResponseFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

impl<S, F, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, F>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
    F: StoreFailureResponse<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Call the service that was driven to readiness, leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let on_failure = self.on_failure.clone();
        if let Some(outer) = request.extensions().get::<Session>() {
            if outer.belongs_to(&self.shared) {
                // The same layer twice: the outer one already serves it.
                return Box::pin(inner.call(request));
            }
            return Box::pin(async move { Ok(two_layers(&on_failure)) });
        }
        let candidates = cookies::candidates(request.headers(), &self.shared.config.cookie_name);
        let session = Session::new(Arc::clone(&self.shared), candidates);
        request.extensions_mut().insert(session.clone());
        Box::pin(async move {
            let guard = CloseOnDrop(session);
            let response = inner.call(request).await?;
            Ok(finish(&guard.0, response, &on_failure).await)
        })
    }
}

/// The answer when a request passes two different session layers: the
/// inner one would hide the outer one's [`Session`] from the handler, so
/// neither is used. A server error, since only the service's own code can
/// cause it, and an error log saying why.
fn two_layers<B, F: StoreFailureResponse<B>>(on_failure: &F) -> Response<B> {
    tracing::error!(
        "the request passed two different SessionLayers; a handler can only see one session: answering 500"
    );
    let mut response = on_failure.response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().remove(RETRY_AFTER);
    response
}

/// Closes the session when the request ends in any way, including the
/// response future being dropped or the inner service failing.
struct CloseOnDrop(Session);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Saves the session and sets the response's cookie and caching headers.
async fn finish<B, F: StoreFailureResponse<B>>(
    session: &Session,
    mut response: Response<B>,
    on_failure: &F,
) -> Response<B> {
    let (vary, set_cookie) = match session.finish(response.status()).await {
        Finish::Failed => return on_failure.response(),
        Finish::Done { vary, set_cookie } => (vary, set_cookie),
    };
    let headers = response.headers_mut();
    if let Some(cookie) = set_cookie {
        headers.append(SET_COOKIE, cookie);
        if !kept_from_shared_caches(headers) {
            // Whatever the handler said: a shared cache that stored this
            // response would hand the cookie to everyone after.
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    let varies_already =
        directives(headers, &VARY).any(|name| name == "*" || name.eq_ignore_ascii_case("cookie"));
    if vary && !varies_already {
        headers.append(VARY, HeaderValue::from_static("cookie"));
    }
    response
}

/// Whether `Cache-Control` already keeps shared caches from storing the
/// response: `no-store`, or a plain `private` (not `private="field"`, which
/// lets the rest be shared) with no `public`.
fn kept_from_shared_caches(headers: &HeaderMap) -> bool {
    let (mut private, mut public) = (false, false);
    for directive in directives(headers, &CACHE_CONTROL) {
        if directive.eq_ignore_ascii_case("no-store") {
            return true;
        }
        private |= directive.eq_ignore_ascii_case("private");
        public |= directive.eq_ignore_ascii_case("public");
    }
    private && !public
}

/// The comma-separated entries of every `name` header, trimmed; values
/// that are not text count as none.
fn directives<'h>(headers: &'h HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}
