//! [`SessionLayer`]: what an application adds to its service.

use std::sync::Arc;

use session_core::SessionStorage;
use tower_layer::Layer;

use crate::config::SessionConfig;
use crate::failure::ServiceUnavailable;
use crate::service::SessionService;
use crate::session::Shared;

/// Gives every request a [`Session`](crate::Session), loaded from the storage on first use
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

    /// Requests of this layer writing a session now (in their turn,
    /// waiting for it, or beside the others), over every session: a test
    /// hook, to know a write is queued before releasing the one ahead of
    /// it.
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    #[must_use]
    pub fn in_turns(&self) -> usize {
        self.shared.turns.writers()
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
        SessionService::new(inner, Arc::clone(&self.shared), self.on_failure.clone())
    }
}
