//! Reading the session cookie from requests, writing it into responses.
//!
//! `Cookie` headers are scanned as bytes: every header, every pair, names
//! compared byte for byte and never percent-decoded, so other cookies may
//! hold anything and `__Host%2Did` is not `__Host-id`. The `cookie` crate
//! builds `Set-Cookie`.

use std::time::Duration;

use cookie::Cookie;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use session_core::SessionId;

use crate::config::{SameSite, SessionConfig};

/// At most this many well-formed session cookies are looked up.
pub(crate) const MAX_CANDIDATES: usize = 4;

/// The longest `Max-Age` browsers honour (RFC 6265bis): 400 days.
const MAX_AGE_LIMIT: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// The request's session cookies: the distinct well-formed ids (at most
/// [`MAX_CANDIDATES`]), how many values were not ids at all, and how many
/// well-formed ones were beyond the cap.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    pub(crate) ids: Vec<SessionId>,
    pub(crate) malformed: usize,
    pub(crate) excess: usize,
}

impl Candidates {
    /// Whether the request carried any cookie of the session's name.
    pub(crate) fn any(&self) -> bool {
        !self.ids.is_empty() || self.malformed > 0 || self.excess > 0
    }
}

/// Scans every `Cookie` header for values of the cookie called `name`.
pub(crate) fn candidates(headers: &HeaderMap, name: &str) -> Candidates {
    let mut found = Candidates::default();
    let values = headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|header| header.as_bytes().split(|&byte| byte == b';'))
        .filter_map(|pair| {
            let mut parts = pair.splitn(2, |&byte| byte == b'=');
            let pair_name = parts.next()?.trim_ascii();
            let value = parts.next()?.trim_ascii();
            (pair_name == name.as_bytes()).then_some(value)
        });
    for value in values {
        match std::str::from_utf8(value).ok().and_then(SessionId::parse) {
            Some(id) if found.ids.contains(&id) => {}
            Some(id) if found.ids.len() < MAX_CANDIDATES => found.ids.push(id),
            Some(_) => found.excess += 1,
            None => found.malformed += 1,
        }
    }
    found
}

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
            let seconds = max_age.min(MAX_AGE_LIMIT).as_secs();
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

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(COOKIE, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    fn id() -> SessionId {
        SessionId::generate().unwrap()
    }

    #[test]
    fn finds_the_cookie_among_others_and_across_headers() {
        let (a, b) = (id(), id());
        let first = format!("theme=dark; id={}", a.to_cookie_value());
        let second = format!("x=\"unbalanced; id = {} ;other=1", b.to_cookie_value());
        let found = candidates(
            &headers(&[first.as_bytes(), b"lang=\xff\xfe", second.as_bytes()]),
            "id",
        );
        assert_eq!(found.ids, [a, b]);
        assert_eq!(found.malformed, 0);
    }

    #[test]
    fn names_match_exactly() {
        let a = id().to_cookie_value();
        for header in [
            format!("ID={a}"),
            format!("xid={a}"),
            format!("__Host%2Did={a}"),
            format!("i d={a}"),
        ] {
            assert!(
                candidates(&headers(&[header.as_bytes()]), "id")
                    .ids
                    .is_empty(),
                "{header}"
            );
        }
        let header = format!("__Host-id={a}");
        assert_eq!(
            candidates(&headers(&[header.as_bytes()]), "__Host-id")
                .ids
                .len(),
            1
        );
    }

    #[test]
    fn malformed_values_are_counted_not_kept() {
        let found = candidates(&headers(&[b"id=; id=malformed; id=\"abc\"; id"]), "id");
        assert!(found.ids.is_empty());
        assert_eq!(found.malformed, 3);
    }

    #[test]
    fn duplicates_collapse_and_candidates_are_capped() {
        let a = id().to_cookie_value();
        let mut header = format!("id={a}; id={a}");
        for _ in 0..6 {
            header.push_str(&format!("; id={}", id().to_cookie_value()));
        }
        let found = candidates(&headers(&[header.as_bytes()]), "id");
        assert_eq!(found.ids.len(), MAX_CANDIDATES);
        assert_eq!((found.malformed, found.excess), (0, 7 - MAX_CANDIDATES));
        assert!(found.any());
        assert!(!candidates(&HeaderMap::new(), "id").any());
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

    /// Bytes a header value may hold: no control characters but tab.
    fn header_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let byte = prop_oneof![
            4 => prop::sample::select(b"id=; \"AaZz09-_,".to_vec()),
            1 => (0x20_u8..=0xff).prop_filter("DEL", |b| *b != 0x7f),
            1 => Just(b'\t'),
        ];
        prop::collection::vec(byte, 0..200)
    }

    proptest::proptest! {
        /// Any Cookie headers: no panic, at most MAX_CANDIDATES distinct ids,
        /// each one written as a value in the headers.
        #[test]
        fn any_cookie_header_scans(values in proptest::collection::vec(header_bytes(), 0..4)) {
            let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            let found = candidates(&headers(&values), "id");
            proptest::prop_assert!(found.ids.len() <= MAX_CANDIDATES);
            for (i, id) in found.ids.iter().enumerate() {
                proptest::prop_assert!(!found.ids[..i].contains(id));
                let text = id.to_cookie_value();
                proptest::prop_assert!(values.iter().any(|v| v.windows(text.len()).any(|w| w == text.as_bytes())));
            }
        }

        /// A generated id among any other cookies is found.
        #[test]
        fn the_session_id_is_found_among_any_cookies(
            before in "[a-z]{1,8}=[ -:<-~]{0,20}",
            after in "[a-z]{1,8}=[ -:<-~]{0,20}",
        ) {
            let id = id();
            let header = format!("{before}; id={}; {after}", id.to_cookie_value());
            let found = candidates(&headers(&[header.as_bytes()]), "id");
            let another_id_cookie = before.starts_with("id=") || after.starts_with("id=");
            if !another_id_cookie {
                proptest::prop_assert_eq!(found.ids, vec![id]);
            }
        }
    }
}
