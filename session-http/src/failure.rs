//! The response sent instead of the handler's when session storage fails.

use http::header::{CACHE_CONTROL, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};

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
