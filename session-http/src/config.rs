//! How sessions behave: timeouts, the cookie, failure handling, the clock.

use std::time::Duration;

pub use session_core::Clock;

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
/// | store timeout | 1 s | a request fails fast instead of hanging on a dead store |
/// | persist on 5xx | off | a failed request does not half-save its changes |
/// | login resets absolute | on | the absolute lifetime counts from login |
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
    pub(crate) store_timeout: Duration,
    pub(crate) persist_on_server_error: bool,
    pub(crate) reset_absolute_on_login: bool,
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
            store_timeout: Duration::from_secs(1),
            persist_on_server_error: false,
            reset_absolute_on_login: true,
            update_attempts: 12,
            clock: Clock::system(),
        }
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
    /// 400 days) instead of a browser-session one (default off).
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.config.persistent = persistent;
        self
    }

    /// How long a session lives without requests (default 30 minutes).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// How long a session lives at most, however active (default 12 hours).
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config.absolute_timeout = timeout;
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

    /// How many times [`Session::update`](crate::Session::update) tries
    /// before giving up with [`SessionError::Contended`](crate::SessionError::Contended)
    /// (default 12).
    pub fn update_attempts(mut self, attempts: u32) -> Self {
        self.config.update_attempts = attempts;
        self
    }

    /// Where the time comes from (default the system clock).
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
    /// The cookie name, path or domain is longer than browsers accept.
    #[error("cookie {0} is too long")]
    TooLong(&'static str),
}

/// The cookie name with the default settings: the `__Host-` prefix makes
/// browsers refuse the cookie from a sibling subdomain or over plain HTTP.
pub const DEFAULT_COOKIE_NAME: &str = "__Host-id";

/// The strictest cookie name the prefix rules allow with these settings.
fn default_cookie_name(config: &SessionConfig) -> &'static str {
    let host_only = config.domain.is_none() && config.path == "/";
    match (config.secure, host_only) {
        (true, true) => DEFAULT_COOKIE_NAME,
        (true, false) => "__Secure-id",
        (false, _) => "id",
    }
}

/// Longest cookie name: name, `=` and the 22-character id fit the 4096
/// bytes browsers keep of a cookie.
const MAX_NAME: usize = 4096 - 1 - 22;
/// Longest `Path` or `Domain` browsers accept (RFC 6265bis).
const MAX_ATTRIBUTE: usize = 1024;

fn validate(config: &SessionConfig) -> Result<(), ConfigError> {
    let name = &config.cookie_name;
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(ConfigError::InvalidName(name.clone()));
    }
    let path = &config.path;
    // Clients trim the attribute: a trailing space would not survive.
    if !path.starts_with('/') || path.ends_with(' ') || !path.bytes().all(is_attribute_byte) {
        return Err(ConfigError::InvalidPath(path.clone()));
    }
    if let Some(domain) = &config.domain
        && !is_domain(domain)
    {
        return Err(ConfigError::InvalidDomain(domain.clone()));
    }
    for (what, length, limit) in [
        ("name", name.len(), MAX_NAME),
        ("path", path.len(), MAX_ATTRIBUTE),
        (
            "domain",
            config.domain.as_ref().map_or(0, String::len),
            MAX_ATTRIBUTE,
        ),
    ] {
        if length > limit {
            return Err(ConfigError::TooLong(what));
        }
    }
    // Browsers match the prefixes case-insensitively.
    let prefixed = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    if prefixed("__Host-") && (!config.secure || config.domain.is_some() || path != "/") {
        return Err(ConfigError::HostPrefix);
    }
    if prefixed("__Secure-") && !config.secure {
        return Err(ConfigError::SecurePrefix);
    }
    if config.same_site == SameSite::None && !config.secure {
        return Err(ConfigError::SameSiteNoneWithoutSecure);
    }
    for (what, zero) in [
        ("idle timeout", config.idle_timeout.is_zero()),
        ("absolute timeout", config.absolute_timeout.is_zero()),
        ("store timeout", config.store_timeout.is_zero()),
        ("update attempts", config.update_attempts == 0),
    ] {
        if zero {
            return Err(ConfigError::Zero(what));
        }
    }
    Ok(())
}

/// A host name, with the leading dot RFC 6265 ignores allowed: labels of
/// letters, digits and inner hyphens, none empty, so that the `Domain`
/// clients keep is the one configured.
fn is_domain(domain: &str) -> bool {
    let host = domain.strip_prefix('.').unwrap_or(domain);
    !host.is_empty()
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// RFC 7230 `tchar`: what a cookie name may hold.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// What an attribute value may hold: visible ASCII and space, but no `;`.
fn is_attribute_byte(byte: u8) -> bool {
    (0x20..0x7f).contains(&byte) && byte != b';'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(builder: SessionConfigBuilder) -> Result<SessionConfig, ConfigError> {
        builder.build()
    }

    #[test]
    fn defaults_are_valid() {
        let config = build(SessionConfig::builder()).unwrap();
        assert_eq!(config.cookie_name, "__Host-id");
        assert_eq!(SessionConfig::default().cookie_name, DEFAULT_COOKIE_NAME);
        assert!(config.secure && !config.persistent);
        assert_eq!(config.same_site, SameSite::Lax);
        assert_eq!(config.idle_timeout, Duration::from_secs(1800));
        assert_eq!(config.absolute_timeout, Duration::from_secs(43_200));
    }

    /// Unless set, the name takes the strictest prefix the settings allow.
    #[test]
    fn the_default_name_follows_the_prefix_rules() {
        let b = SessionConfig::builder;
        for (builder, name) in [
            (b(), "__Host-id"),
            (b().domain("example.com"), "__Secure-id"),
            (b().path("/app"), "__Secure-id"),
            (b().secure(false), "id"),
            (b().secure(false).domain("example.com"), "id"),
            (b().secure(false).cookie_name("sid"), "sid"),
        ] {
            assert_eq!(build(builder).unwrap().cookie_name, name);
        }
    }

    #[test]
    fn invalid_combinations_are_refused() {
        let b = SessionConfig::builder;
        let cases = [
            (b().cookie_name(""), ConfigError::InvalidName(String::new())),
            (
                b().cookie_name("a b"),
                ConfigError::InvalidName("a b".into()),
            ),
            (
                b().cookie_name("a;b"),
                ConfigError::InvalidName("a;b".into()),
            ),
            (
                b().cookie_name("sid="),
                ConfigError::InvalidName("sid=".into()),
            ),
            (b().cookie_name("é"), ConfigError::InvalidName("é".into())),
            (b().path("app"), ConfigError::InvalidPath("app".into())),
            (b().path("/a;b"), ConfigError::InvalidPath("/a;b".into())),
            (b().path("/\n"), ConfigError::InvalidPath("/\n".into())),
            // Found by fuzz/set_cookie_config: clients trim it to "/app".
            (b().path("/app "), ConfigError::InvalidPath("/app ".into())),
            (
                b().domain("a;b.com"),
                ConfigError::InvalidDomain("a;b.com".into()),
            ),
            (b().domain("."), ConfigError::InvalidDomain(".".into())),
            (
                b().domain("..example.com"),
                ConfigError::InvalidDomain("..example.com".into()),
            ),
            (
                b().domain("a..b"),
                ConfigError::InvalidDomain("a..b".into()),
            ),
            (b().domain("-"), ConfigError::InvalidDomain("-".into())),
            (b().domain("x."), ConfigError::InvalidDomain("x.".into())),
            (
                b().domain("-a.com"),
                ConfigError::InvalidDomain("-a.com".into()),
            ),
            (
                b().domain("a-.com"),
                ConfigError::InvalidDomain("a-.com".into()),
            ),
            (b().domain(""), ConfigError::InvalidDomain("".into())),
            (
                b().domain("a.b-"),
                ConfigError::InvalidDomain("a.b-".into()),
            ),
            (
                b().cookie_name("__Host-id").domain("example.com"),
                ConfigError::HostPrefix,
            ),
            (
                b().cookie_name("__Host-id").secure(false),
                ConfigError::HostPrefix,
            ),
            (
                b().cookie_name("__Host-id").path("/app"),
                ConfigError::HostPrefix,
            ),
            (
                b().cookie_name("__Secure-id").secure(false),
                ConfigError::SecurePrefix,
            ),
            (
                b().same_site(SameSite::None).secure(false),
                ConfigError::SameSiteNoneWithoutSecure,
            ),
            (
                b().idle_timeout(Duration::ZERO),
                ConfigError::Zero("idle timeout"),
            ),
            (b().update_attempts(0), ConfigError::Zero("update attempts")),
            (
                b().cookie_name("__HOST-id").domain("example.com"),
                ConfigError::HostPrefix,
            ),
            (
                b().cookie_name("__secure-id").secure(false),
                ConfigError::SecurePrefix,
            ),
            (
                b().cookie_name("n".repeat(MAX_NAME + 1)),
                ConfigError::TooLong("name"),
            ),
            (
                b().path(format!("/{}", "p".repeat(MAX_ATTRIBUTE))),
                ConfigError::TooLong("path"),
            ),
        ];
        for (builder, expected) in cases {
            assert_eq!(build(builder).unwrap_err(), expected);
        }
    }

    #[test]
    fn prefixed_names_pass_with_their_requirements() {
        build(SessionConfig::builder().cookie_name("__Host-id")).unwrap();
        build(
            SessionConfig::builder()
                .cookie_name("__Secure-id")
                .domain("example.com"),
        )
        .unwrap();
        build(SessionConfig::builder().same_site(SameSite::None)).unwrap();
        build(SessionConfig::builder().cookie_name("n".repeat(MAX_NAME))).unwrap();
    }

    #[test]
    fn host_names_are_valid_domains() {
        for domain in [
            "example.com",
            ".example.com",
            "localhost",
            "a-b.x1.example",
            "127.0.0.1",
        ] {
            let config = SessionConfig::builder().domain(domain).build();
            assert!(config.is_ok(), "{domain}: {config:?}");
        }
    }
}
