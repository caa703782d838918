//! Arbitrary cookie configurations: building one never panics, and for
//! every configuration that builds, the cookie of a new session and the
//! cookie that removes it carry exactly the configured attributes.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use session_fuzz::app::{Action, Fixture};
use session_fuzz::check;
use session_fuzz::config::FuzzConfig;

fuzz_target!(|settings: FuzzConfig| {
    let Ok(config) = settings.build() else {
        return;
    };
    if known_issue(&settings) {
        return;
    }
    let fixture = Fixture::get();
    let expected = settings.expected();

    let created = fixture.send(config.clone(), Action::Write, &[]);
    assert_eq!(created.status(), 200);
    let set = check::set_cookie(&created).expect("a new session sets its cookie");
    check::session_cookie(&set, &expected);

    // Sent back as a browser would: name=value.
    let sent = format!("{}={}", set.cookie.name(), set.cookie.value());
    let sent = HeaderValue::try_from(sent).expect("a cookie pair is a header value");
    let destroyed = fixture.send(config, Action::Destroy, &[sent]);
    assert_eq!(destroyed.status(), 200);
    let removal = check::set_cookie(&destroyed).expect("logout removes the cookie");
    check::removal_cookie(&removal, &expected);
});

/// Configurations `build` accepts although no cookie can carry them
/// (reported in fuzz/README.md, "Known issues"); skipped so that CI fails
/// only on new findings. Remove each case once `build` refuses it.
fn known_issue(settings: &FuzzConfig) -> bool {
    // "." or "..example.com": less the leading dot RFC 6265 ignores, the
    // Domain is empty or starts with a dot, so it cannot be sent as set.
    let bad_domain = settings.domain.as_deref().is_some_and(|domain| {
        let domain = domain.strip_prefix('.').unwrap_or(domain);
        domain.is_empty() || domain.starts_with('.')
    });
    // "/app ": clients trim the attribute, so the Path is "/app".
    let bad_path = settings
        .path
        .as_deref()
        .is_some_and(|path| path.ends_with(' '));
    bad_domain || bad_path
}
