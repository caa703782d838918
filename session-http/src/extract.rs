//! The axum extractor (feature `axum`).

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::{MissingSessionLayer, ServiceUnavailable, Session, SessionError, StoreFailureResponse};

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}

/// A 500 that names the missing layer: a wiring mistake, not a client error.
impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

/// Lets a handler return `Result<_, SessionError>`: storage trouble and
/// contention are the default store-failure response (503, `Retry-After`;
/// the layer answers with its configured one anyway after a storage
/// failure), a session that ended is a 409, the rest (a value that does
/// not decode, a closed session, a store without accounts) a 500.
impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let response = self.response();
        // As axum logs its own rejections: at TRACE, under a target of
        // their own, so a handler's `?` is visible when asked for.
        tracing::trace!(
            target: "session_http::rejection",
            status = response.status().as_u16(),
            rejection_type = "SessionError",
            error = %self,
            "rejecting request",
        );
        response
    }
}

impl SessionError {
    /// The response a handler returning this error answers with.
    fn response(&self) -> Response {
        match self {
            Self::Storage(_) | Self::Poisoned | Self::Contended { .. } | Self::Randomness(_) => {
                ServiceUnavailable.response()
            }
            Self::Gone => StatusCode::CONFLICT.into_response(),
            Self::Value(_) | Self::Closed | Self::Unsupported(_) => {
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
