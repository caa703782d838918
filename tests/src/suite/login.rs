//! Login and logout: a login moves the session to a new id and nothing of it
//! is ever visible under the old one (fixation); a logout removes the session
//! and the cookie.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::routing::post;
use session_core::Timestamp;
use session_core::conformance::Harness;
use session_http::{Session, SessionConfig, SessionError, SessionLayer};
use tokio::sync::oneshot;

use super::races::request_during;
use super::{app, assert_service_unavailable, custom, key_of};
use crate::COOKIE;
use crate::app::{call, get_request, post_request};
use crate::probe::{Fault, Op, ProbeStorage};

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_login {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            login_moves_the_session_to_a_new_id,
            logout_removes_the_session_and_the_cookie,
            id_collisions_are_retried,
            a_login_is_never_written_under_the_old_id,
            a_login_races_requests_on_the_old_id,
            a_login_can_start_from_a_clean_record,
        );
    };
}

/// A login is one `cycle`: the data moves to the new id and the old id loads nothing.
pub async fn login_moves_the_session_to_a_new_id(harness: &dyn Harness) {
    let app = app(harness);
    let before = app.session_with("cart").await;
    let login = app
        .call(post_request("/login?user=ada", Some(&before)))
        .await;
    assert_eq!(login.body, "welcome ada");
    let after = login.cookie_pair(COOKIE).unwrap();
    assert_ne!(after, before);
    assert_eq!(app.probe.calls(Op::Cycle), 1);

    let keys = app.call(get_request("/names", Some(&after))).await;
    assert_eq!(keys.body, "cart,user");
    let stale = app.call(get_request("/whoami", Some(&before))).await;
    assert_eq!(stale.body, "anonymous");
    assert!(stale.set_cookies().is_empty());
    let storage = harness.storage();
    assert!(
        storage
            .load(&key_of(&before), Timestamp::now())
            .await
            .unwrap()
            .is_none()
    );
}

/// A logout deletes the record and sends one removal cookie; replaying the old cookie is anonymous.
pub async fn logout_removes_the_session_and_the_cookie(harness: &dyn Harness) {
    let app = app(harness);
    let login = app.call(post_request("/login?user=ada", None)).await;
    let pair = login.cookie_pair(COOKIE).unwrap();
    let logout = app.call(post_request("/logout", Some(&pair))).await;
    assert_eq!(logout.body, "bye");
    let cookies = logout.set_cookies();
    assert_eq!(cookies.len(), 1);
    assert!(
        cookies[0]
            .starts_with("__Host-id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires="),
        "{cookies:?}"
    );
    assert!(!harness.raw_exists(&key_of(&pair)).await.unwrap());
    let replay = app.call(get_request("/whoami", Some(&pair))).await;
    assert_eq!(replay.body, "anonymous");
    assert!(replay.set_cookies().is_empty());
    // Logging out with the dead cookie still tells the browser to drop it;
    // without a session cookie there is nothing to remove.
    let again = app.call(post_request("/logout", Some(&pair))).await;
    let removal = again.set_cookies();
    assert_eq!(removal.len(), 1);
    assert!(
        removal[0].starts_with("__Host-id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0;")
    );
    assert!(
        app.call(post_request("/logout", None))
            .await
            .set_cookies()
            .is_empty()
    );
}

/// An id collision on create or on cycle draws another id: the request succeeds, on a new id.
pub async fn id_collisions_are_retried(harness: &dyn Harness) {
    let app = app(harness);
    app.probe.collide_next(Op::Create, 1);
    let created = app.call(post_request("/set/x", None)).await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    let pair = created.cookie_pair(COOKIE).unwrap();
    assert_eq!(app.probe.calls(Op::Create), 2);
    assert_eq!(app.call(get_request("/names", Some(&pair))).await.body, "x");

    app.probe.collide_next(Op::Cycle, 1);
    let login = app.call(post_request("/login?user=ada", Some(&pair))).await;
    assert_eq!(login.body, "welcome ada", "{login:?}");
    assert_eq!(app.probe.calls(Op::Cycle), 2);
    let after = login.cookie_pair(COOKIE).unwrap();
    assert_ne!(after, pair);
    assert_eq!(
        app.call(get_request("/whoami", Some(&after))).await.body,
        "ada"
    );
}

/// A login handler's steps: cycle the id, then a deferred insert and an
/// immediate update, so both kinds of write follow the cycle.
async fn log_in(session: &Session) -> Result<(), SessionError> {
    session.cycle_id().await?;
    session.insert("user", "ada").await?;
    session
        .update("logins", |n: Option<i64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(())
}

/// Whether anything stored under the id of `pair`, live or not, holds a
/// value the login wrote.
async fn login_under(harness: &dyn Harness, pair: &str) -> bool {
    let key = key_of(pair);
    let raw = harness.read_raw(&key).await.unwrap().unwrap_or_default();
    let holds = |name: &[u8]| raw.windows(name.len()).any(|window| window == name);
    let loaded = harness.storage().load(&key, Timestamp::now()).await;
    let live_with_login = loaded
        .unwrap()
        .is_some_and(|record| record.data.contains("user") || record.data.contains("logins"));
    // Names, not the value "ada": hex (Redis keeps write tokens and sealed
    // keys in hex beside the data) holds "ada" by chance, never "user".
    live_with_login || holds(b"logins") || holds(b"user")
}

/// Fixation: once `cycle_id` was called, nothing the request writes is ever
/// visible under the old id, whether the handler then answers 5xx, the
/// cycle fails, or the client goes away after the update.
pub async fn a_login_is_never_written_under_the_old_id(harness: &dyn Harness) {
    let (updated, updated_rx) = oneshot::channel::<()>();
    let updated = Arc::new(Mutex::new(Some(updated)));
    let hangs = move |session: Session| {
        let updated = updated.clone();
        async move {
            log_in(&session).await.unwrap();
            let _ = updated.lock().unwrap().take().unwrap().send(());
            std::future::pending::<&str>().await
        }
    };
    let probe = ProbeStorage::new(harness.storage());
    let router = crate::app::routes()
        .route(
            "/login-fails",
            post(|session: Session| async move {
                let logged_in = log_in(&session).await;
                let status = StatusCode::INTERNAL_SERVER_ERROR;
                (status, format!("{logged_in:?}"))
            }),
        )
        .route("/login-hangs", post(hangs))
        .layer(SessionLayer::from_arc(probe.clone()));
    let planted = || async {
        call(&router, post_request("/set/cart", None))
            .await
            .cookie_pair(COOKIE)
            .unwrap()
    };

    // A 5xx after the update: the cycle happened, the new cookie goes out.
    let old = planted().await;
    let reply = call(&router, post_request("/login-fails", Some(&old))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !login_under(harness, &old).await,
        "5xx: the login is in the old id"
    );
    let new = reply
        .cookie_pair(COOKIE)
        .expect("the new id's cookie, even on a 5xx");
    assert_ne!(new, old);
    assert_eq!(
        call(&router, get_request("/names", Some(&new))).await.body,
        "cart,logins,user",
        "the update wrote itself and the changes before it, under the new id"
    );

    // A failing cycle: the old session is as it was, nothing more written.
    let old = planted().await;
    probe.set_fault(Op::Cycle, Some(Fault::Fail));
    let reply = call(&router, post_request("/login-fails", Some(&old))).await;
    probe.set_fault(Op::Cycle, None);
    assert_service_unavailable(&reply);
    assert!(
        !login_under(harness, &old).await,
        "failed cycle: the login is in the old id"
    );
    assert_eq!(
        call(&router, get_request("/names", Some(&old))).await.body,
        "cart"
    );

    // The client goes away after the update: the response future is dropped.
    let old = planted().await;
    let request = {
        let (router, old) = (router.clone(), old.clone());
        tokio::spawn(async move { call(&router, post_request("/login-hangs", Some(&old))).await })
    };
    updated_rx.await.unwrap();
    request.abort();
    assert!(request.await.unwrap_err().is_cancelled());
    assert!(
        !login_under(harness, &old).await,
        "dropped: the login is in the old id"
    );
    assert_eq!(
        call(&router, get_request("/names", Some(&old))).await.body,
        ""
    );
}

/// A request on the old id while a login is in flight: once `cycle_id` has
/// returned, the old id loads nothing (the other request starts afresh);
/// a request that loaded the old id before writes nothing after it.
pub async fn a_login_races_requests_on_the_old_id(harness: &dyn Harness) {
    let storage = harness.storage();
    let old_is_dead = |pair: String| {
        let storage = storage.clone();
        async move {
            let loaded = storage.load(&key_of(&pair), Timestamp::now()).await;
            loaded.unwrap().is_none()
        }
    };

    // The login has cycled and is still running when `/incr` arrives.
    let race = request_during(harness, "/set/cart", "/incr", |session, pause| async move {
        session.cycle_id().await.unwrap();
        pause.wait().await;
        session.insert("user", "ada").await.unwrap();
        "logged in".to_owned()
    })
    .await;
    assert_eq!(race.slow.body, "logged in");
    let fresh = race.interlude.cookie_pair(COOKIE);
    assert!(
        fresh.as_ref().is_some_and(|fresh| *fresh != race.pair),
        "the old id still loaded after cycle_id returned: {:?}",
        race.interlude
    );
    assert!(old_is_dead(race.pair.clone()).await);
    let logged_in = race.slow.cookie_pair(COOKIE).unwrap();
    let keys = call(
        &crate::app::router(SessionLayer::from_arc(storage.clone())),
        get_request("/names", Some(&logged_in)),
    )
    .await;
    assert_eq!(keys.body, "cart,user");

    // A request that loaded the old id before the login writes after it.
    let race = request_during(
        harness,
        "/set/cart",
        "/login?user=ada",
        |session, pause| async move {
            session.get::<i64>("cart").await.unwrap();
            pause.wait().await;
            let late = session
                .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
                .await;
            format!("{late:?}")
        },
    )
    .await;
    assert_eq!(race.slow.body, "Err(Gone)");
    assert!(race.slow.set_cookies().is_empty());
    assert!(old_is_dead(race.pair.clone()).await);
    let logged_in = race.interlude.cookie_pair(COOKIE).unwrap();
    let keys = call(
        &crate::app::router(SessionLayer::from_arc(storage.clone())),
        get_request("/names", Some(&logged_in)),
    )
    .await;
    assert_eq!(keys.body, "cart,user");
}

/// Cookie tossing: a login can start from a clean record, so values an
/// attacker planted in the session before login (a CSRF token, a
/// `return_to`) do not survive it; the keys the application names do.
pub async fn a_login_can_start_from_a_clean_record(harness: &dyn Harness) {
    let (router, _probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/login-clean",
        post(|session: Session| async move {
            session.cycle_id_keeping(&["cart", "absent"]).await.unwrap();
            session.insert("user", "ada").await.unwrap();
            "welcome"
        }),
    );
    let planted = call(&router, post_request("/set/csrf", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    for key in ["return_to", "cart"] {
        call(
            &router,
            post_request(&format!("/set/{key}"), Some(&planted)),
        )
        .await;
    }
    let login = call(&router, post_request("/login-clean", Some(&planted))).await;
    let logged_in = login.cookie_pair(COOKIE).unwrap();
    assert_ne!(logged_in, planted);
    assert_eq!(
        call(&router, get_request("/names", Some(&logged_in)))
            .await
            .body,
        "cart,user"
    );
    assert_eq!(
        call(&router, get_request("/names", Some(&planted)))
            .await
            .body,
        ""
    );
}
