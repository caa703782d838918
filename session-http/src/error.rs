//! What can go wrong when a handler uses its session.

use session_core::RandomnessError;

/// An error from a [`Session`](crate::Session) method.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The storage failed or timed out. The session is poisoned: the layer
    /// answers the request with its store-failure response (503 by
    /// default) whatever the handler returns, and writes nothing more.
    #[error("session storage failed")]
    Storage(#[source] session_core::Error),
    /// An earlier call in this request met a storage failure; the session
    /// is unusable for the rest of the request.
    #[error("the session could not be loaded earlier in this request")]
    Poisoned,
    /// A value could not be encoded, or a stored value is not of the type
    /// asked for.
    #[error("session value could not be encoded or decoded")]
    Value(#[source] session_core::Error),
    /// [`Session::update`](crate::Session::update) met a conflicting write
    /// on every attempt.
    #[error(
        "session value kept changing under concurrent requests; gave up after {attempts} attempts"
    )]
    Contended {
        /// How many attempts were made.
        attempts: u32,
    },
    /// The session ended (logged out or expired) while this request ran;
    /// nothing was written.
    #[error("the session ended while this request ran")]
    Gone,
    /// The response was already sent: the session no longer accepts calls,
    /// so a change made from a spawned task is never silently dropped.
    #[error("the response was already sent; the session is closed")]
    Closed,
    /// No random session id could be drawn.
    #[error("no random session id could be drawn")]
    Randomness(#[from] RandomnessError),
    /// The storage does not do what was asked: the account calls
    /// ([`Session::login`](crate::Session::login), [`sessions`](crate::Session::sessions),
    /// the revokes) need a store whose
    /// [`capabilities`](session_core::SessionStorage::capabilities) have
    /// `accounts`. A wiring mistake, found before any storage call: the
    /// session is not poisoned, and the handler may go on without accounts.
    #[error("this session storage does not support {0}")]
    Unsupported(&'static str),
}

/// The request carries no [`Session`](crate::Session): the route is not
/// behind a [`SessionLayer`](crate::SessionLayer).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "no session in the request: add `SessionLayer` to the service (for axum: `.layer(SessionLayer::new(storage))` on the router) so that it runs before this handler"
)]
pub struct MissingSessionLayer;
