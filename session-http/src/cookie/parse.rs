//! Reading the session cookie from requests.
//!
//! `Cookie` headers are scanned as bytes: every header, every pair, names
//! compared byte for byte and never percent-decoded, so other cookies may
//! hold anything and `__Host%2Did` is not `__Host-id`.

use http::HeaderMap;
use http::header::COOKIE;
use session_core::SessionId;

/// At most this many well-formed session cookies are looked up.
pub(crate) const MAX_CANDIDATES: usize = 4;

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

#[cfg(test)]
mod tests {
    use http::HeaderValue;

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
