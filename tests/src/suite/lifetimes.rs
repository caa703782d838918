//! A session's own lifetime on the fake clock: remember me (a persistent
//! cookie that follows its deadline), the cookie's kind following the
//! lifetime, own timeouts within the layer's bounds, and the absolute
//! deadline that only a login lengthens.

use std::time::Duration;

use session_core::Timestamp;
use session_core::conformance::Harness;
use session_http::SessionConfig;

use crate::COOKIE;
use crate::app::{Reply, TestApp, get_request, post_request};
use crate::app_lifetimes::{REMEMBER_ABSOLUTE, REMEMBER_IDLE};
use crate::probe::Op;

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_lifetimes {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            remember_me_keeps_a_persistent_cookie_on_its_deadline,
            the_cookie_kind_follows_the_lifetime,
            own_timeouts_stay_within_the_layers_bounds,
            a_login_restarts_the_absolute_deadline_from_the_own_timeout,
            a_shorter_own_timeout_ends_the_session_sooner,
        );
    };
}

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);
const SECOND: Duration = Duration::from_secs(1);

/// The layer: 20 minutes idle, 2 hours at most, browser-session cookies;
/// a session may choose up to [`REMEMBER_IDLE`] and [`REMEMBER_ABSOLUTE`].
fn lifetime_app(harness: &dyn Harness) -> TestApp {
    let config = SessionConfig::builder()
        .idle_timeout(20 * MINUTE)
        .absolute_timeout(120 * MINUTE)
        .max_idle_timeout(REMEMBER_IDLE)
        .max_absolute_timeout(REMEMBER_ABSOLUTE);
    TestApp::new(harness.storage(), config)
}

/// The one `Set-Cookie` of `reply`, with the attributes every session
/// cookie of the layer has, and the `Max-Age` it carries if any.
fn cookie_of(reply: &Reply) -> (String, Option<u64>) {
    let cookies = reply.set_cookies();
    assert_eq!(cookies.len(), 1, "{reply:?}");
    let pair = reply.cookie_pair(COOKIE).unwrap();
    let attributes = format!("{pair}; HttpOnly; SameSite=Lax; Secure; Path=/");
    let rest = cookies[0].strip_prefix(&attributes).unwrap_or_else(|| {
        panic!("{:?} does not start with {attributes:?}", cookies[0]);
    });
    let max_age = (!rest.is_empty()).then(|| {
        let seconds = rest
            .strip_prefix("; Max-Age=")
            .expect("only a Max-Age after");
        seconds.parse().unwrap()
    });
    (pair, max_age)
}

/// What `/read` answers for `pair` at `now`.
async fn read_at(app: &TestApp, pair: &str, now: Timestamp) -> String {
    app.clock.set(now);
    app.call(get_request("/read", Some(pair))).await.body
}

/// Who `pair`'s session is logged in as, at the app's time.
async fn whoami(app: &TestApp, pair: &str) -> Reply {
    app.call(get_request("/whoami", Some(pair))).await
}

/// Remember me: the cookie is persistent with `Max-Age` to the session's
/// own idle deadline, not sent again by requests that move nothing, sent
/// again with each touch or write that moves the deadline, and the session
/// lives by its own timeouts (a month idle, two months at most) where the
/// layer's would have ended it in 20 minutes. A login without remember me
/// on the same layer keeps a browser-session cookie.
pub async fn remember_me_keeps_a_persistent_cookie_on_its_deadline(harness: &dyn Harness) {
    let app = lifetime_app(harness);
    let start = app.clock.now();
    let at = |elapsed: Duration| start.saturating_add(elapsed);
    let login = (app.call(post_request("/lifetime/login?user=ada&remember=1", None))).await;
    let (pair, max_age) = cookie_of(&login);
    assert_eq!(max_age, Some(REMEMBER_IDLE.as_secs()));

    // A day later, long past the layer's idle timeout: live, and no touch
    // is due yet (a quarter of a month has not passed), so no cookie.
    app.clock.set(at(DAY));
    let read = whoami(&app, &pair).await;
    assert_eq!(read.body, "ada");
    assert!(read.set_cookies().is_empty(), "{read:?}");
    assert_eq!(app.probe.calls(Op::Touch), 0);
    // Eight days after login a touch is due: the cookie follows it.
    app.clock.set(at(8 * DAY));
    let touched = whoami(&app, &pair).await;
    assert_eq!(app.probe.calls(Op::Touch), 1);
    assert_eq!(
        cookie_of(&touched),
        (pair.clone(), Some(REMEMBER_IDLE.as_secs()))
    );
    // A write moves the deadline too.
    app.clock.set(at(8 * DAY + MINUTE));
    let written = app.call(post_request("/set/n", Some(&pair))).await;
    assert_eq!(
        cookie_of(&written),
        (pair.clone(), Some(REMEMBER_IDLE.as_secs()))
    );

    // A month idle less a second: live; its deadline is then capped by the
    // absolute one, two months after login, and the cookie says so.
    let late = 38 * DAY + MINUTE - SECOND;
    app.clock.set(at(late));
    let capped = whoami(&app, &pair).await;
    assert_eq!(capped.body, "ada");
    let left = (REMEMBER_ABSOLUTE - late).as_secs();
    assert_eq!(cookie_of(&capped), (pair.clone(), Some(left)));
    app.clock.set(at(REMEMBER_ABSOLUTE - SECOND));
    assert_eq!(whoami(&app, &pair).await.body, "ada");
    app.clock.set(at(REMEMBER_ABSOLUTE));
    let ended = whoami(&app, &pair).await;
    assert_eq!(ended.body, "anonymous");
    assert!(ended.set_cookies().is_empty());

    // Without remember me: a browser-session cookie, never sent again,
    // and the layer's 20 minutes.
    let start = app.clock.now();
    let plain = (app.call(post_request("/lifetime/login?user=bob", None))).await;
    let (pair, max_age) = cookie_of(&plain);
    assert_eq!(max_age, None);
    app.clock.set(start.saturating_add(MINUTE));
    let written = app.call(post_request("/set/n", Some(&pair))).await;
    assert!(written.set_cookies().is_empty(), "{written:?}");
    app.clock.set(start.saturating_add(21 * MINUTE));
    assert_eq!(whoami(&app, &pair).await.body, "anonymous");
}

/// Changing the lifetime sends the cookie again in its new kind: without
/// `Max-Age` once it is a browser-session cookie (and not again when its
/// deadline moves), with it once it is persistent again; the choice
/// survives later requests and an id change, and an empty lifetime is the
/// layer's defaults again.
pub async fn the_cookie_kind_follows_the_lifetime(harness: &dyn Harness) {
    let app = lifetime_app(harness);
    let login = (app.call(post_request("/lifetime/login?user=ada&remember=1", None))).await;
    let (pair, _) = cookie_of(&login);
    let forget = (app.call(post_request("/lifetime/set?persistent=0", Some(&pair)))).await;
    assert_eq!(cookie_of(&forget), (pair.clone(), None));
    let lifetime = app.call(get_request("/lifetime", Some(&pair))).await;
    assert_eq!(lifetime.body, "persistent=0 idle=- absolute=-");
    app.clock.advance(MINUTE);
    let written = app.call(post_request("/set/n", Some(&pair))).await;
    assert!(written.set_cookies().is_empty(), "{written:?}");

    let remember = (app.call(post_request("/lifetime/set?persistent=1", Some(&pair)))).await;
    assert_eq!(cookie_of(&remember), (pair.clone(), Some(20 * 60)));
    // An id change keeps the lifetime: the new cookie is persistent.
    let cycled = app.call(post_request("/login?user=ada", Some(&pair))).await;
    let (new_pair, max_age) = cookie_of(&cycled);
    assert_ne!(new_pair, pair);
    assert_eq!(max_age, Some(20 * 60));
    let lifetime = app.call(get_request("/lifetime", Some(&new_pair))).await;
    assert_eq!(lifetime.body, "persistent=1 idle=- absolute=-");

    let reset = app
        .call(post_request("/lifetime/set", Some(&new_pair)))
        .await;
    assert_eq!(cookie_of(&reset), (new_pair.clone(), None));
    let lifetime = app.call(get_request("/lifetime", Some(&new_pair))).await;
    assert_eq!(lifetime.body, "persistent=- idle=- absolute=-");
}

/// Timeouts longer than the layer's bounds are cut to them, and a longer
/// absolute timeout chosen outside a login does not lengthen the session:
/// it still ends at the absolute deadline it had, however long its own
/// idle timeout.
pub async fn own_timeouts_stay_within_the_layers_bounds(harness: &dyn Harness) {
    let app = lifetime_app(harness);
    let start = app.clock.now();
    let pair = app.session_with("n").await;
    let huge = "/lifetime/set?idle=999999999&absolute=999999999";
    app.call(post_request(huge, Some(&pair))).await;
    let lifetime = app.call(get_request("/lifetime", Some(&pair))).await;
    let bounded = format!(
        "persistent=- idle={} absolute={}",
        REMEMBER_IDLE.as_secs(),
        REMEMBER_ABSOLUTE.as_secs()
    );
    assert_eq!(lifetime.body, bounded);
    // An hour idle is nothing to a month-long idle timeout, but the
    // absolute deadline stays two hours after creation.
    app.clock.set(start.saturating_add(119 * MINUTE));
    assert_eq!(
        app.call(get_request("/read", Some(&pair))).await.body,
        "n=1"
    );
    app.clock.set(start.saturating_add(120 * MINUTE));
    assert_eq!(
        app.call(get_request("/read", Some(&pair))).await.body,
        "n=none"
    );
}

/// A login restarts the absolute deadline from the session's own absolute
/// timeout, chosen in an earlier request, and moves the idle one by its
/// own idle timeout.
pub async fn a_login_restarts_the_absolute_deadline_from_the_own_timeout(harness: &dyn Harness) {
    let app = lifetime_app(harness);
    let pair = app.session_with("n").await;
    let long = format!(
        "/lifetime/set?idle={}&absolute={}",
        REMEMBER_IDLE.as_secs(),
        REMEMBER_ABSOLUTE.as_secs()
    );
    app.call(post_request(&long, Some(&pair))).await;
    let start = app.clock.now();
    let login = app
        .call(post_request("/lifetime/login?user=ada", Some(&pair)))
        .await;
    let (pair, max_age) = cookie_of(&login);
    assert_eq!(max_age, None, "the layer's browser-session cookie");
    for days in [25, 50] {
        app.clock.set(start.saturating_add(days * DAY));
        assert_eq!(whoami(&app, &pair).await.body, "ada", "day {days}");
    }
    app.clock
        .set(start.saturating_add(REMEMBER_ABSOLUTE - SECOND));
    assert_eq!(whoami(&app, &pair).await.body, "ada");
    app.clock.set(start.saturating_add(REMEMBER_ABSOLUTE));
    assert_eq!(whoami(&app, &pair).await.body, "anonymous");
}

/// A session with shorter own timeouts (an admin area: 5 minutes idle, 15
/// at most) ends by them, to the second; choosing a longer absolute
/// timeout afterwards does not bring it back from its deadline.
pub async fn a_shorter_own_timeout_ends_the_session_sooner(harness: &dyn Harness) {
    let app = lifetime_app(harness);
    let start = app.clock.now();
    let at = |seconds: u64| start.saturating_add(Duration::from_secs(seconds));
    let short = "/lifetime/set?idle=300&absolute=900";
    let (kept, idle) = (app.session_with("n").await, app.session_with("n").await);
    for pair in [&kept, &idle] {
        app.call(post_request(short, Some(pair))).await;
    }
    assert_eq!(read_at(&app, &kept, at(290)).await, "n=1");
    assert_eq!(
        read_at(&app, &idle, at(300)).await,
        "n=none",
        "5 minutes idle"
    );
    assert_eq!(read_at(&app, &kept, at(580)).await, "n=1");
    app.clock.set(at(600));
    let longer = "/lifetime/set?idle=300&absolute=3600";
    app.call(post_request(longer, Some(&kept))).await;
    assert_eq!(read_at(&app, &kept, at(899)).await, "n=1");
    assert_eq!(
        read_at(&app, &kept, at(900)).await,
        "n=none",
        "15 minutes at most"
    );
}
