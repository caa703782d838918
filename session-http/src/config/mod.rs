//! How sessions behave: timeouts, the cookie, failure handling, the clock.
//! The settings and their builder are here; what a combination of settings
//! may say, and the cookie name they give, in `validate`.

mod validate;

use std::time::Duration;

pub use session_core::Clock;
pub use validate::DEFAULT_COOKIE_NAME;
use validate::{default_cookie_name, validate};

/// The `SameSite` attribute of the session cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only on same-site requests.
    Strict,
    /// Sent on same-site requests and top-level navigations (the default).
    Lax,
    /// Sent on every request; needs `Secure`.
    None,
}

/// The validated configuration of a [`SessionLayer`](crate::SessionLayer).
///
/// | setting | default | why |
/// |---|---|---|
/// | cookie name | [`DEFAULT_COOKIE_NAME`] (`__Host-id`) | see below |
/// | `Path` / `Domain` | `/` / none | the whole site, this host only |
/// | `Secure` | on | browsers and curl send Secure cookies to `http://localhost` too |
/// | `HttpOnly` | always | no script ever needs the session id |
/// | `SameSite` | `Lax` | blocks cross-site POSTs, keeps links working |
/// | persistent | off | a browser-session cookie ends with the browser |
/// | idle timeout | 30 min | OWASP, ordinary sites |
/// | absolute timeout | 12 h | OWASP; activity never outlives it |
/// | max idle / absolute timeout | the idle / absolute timeout | a handler's [`Lifetime`](crate::Lifetime) may shorten a session, not lengthen it, unless raised |
/// | store timeout | 1 s | a request fails fast instead of hanging on a dead store |
/// | persist on 5xx | off | a failed request does not half-save its changes |
/// | login resets absolute | on | the absolute lifetime counts from login |
/// | rotate after | off | a long session's id is renewed, with a grace window (10 s) for requests still using the old one |
/// | update attempts | 12 | tries of [`Session::update`](crate::Session::update) on conflict, with growing jittered pauses |
///
/// Unless [`cookie_name`](SessionConfigBuilder::cookie_name) sets one, the
/// cookie is named with the strictest prefix the other settings allow, so
/// that a sibling subdomain or a page on plain HTTP cannot plant a session
/// cookie the browser would send here (cookie tossing): `__Host-id` with the
/// defaults (`Secure`, `Path=/`, no `Domain`); `__Secure-id` when a `Domain`
/// or another `Path` is set (a sibling of that domain can still set it, but
/// only over HTTPS); plain `id` when `Secure` is off, since browsers refuse
/// both prefixes without it. A name says nothing about the framework behind
/// it.
///
/// ```
/// use std::time::Duration;
/// use session_http::{SameSite, SessionConfig};
///
/// let config = SessionConfig::builder()
///     .cookie_name("__Host-id")
///     .same_site(SameSite::Strict)
///     .idle_timeout(Duration::from_secs(5 * 60))
///     .build()?;
/// # let _ = config;
///
/// // `__Host-` cookies may not name a domain: refused when built.
/// assert!(SessionConfig::builder().cookie_name("__Host-id").domain("example.com").build().is_err());
/// # Ok::<(), session_http::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub(crate) cookie_name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) same_site: SameSite,
    pub(crate) persistent: bool,
    pub(crate) idle_timeout: Duration,
    pub(crate) absolute_timeout: Duration,
    /// The bounds of a session's own timeouts; `None`: the defaults.
    pub(crate) max_idle_timeout: Option<Duration>,
    pub(crate) max_absolute_timeout: Option<Duration>,
    pub(crate) store_timeout: Duration,
    pub(crate) persist_on_server_error: bool,
    pub(crate) reset_absolute_on_login: bool,
    /// Periodic rotation: how old an id gets before it is replaced.
    pub(crate) rotate_after: Option<Duration>,
    /// How long a rotated id still finds its session.
    pub(crate) rotation_grace: Duration,
    pub(crate) update_attempts: u32,
    pub(crate) clock: Clock,
}

impl SessionConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder {
            config: Self::unnamed(),
            cookie_name: None,
        }
    }

    /// The defaults, but for the cookie name, which depends on the others.
    fn unnamed() -> Self {
        Self {
            cookie_name: String::new(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            same_site: SameSite::Lax,
            persistent: false,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            max_idle_timeout: None,
            max_absolute_timeout: None,
            store_timeout: Duration::from_secs(1),
            persist_on_server_error: false,
            reset_absolute_on_login: true,
            rotate_after: None,
            rotation_grace: Duration::from_secs(10),
            update_attempts: 12,
            clock: Clock::system(),
        }
    }
}

impl SessionConfig {
    /// The longest idle timeout a session may choose.
    pub(crate) fn max_idle_timeout(&self) -> Duration {
        self.max_idle_timeout.unwrap_or(self.idle_timeout)
    }

    /// The longest absolute timeout a session may choose.
    pub(crate) fn max_absolute_timeout(&self) -> Duration {
        self.max_absolute_timeout.unwrap_or(self.absolute_timeout)
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        // The defaults pass validation by construction; building them
        // unvalidated avoids a panic path.
        Self::builder().named()
    }
}

/// Builds a [`SessionConfig`]; [`build`](Self::build) validates it.
#[derive(Debug)]
#[must_use]
pub struct SessionConfigBuilder {
    config: SessionConfig,
    /// The cookie name, if set; else named by [`default_cookie_name`].
    cookie_name: Option<String>,
}

impl SessionConfigBuilder {
    /// The cookie's name: an RFC 6265 token. `__Host-` and `__Secure-`
    /// prefixes are checked against the other attributes. Default:
    /// `__Host-id`, or the strictest name the other settings allow (see
    /// [`SessionConfig`]).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = Some(name.into());
        self
    }

    /// The cookie's `Path` (default `/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.path = path.into();
        self
    }

    /// The cookie's `Domain` (default: none, this host only).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.config.domain = Some(domain.into());
        self
    }

    /// The cookie's `Secure` attribute (default on).
    pub fn secure(mut self, secure: bool) -> Self {
        self.config.secure = secure;
        self
    }

    /// The cookie's `SameSite` attribute (default [`SameSite::Lax`]).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.config.same_site = same_site;
        self
    }

    /// A persistent cookie (`Max-Age` = time left in the session, at most
    /// 400 days) instead of a browser-session one (default off), for the
    /// sessions that do not choose for themselves
    /// ([`Session::set_lifetime`](crate::Session::set_lifetime)).
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.config.persistent = persistent;
        self
    }

    /// How long a session lives without requests (default 30 minutes),
    /// unless it chooses its own.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// How long a session lives at most, however active (default 12
    /// hours), unless it chooses its own.
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config.absolute_timeout = timeout;
        self
    }

    /// The longest idle timeout a session may choose for itself
    /// ([`Session::set_lifetime`](crate::Session::set_lifetime); a longer
    /// one is cut to this). Default: the [idle timeout](Self::idle_timeout),
    /// so a session may only shorten it. Raise it for remember me.
    pub fn max_idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.max_idle_timeout = Some(timeout);
        self
    }

    /// The longest absolute timeout a session may choose for itself, as
    /// [`max_idle_timeout`](Self::max_idle_timeout) bounds the idle one.
    /// Default: the [absolute timeout](Self::absolute_timeout).
    pub fn max_absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config.max_absolute_timeout = Some(timeout);
        self
    }

    /// How long one storage call may take (default 1 second). Timeouts use
    /// tokio's timer: the runtime needs it enabled (`enable_time`, which
    /// `#[tokio::main]` does).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.config.store_timeout = timeout;
        self
    }

    /// Whether deferred changes are written when the handler answers 5xx
    /// (default off).
    pub fn persist_on_server_error(mut self, persist: bool) -> Self {
        self.config.persist_on_server_error = persist;
        self
    }

    /// Whether [`Session::cycle_id`](crate::Session::cycle_id) (login)
    /// restarts the absolute timeout (default on).
    pub fn reset_absolute_on_login(mut self, reset: bool) -> Self {
        self.config.reset_absolute_on_login = reset;
        self
    }

    /// Renews a session's id once it is `after` old (default: never): the
    /// first request that uses the session after that gets a new id with
    /// its response, keeping the data and the user it is logged in as,
    /// and the old id still finds the same session for the
    /// [grace window](Self::rotation_grace), so that requests already on
    /// their way, or sent from another tab, with the old cookie are not
    /// logged out. An id's age counts from when it was given (creation,
    /// login, [`cycle_id`](crate::Session::cycle_id) or the last
    /// rotation). Needs a store with
    /// [`Capabilities::rotation`](session_core::Capabilities::rotation),
    /// as every store of this workspace has; with any other, ids are not
    /// rotated (the layer says so once in its log).
    ///
    /// A login, a logout and a revoke have no grace window: the old id
    /// dies at once. SECURITY.md says what the window costs.
    pub fn rotate_after(mut self, after: Duration) -> Self {
        self.config.rotate_after = Some(after);
        self
    }

    /// How long a rotated id still finds its session (default 10
    /// seconds): seconds, more than zero and shorter than
    /// [`rotate_after`](Self::rotate_after). During it, a request with
    /// the old id reads and writes the session itself, and is never sent
    /// a cookie (it could only be the old id, or the new one to a client
    /// that may not be the one that got it).
    pub fn rotation_grace(mut self, grace: Duration) -> Self {
        self.config.rotation_grace = grace;
        self
    }

    /// How many times [`Session::update`](crate::Session::update) tries
    /// before giving up with [`SessionError::Contended`](crate::SessionError::Contended)
    /// (default 12). The first retry comes at once, the later ones after a
    /// growing random pause. Requests of one layer take turns, so past the
    /// first attempt only writers in other processes (or another request's
    /// deferred write of the same name) cause retries.
    pub fn update_attempts(mut self, attempts: u32) -> Self {
        self.config.update_attempts = attempts;
        self
    }

    /// Where the time comes from (default the system clock; feature
    /// `test-util`): for tests that move the time by hand.
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.config.clock = clock;
        self
    }

    /// The configuration, if its combination of settings is valid.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first invalid setting.
    pub fn build(self) -> Result<SessionConfig, ConfigError> {
        let config = self.named();
        validate(&config)?;
        Ok(config)
    }

    /// The configuration, with the default cookie name if none was set.
    fn named(mut self) -> SessionConfig {
        self.config.cookie_name = self
            .cookie_name
            .unwrap_or_else(|| default_cookie_name(&self.config).to_owned());
        self.config
    }
}

/// An invalid [`SessionConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cookie name is empty or not an RFC 6265 token.
    #[error("cookie name {0:?} is not an RFC 6265 token")]
    InvalidName(String),
    /// The `Path` does not start with `/` or holds `;` or control bytes.
    #[error("cookie path {0:?} must start with '/' and hold no ';' or control characters")]
    InvalidPath(String),
    /// The `Domain` holds characters a domain cannot.
    #[error("cookie domain {0:?} is not a domain name")]
    InvalidDomain(String),
    /// A `__Host-` cookie must be `Secure`, have no `Domain` and `Path=/`.
    #[error("a `__Host-` cookie must be Secure, with no Domain and Path=/")]
    HostPrefix,
    /// A `__Secure-` cookie must be `Secure`.
    #[error("a `__Secure-` cookie must be Secure")]
    SecurePrefix,
    /// `SameSite=None` needs `Secure`.
    #[error("SameSite=None requires Secure")]
    SameSiteNoneWithoutSecure,
    /// A timeout or the number of update attempts is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A bound on sessions' own timeouts is shorter than the default it
    /// bounds.
    #[error("{0} is shorter than the timeout it bounds")]
    BelowDefault(&'static str),
    /// The rotation's grace window is not shorter than the age at which
    /// ids rotate.
    #[error("the rotation grace must be shorter than rotate_after")]
    GraceTooLong,
    /// The cookie name, path or domain is longer than browsers accept.
    #[error("cookie {0} is too long")]
    TooLong(&'static str),
}
