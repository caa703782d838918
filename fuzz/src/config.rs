//! A cookie configuration made from fuzz input: every setting of
//! `SessionConfigBuilder` that shows in the cookie, each left at its
//! default when `None`.

use std::time::Duration;

use arbitrary::Arbitrary;
use session_http::{ConfigError, SameSite, SessionConfig};

use crate::app::config_builder;
use crate::check::Expected;

/// The longest `Max-Age` the layer sends: 400 days (RFC 6265bis).
const MAX_AGE_LIMIT: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// Settings to build a `SessionConfig` from; `default()` is the default
/// configuration.
#[derive(Arbitrary, Clone, Debug, Default, PartialEq, Eq)]
pub struct FuzzConfig {
    /// `secure`.
    pub secure: Option<bool>,
    /// `same_site`.
    pub same_site: Option<SameSiteChoice>,
    /// `persistent`.
    pub persistent: Option<bool>,
    /// `idle_timeout`, in milliseconds.
    pub idle_timeout_ms: Option<u64>,
    /// `absolute_timeout`, in milliseconds.
    pub absolute_timeout_ms: Option<u64>,
    /// `path`.
    pub path: Option<String>,
    /// `domain`.
    pub domain: Option<String>,
    /// `cookie_name`.
    pub cookie_name: Option<String>,
}

/// [`SameSite`], for `Arbitrary`.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSiteChoice {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None`.
    None,
}

impl FuzzConfig {
    /// The configuration, or the error `build` refuses it with.
    ///
    /// # Errors
    ///
    /// What `SessionConfigBuilder::build` returns.
    pub fn build(&self) -> Result<SessionConfig, ConfigError> {
        let mut builder = config_builder();
        if let Some(secure) = self.secure {
            builder = builder.secure(secure);
        }
        if let Some(same_site) = self.same_site {
            builder = builder.same_site(match same_site {
                SameSiteChoice::Strict => SameSite::Strict,
                SameSiteChoice::Lax => SameSite::Lax,
                SameSiteChoice::None => SameSite::None,
            });
        }
        if let Some(persistent) = self.persistent {
            builder = builder.persistent(persistent);
        }
        if let Some(ms) = self.idle_timeout_ms {
            builder = builder.idle_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = self.absolute_timeout_ms {
            builder = builder.absolute_timeout(Duration::from_millis(ms));
        }
        if let Some(path) = &self.path {
            builder = builder.path(path.as_str());
        }
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.as_str());
        }
        if let Some(name) = &self.cookie_name {
            builder = builder.cookie_name(name.as_str());
        }
        builder.build()
    }

    /// The cookie name the documentation promises when none is set: the
    /// strictest prefix the other settings allow.
    fn default_name(&self) -> &'static str {
        let host_only = self.domain.is_none() && self.path.as_deref().unwrap_or("/") == "/";
        match (self.secure.unwrap_or(true), host_only) {
            (true, true) => "__Host-id",
            (true, false) => "__Secure-id",
            (false, _) => "id",
        }
    }

    /// What the session cookie of a session created now must carry. The
    /// defaults are written out again here, as the documentation states
    /// them, rather than read from the library under test.
    pub fn expected(&self) -> Expected<'_> {
        let timeout = |ms: Option<u64>, default: u64| Duration::from_millis(ms.unwrap_or(default));
        let lifetime = timeout(self.idle_timeout_ms, 30 * 60 * 1000)
            .min(timeout(self.absolute_timeout_ms, 12 * 60 * 60 * 1000))
            .min(MAX_AGE_LIMIT);
        Expected {
            name: self.cookie_name.as_deref().unwrap_or(self.default_name()),
            path: self.path.as_deref().unwrap_or("/"),
            domain: self.domain.as_deref(),
            secure: self.secure.unwrap_or(true),
            same_site: match self.same_site.unwrap_or(SameSiteChoice::Lax) {
                SameSiteChoice::Strict => cookie::SameSite::Strict,
                SameSiteChoice::Lax => cookie::SameSite::Lax,
                SameSiteChoice::None => cookie::SameSite::None,
            },
            // Rounded to the nearest second, as documented.
            max_age: self.persistent.unwrap_or(false).then(|| {
                let seconds = (lifetime.as_millis() + 500) / 1000;
                i64::try_from(seconds).expect("400 days fit an i64")
            }),
        }
    }
}
