//! Raw `Cookie` headers through the session layer: whatever a client sends,
//! the layer answers 200 and sets at most one cookie, well-formed and of
//! its name: none after a read, a removal after a destroy, a session cookie
//! after a write, never with an id the client chose.
//!
//! Input: one byte choosing the handler's action (`byte % 3`: read, write,
//! destroy), then the headers' bytes, separated by `\n`. `$ID` stands for
//! the id of a live session planted before every run.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use session_fuzz::app::{Action, Fixture, SEED_ID, seed_id};
use session_fuzz::check;
use session_fuzz::config::FuzzConfig;

/// More headers add nothing the layer treats differently.
const MAX_HEADERS: usize = 4;
const MARKER: &[u8] = b"$ID";

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let action = [Action::Read, Action::Write, Action::Destroy][usize::from(choice % 3)];
    let sent = expand_marker(rest);
    let Some(headers) = headers(&sent) else {
        return;
    };
    let fixture = Fixture::get();
    fixture.plant_seed();
    let defaults = FuzzConfig::default();
    let config = defaults.build().expect("the defaults are valid");
    let response = fixture.send(config, action, &headers);
    assert_eq!(response.status(), 200);
    let Some(set) = check::set_cookie(&response) else {
        return;
    };
    let expected = defaults.expected();
    match action {
        // Nothing expires on the fixed clock: a read has nothing to tell.
        Action::Read => panic!("a read set a cookie: {}", set.sent),
        Action::Destroy => check::removal_cookie(&set, &expected),
        Action::Write => {
            let id = check::session_cookie(&set, &expected);
            if id != seed_id() {
                // Session fixation: a new session gets an id the server drew.
                let value = id.to_cookie_value();
                assert!(!contains(&sent, value.as_bytes()), "adopted a client's id");
                fixture.delete(&id);
            }
        }
    }
});

/// `bytes` with every [`MARKER`] replaced by [`SEED_ID`].
fn expand_marker(bytes: &[u8]) -> Vec<u8> {
    let mut expanded = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(MARKER) {
            expanded.extend_from_slice(SEED_ID.as_bytes());
            rest = after;
        } else {
            expanded.push(rest[0]);
            rest = &rest[1..];
        }
    }
    expanded
}

/// The `Cookie` headers in `bytes`; `None` if there are too many or one is
/// not a header value (no client could send it).
fn headers(bytes: &[u8]) -> Option<Vec<HeaderValue>> {
    let parts: Vec<&[u8]> = bytes.split(|&byte| byte == b'\n').collect();
    if parts.len() > MAX_HEADERS {
        return None;
    }
    parts
        .into_iter()
        .map(|part| HeaderValue::from_bytes(part).ok())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
