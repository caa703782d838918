//! A session's own lifetime: remember me, and timeouts other than the
//! layer's.

use session_core::Lifetime;

use super::Session;
use crate::SessionError;

impl Session {
    /// Gives this session its own [`Lifetime`]: a persistent cookie or a
    /// browser-session one (remember me), its own idle and absolute
    /// timeouts; whatever it leaves unset follows the layer. Written at the
    /// end of the request with the request's other changes, as
    /// [`insert`](Self::insert) is (or at once by an
    /// [`update`](Self::update), [`cycle_id`](Self::cycle_id) or
    /// [`login`](Self::login) that comes after it), and kept by the
    /// session from then on, across id changes, until set again;
    /// `Lifetime::new()` returns it to the layer's defaults.
    ///
    /// Timeouts are kept within the layer's bounds
    /// ([`max_idle_timeout`](crate::SessionConfigBuilder::max_idle_timeout),
    /// [`max_absolute_timeout`](crate::SessionConfigBuilder::max_absolute_timeout)):
    /// a longer one is cut to the bound. The idle deadline moves by the
    /// session's own idle timeout from this write on. The absolute
    /// deadline never moves later, except at a login, which restarts it
    /// from the session's own absolute timeout: so set a long lifetime
    /// before [`login`](Self::login), in the same request, and a shorter
    /// absolute timeout at any time.
    ///
    /// The response carries the session's cookie again, of its new kind: a
    /// persistent one with `Max-Age` following the session's deadline,
    /// sent again whenever the deadline moves, or a browser-session one.
    /// A request that stores no session (no values, no login) writes no
    /// lifetime either.
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_http::{Lifetime, Login, Session, SessionError, UserKey};
    ///
    /// /// After checking the password; `remember` is the form's checkbox.
    /// async fn log_in(session: Session, remember: bool) -> Result<(), SessionError> {
    ///     if remember {
    ///         let thirty_days = Duration::from_secs(30 * 24 * 3600);
    ///         let lifetime = Lifetime::new()
    ///             .persistent(true)
    ///             .idle_timeout(thirty_days)
    ///             .absolute_timeout(thirty_days);
    ///         session.set_lifetime(lifetime).await?;
    ///     }
    ///     session.login(&Login::new(UserKey::of("ada"))).await
    /// }
    /// # let _ = log_in;
    /// ```
    ///
    /// # Errors
    ///
    /// [`SessionError::Gone`] if the session ended during the request; a
    /// storage error if the session cannot be loaded.
    pub async fn set_lifetime(&self, lifetime: Lifetime) -> Result<(), SessionError> {
        let bounded = self.inner.shared.policy.bounded(lifetime);
        let mut state = self.writable().await?;
        state.changes.set_lifetime(bounded);
        Ok(())
    }

    /// The session's own lifetime as this request sees it: the one set in
    /// this request, else the one stored (`Lifetime::new()`, the layer's
    /// defaults, for a session that never chose, or no session).
    ///
    /// # Errors
    ///
    /// A storage error if the session cannot be loaded.
    pub async fn lifetime(&self) -> Result<Lifetime, SessionError> {
        Ok(self.state().await?.own_lifetime())
    }
}
