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
