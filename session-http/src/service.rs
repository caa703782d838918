//! [`SessionService`]: the service [`SessionLayer`](crate::SessionLayer)
//! wraps around a handler, giving each request its [`Session`] and saving
//! it when the handler has answered.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::RETRY_AFTER;
use http::{Request, Response, StatusCode};
use tower_service::Service;

use crate::cookie::{parse, rules};
use crate::failure::{ServiceUnavailable, StoreFailureResponse};
use crate::session::{Finish, Session, Shared};

/// The service [`SessionLayer`](crate::SessionLayer) wraps around another.
#[derive(Clone)]
pub struct SessionService<S, F = ServiceUnavailable> {
    inner: S,
    shared: Arc<Shared>,
    on_failure: F,
}

impl<S, F> SessionService<S, F> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>, on_failure: F) -> Self {
        Self {
            inner,
            shared,
            on_failure,
        }
    }
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
        let candidates = parse::candidates(request.headers(), &self.shared.config.cookie_name);
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
    rules::apply(response.headers_mut(), vary, set_cookie);
    response
}
