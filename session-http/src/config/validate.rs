//! What a configuration may say (RFC 6265bis and the cookie prefix rules),
//! checked when it is built, and the cookie name the settings give when the
//! application names none.

use super::{ConfigError, SameSite, SessionConfig};

/// The cookie name with the default settings: the `__Host-` prefix makes
/// browsers refuse the cookie from a sibling subdomain or over plain HTTP.
pub const DEFAULT_COOKIE_NAME: &str = "__Host-id";

/// The strictest cookie name the prefix rules allow with these settings.
pub(super) fn default_cookie_name(config: &SessionConfig) -> &'static str {
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

pub(super) fn validate(config: &SessionConfig) -> Result<(), ConfigError> {
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
        (
            "rotate after",
            config.rotate_after.is_some_and(|after| after.is_zero()),
        ),
        ("rotation grace", config.rotation_grace.is_zero()),
        ("update attempts", config.update_attempts == 0),
    ] {
        if zero {
            return Err(ConfigError::Zero(what));
        }
    }
    for (what, bound, default) in [
        (
            "max idle timeout",
            config.max_idle_timeout(),
            config.idle_timeout,
        ),
        (
            "max absolute timeout",
            config.max_absolute_timeout(),
            config.absolute_timeout,
        ),
    ] {
        if bound < default {
            return Err(ConfigError::BelowDefault(what));
        }
    }
    if config
        .rotate_after
        .is_some_and(|after| config.rotation_grace >= after)
    {
        return Err(ConfigError::GraceTooLong);
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
    use std::time::Duration;

    use super::super::SessionConfigBuilder;
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
                b().rotate_after(Duration::from_secs(10)),
                ConfigError::GraceTooLong,
            ),
            (
                b().rotate_after(Duration::ZERO),
                ConfigError::Zero("rotate after"),
            ),
            (
                b().rotation_grace(Duration::ZERO),
                ConfigError::Zero("rotation grace"),
            ),
            (
                b().max_idle_timeout(Duration::from_secs(60)),
                ConfigError::BelowDefault("max idle timeout"),
            ),
            (
                b().absolute_timeout(Duration::from_secs(7200))
                    .max_absolute_timeout(Duration::from_secs(3600)),
                ConfigError::BelowDefault("max absolute timeout"),
            ),
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
