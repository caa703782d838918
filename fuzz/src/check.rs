//! Checks of the `Set-Cookie` a response carries, re-parsed with the
//! `cookie` crate as a client would read it.

use cookie::time::OffsetDateTime;
use cookie::{Cookie, SameSite};
use http::Response;
use http::header::SET_COOKIE;
use session_core::SessionId;

/// The attributes a session cookie must carry.
#[derive(Debug)]
pub struct Expected<'a> {
    /// The configured name.
    pub name: &'a str,
    /// The configured `Path`.
    pub path: &'a str,
    /// The configured `Domain`, if any.
    pub domain: Option<&'a str>,
    /// The configured `Secure`.
    pub secure: bool,
    /// The configured `SameSite`.
    pub same_site: SameSite,
    /// `Max-Age` in seconds, for a persistent cookie.
    pub max_age: Option<i64>,
}

/// A `Set-Cookie` header: as sent (for failure messages), and parsed.
#[derive(Debug)]
pub struct SetCookie {
    /// The header's value.
    pub sent: String,
    /// The cookie the `cookie` crate reads from it.
    pub cookie: Cookie<'static>,
}

/// The response's `Set-Cookie`; `None` if it has none. Fails if there are
/// several or it does not parse.
pub fn set_cookie(response: &Response<()>) -> Option<SetCookie> {
    let mut values = response.headers().get_all(SET_COOKIE).iter();
    let value = values.next()?;
    assert!(values.next().is_none(), "several Set-Cookie headers");
    let sent = value
        .to_str()
        .expect("Set-Cookie is visible ASCII")
        .to_owned();
    let cookie = Cookie::parse(sent.clone()).expect("Set-Cookie parses");
    Some(SetCookie { sent, cookie })
}

/// Checks a cookie that carries a session: its value is an id and its
/// attributes are `expected`; returns the id.
pub fn session_cookie(set: &SetCookie, expected: &Expected<'_>) -> SessionId {
    let (sent, cookie) = (&set.sent, &set.cookie);
    attributes(set, expected);
    assert_eq!(
        cookie.max_age().map(|age| age.whole_seconds()),
        expected.max_age,
        "Max-Age of {sent}"
    );
    assert_eq!(cookie.expires(), None, "Expires of {sent}");
    SessionId::parse(cookie.value()).expect("the cookie's value is a session id")
}

/// Checks a cookie that removes the session cookie: empty, expired, and
/// otherwise the attributes of the cookie it removes (or the browser would
/// keep that one).
pub fn removal_cookie(set: &SetCookie, expected: &Expected<'_>) {
    let (sent, cookie) = (&set.sent, &set.cookie);
    attributes(set, expected);
    assert_eq!(cookie.value(), "", "value of {sent}");
    assert_eq!(
        cookie.max_age().map(|age| age.whole_seconds()),
        Some(0),
        "Max-Age of {sent}"
    );
    let expires = cookie.expires_datetime().expect("a removal has Expires");
    assert!(expires < OffsetDateTime::now_utc(), "Expires of {sent}");
}

fn attributes(set: &SetCookie, expected: &Expected<'_>) {
    let (sent, cookie) = (&set.sent, &set.cookie);
    assert_eq!(cookie.name(), expected.name, "name of {sent}");
    assert_eq!(cookie.path(), Some(expected.path), "Path of {sent}");
    // RFC 6265 (5.2.3) ignores one leading dot, and so does `cookie`.
    let domain = expected.domain.map(|d| d.strip_prefix('.').unwrap_or(d));
    assert_eq!(cookie.domain(), domain, "Domain of {sent}");
    assert_eq!(
        cookie.secure(),
        expected.secure.then_some(true),
        "Secure of {sent}"
    );
    assert_eq!(cookie.http_only(), Some(true), "HttpOnly of {sent}");
    assert_eq!(
        cookie.same_site(),
        Some(expected.same_site),
        "SameSite of {sent}"
    );
}
