//! When a response carries the session cookie, and the caching headers that
//! follow: decided here, once, from what the end of the request left.

use http::header::{CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue};
use session_core::{Deadlines, SessionId, Timestamp};

use super::render::{CookieTemplate, removal_cookie};
use crate::config::SessionConfig;

/// What the end of a request left for the browser to know.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// No session for the browser to hold. `removal`: it sent a cookie of
    /// ours and the request logged out, so the cookie is to go.
    NoSession { removal: bool },
    /// A live session.
    Live {
        id: SessionId,
        /// Its deadlines as last written.
        deadlines: Deadlines,
        /// Its cookie is persistent (else it lasts for the browser
        /// session).
        persistent: bool,
        /// The request's cookie named this id (the browser has it).
        known: bool,
        /// This request moved the deadlines (a write or a touch).
        moved: bool,
        /// This request wrote the session a new lifetime: the browser's
        /// cookie may be of the other kind.
        reshaped: bool,
        /// When the deadlines were last looked at: a persistent cookie's
        /// `Max-Age` counts from here.
        now: Timestamp,
    },
}

/// The cookie rules of one layer, with its cookies rendered once.
#[derive(Debug)]
pub(crate) struct CookieRules {
    template: CookieTemplate,
    removal: Option<HeaderValue>,
}

impl CookieRules {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        Self {
            template: CookieTemplate::new(config),
            removal: removal_cookie(config),
        }
    }

    /// The `Set-Cookie` a response owes the browser: a session's cookie when
    /// the browser lacks its id, when a persistent cookie's `Max-Age` must
    /// follow deadlines that moved, or when the session's lifetime changed
    /// (so the cookie's kind may have); a removal after a logout; else
    /// none (and never a removal for a session that ended elsewhere: it
    /// could overwrite the cookie of a concurrent login).
    pub(crate) fn set_cookie(&self, outcome: &Outcome) -> Option<HeaderValue> {
        match outcome {
            Outcome::NoSession { removal } => removal.then(|| self.removal.clone()).flatten(),
            Outcome::Live {
                id,
                deadlines,
                persistent,
                known,
                moved,
                reshaped,
                now,
            } => {
                let owed = !known || resent(*persistent, *moved, *reshaped);
                owed.then(|| self.render(id, *deadlines, *persistent, *now))
                    .flatten()
            }
        }
    }

    /// A live session's cookie: `Max-Age` to its deadline if persistent.
    fn render(
        &self,
        id: &SessionId,
        deadlines: Deadlines,
        persistent: bool,
        now: Timestamp,
    ) -> Option<HeaderValue> {
        let max_age = persistent.then(|| deadlines.expires_at().saturating_duration_since(now));
        self.template.render(id, max_age)
    }
}

/// Whether the browser is sent again the cookie it has: a persistent one
/// whose deadline moved (its `Max-Age` follows), or one whose session got
/// a new lifetime (its kind may have changed).
pub(crate) fn resent(persistent: bool, moved: bool, reshaped: bool) -> bool {
    (persistent && moved) || reshaped
}

/// Puts `set_cookie` and the caching headers into a response's `headers`.
/// `vary`: the handler used the session, so the response depends on the
/// cookie.
pub(crate) fn apply(headers: &mut HeaderMap, vary: bool, set_cookie: Option<HeaderValue>) {
    if let Some(cookie) = set_cookie {
        headers.append(SET_COOKIE, cookie);
        if !kept_from_shared_caches(headers) {
            // Whatever the handler said: a shared cache that stored this
            // response would hand the cookie to everyone after.
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    // Only a response that depends on the cookie pays for the scan.
    let varies_already = || {
        directives(headers, &VARY).any(|name| name == "*" || name.eq_ignore_ascii_case("cookie"))
    };
    if vary && !varies_already() {
        headers.append(VARY, HeaderValue::from_static("cookie"));
    }
}

/// Whether `Cache-Control` already keeps shared caches from storing the
/// response: `no-store`, or a plain `private` (not `private="field"`, which
/// lets the rest be shared) with no `public`.
fn kept_from_shared_caches(headers: &HeaderMap) -> bool {
    let (mut private, mut public) = (false, false);
    for directive in directives(headers, &CACHE_CONTROL) {
        if directive.eq_ignore_ascii_case("no-store") {
            return true;
        }
        private |= directive.eq_ignore_ascii_case("private");
        public |= directive.eq_ignore_ascii_case("public");
    }
    private && !public
}

/// The comma-separated entries of every `name` header, trimmed; values
/// that are not text count as none.
fn directives<'h>(headers: &'h HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(persistent: bool, (known, moved, reshaped): (bool, bool, bool)) -> Outcome {
        let at = Timestamp::from_unix_millis;
        Outcome::Live {
            id: SessionId::generate().unwrap(),
            deadlines: Deadlines::new(at(61_000), at(90_000)),
            persistent,
            known,
            moved,
            reshaped,
            now: at(1_000),
        }
    }

    /// Every case of the decision, for browser-session and persistent
    /// cookies: (known, moved, reshaped), then whether each kind is sent.
    #[test]
    fn a_cookie_goes_out_when_the_browser_lacks_it_or_it_changed() {
        let rules = CookieRules::new(&SessionConfig::default());
        for (case, browser_session, persistent) in [
            ((false, false, false), true, true),
            ((false, true, false), true, true),
            ((true, false, false), false, false),
            ((true, true, false), false, true),
            ((true, true, true), true, true),
            ((true, false, true), true, true),
        ] {
            let sent = |kind| rules.set_cookie(&live(kind, case)).is_some();
            assert_eq!(sent(false), browser_session, "{case:?}");
            assert_eq!(sent(true), persistent, "{case:?}");
        }
        for (removal, sent) in [(false, false), (true, true)] {
            let outcome = Outcome::NoSession { removal };
            assert_eq!(rules.set_cookie(&outcome).is_some(), sent);
        }
        let cookie = rules.set_cookie(&live(true, (true, true, false))).unwrap();
        assert!(
            cookie.to_str().unwrap().ends_with("; Max-Age=60"),
            "{cookie:?}"
        );
        let reshaped = rules.set_cookie(&live(false, (true, true, true))).unwrap();
        assert!(
            !reshaped.to_str().unwrap().contains("Max-Age"),
            "{reshaped:?}"
        );
    }

    /// A cookie makes the response uncacheable by shared caches whatever
    /// the handler said, unless it already was.
    #[test]
    fn shared_caches_never_store_a_cookie() {
        let cookie = || Some(HeaderValue::from_static("__Host-id=x"));
        for (own, expected) in [
            (None, "no-store"),
            (Some("public, max-age=3600"), "no-store"),
            (Some("max-age=60"), "no-store"),
            (Some("private=\"set-cookie\", max-age=60"), "no-store"),
            (Some("private, public"), "no-store"),
            (Some("private, max-age=60"), "private, max-age=60"),
            (Some("No-Store"), "No-Store"),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(own) = own {
                headers.insert(CACHE_CONTROL, HeaderValue::from_static(own));
            }
            apply(&mut headers, true, cookie());
            assert_eq!(headers[CACHE_CONTROL], expected, "{own:?}");
            assert_eq!(headers[VARY], "cookie");
        }
        let mut untouched = HeaderMap::new();
        apply(&mut untouched, false, None);
        assert!(untouched.is_empty());
    }
}
