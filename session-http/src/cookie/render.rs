//! Writing the session cookie into responses: the `cookie` crate renders
//! `Set-Cookie` once per layer, and every cookie is that with the id spliced
//! in.

use std::time::Duration;

use cookie::Cookie;
use http::HeaderValue;
use session_core::SessionId;

use crate::config::{SameSite, SessionConfig};

/// The longest `Max-Age` browsers honour (RFC 6265bis): 400 days.
const MAX_AGE_LIMIT: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// The `Set-Cookie` of a configuration, rendered once by the `cookie`
/// crate with an empty value: every session cookie is this with the id
/// spliced in (and `Max-Age` appended, which the crate also writes last),
/// instead of building and formatting a `Cookie` on every response.
#[derive(Debug)]
pub(crate) struct CookieTemplate {
    /// `name=`.
    prefix: String,
    /// `; HttpOnly; SameSite=...` and the rest; `None` if the crate ever
    /// rendered something else first, in which case no cookie is sent
    /// rather than one without its attributes.
    attributes: Option<String>,
}

impl CookieTemplate {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        let rendered = base(config, String::new()).to_string();
        let prefix = format!("{}=", config.cookie_name);
        let attributes = rendered.strip_prefix(&prefix).map(str::to_owned);
        if attributes.is_none() {
            tracing::error!("unexpected Set-Cookie rendering; no session cookie will be sent");
        }
        Self { prefix, attributes }
    }

    /// `Set-Cookie` for the session `id`; `max_age` for a persistent cookie.
    pub(crate) fn render(&self, id: &SessionId, max_age: Option<Duration>) -> Option<HeaderValue> {
        let attributes = self.attributes.as_deref()?;
        let mut text = String::with_capacity(self.prefix.len() + 22 + attributes.len() + 20);
        text.push_str(&self.prefix);
        text.push_str(&id.to_cookie_value());
        text.push_str(attributes);
        if let Some(max_age) = max_age {
            // To the nearest second: the deadline was set a moment before
            // this response, which should not cost the cookie a second.
            let seconds = (max_age.min(MAX_AGE_LIMIT).as_millis() + 500) / 1000;
            text.push_str("; Max-Age=");
            text.push_str(&seconds.to_string());
        }
        header(text)
    }
}

/// `Set-Cookie` that removes the session cookie: the same name and
/// attributes, an empty value, `Max-Age=0` and an `Expires` in the past.
pub(crate) fn removal_cookie(config: &SessionConfig) -> Option<HeaderValue> {
    let mut cookie = base(config, String::new());
    cookie.make_removal();
    header(cookie.to_string())
}

fn base(config: &SessionConfig, value: String) -> Cookie<'static> {
    let mut cookie = Cookie::build((config.cookie_name.clone(), value))
        .path(config.path.clone())
        .http_only(true)
        .secure(config.secure)
        .same_site(match config.same_site {
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::None => cookie::SameSite::None,
        })
        .build();
    if let Some(domain) = &config.domain {
        cookie.set_domain(domain.clone());
    }
    cookie
}

fn header(cookie: String) -> Option<HeaderValue> {
    // The configuration was validated, so this cannot fail; if it ever did,
    // sending no cookie is the safe answer.
    HeaderValue::try_from(cookie)
        .inspect_err(|_| tracing::error!("session cookie is not a valid header value"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> SessionId {
        SessionId::generate().unwrap()
    }

    #[test]
    fn default_set_cookie_is_exact() {
        let config = SessionConfig::default();
        let id = id();
        let value = CookieTemplate::new(&config).render(&id, None).unwrap();
        assert_eq!(
            value.to_str().unwrap(),
            format!(
                "__Host-id={}; HttpOnly; SameSite=Lax; Secure; Path=/",
                id.to_cookie_value()
            )
        );
    }

    #[test]
    fn persistent_cookie_max_age_is_clamped() {
        let config = SessionConfig::default();
        let forever = Some(Duration::from_secs(u64::MAX));
        let value = CookieTemplate::new(&config).render(&id(), forever).unwrap();
        assert!(
            value.to_str().unwrap().ends_with("; Max-Age=34560000"),
            "{value:?}"
        );
    }

    /// The template writes what the `cookie` crate writes, for every
    /// attribute, with and without `Max-Age`.
    #[test]
    fn the_template_is_what_the_cookie_crate_writes() {
        let configs = [
            SessionConfig::default(),
            SessionConfig::builder()
                .cookie_name("__Secure-sid")
                .domain("example.com")
                .path("/app")
                .same_site(SameSite::None)
                .persistent(true)
                .build()
                .unwrap(),
            SessionConfig::builder()
                .secure(false)
                .same_site(SameSite::Strict)
                .build()
                .unwrap(),
        ];
        for config in &configs {
            let template = CookieTemplate::new(config);
            for max_age in [None, Some(Duration::from_secs(90))] {
                let id = id();
                let mut expected = base(config, id.to_cookie_value());
                if let Some(max_age) = max_age {
                    let seconds = i64::try_from(max_age.as_secs()).unwrap();
                    expected.set_max_age(cookie::time::Duration::seconds(seconds));
                }
                let rendered = template.render(&id, max_age).unwrap();
                assert_eq!(rendered.to_str().unwrap(), expected.to_string());
            }
        }
    }

    #[test]
    fn removal_repeats_the_attributes() {
        let config = SessionConfig::builder()
            .cookie_name("__Secure-sid")
            .domain("example.com")
            .path("/app")
            .same_site(SameSite::Strict)
            .build()
            .unwrap();
        let removal = removal_cookie(&config).unwrap();
        let removal = removal.to_str().unwrap();
        assert!(removal.starts_with("__Secure-sid=; HttpOnly; SameSite=Strict; Secure; Path=/app; Domain=example.com; Max-Age=0; Expires="), "{removal}");
    }
}
