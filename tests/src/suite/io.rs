//! When the store is called: lazily, once per request, each write when the
//! documentation says, and never after the response.

use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use session_core::conformance::Harness;
use session_core::{SessionId, SessionStorage, Timestamp};
use session_http::{Session, SessionConfig, SessionError, SessionLayer};
use tokio::sync::oneshot;

use super::{app, custom};
use crate::COOKIE;
use crate::app::{call, get_request, post_request};
use crate::probe::Op;

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_io {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            the_session_loads_lazily_and_once,
            a_read_only_request_writes_nothing,
            io_happens_when_the_table_says,
            calls_after_the_response_are_closed,
            the_handler_sees_its_own_writes,
        );
    };
}

/// A handler that ignores the session costs no store call and no `Vary`; three reads, one load.
pub async fn the_session_loads_lazily_and_once(harness: &dyn Harness) {
    let app = app(harness);
    let pair = app.session_with("n").await;
    app.probe.reset();
    let untouched = app.call(get_request("/untouched", Some(&pair))).await;
    assert_eq!(untouched.body, "untouched");
    assert_eq!(app.probe.total_calls(), 0);
    assert_eq!(untouched.header("vary"), None);

    app.call(get_request("/read3", Some(&pair))).await;
    assert_eq!(app.probe.calls(Op::Load), 1);
    assert_eq!(app.probe.total_calls(), 1);
}

/// A read-only request: one load, no write, no cookie, `Vary: Cookie` without `no-store`.
pub async fn a_read_only_request_writes_nothing(harness: &dyn Harness) {
    let app = app(harness);
    let pair = app.session_with("n").await;
    app.probe.reset();
    let read = app.call(get_request("/read", Some(&pair))).await;
    assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "n=1"));
    assert!(read.set_cookies().is_empty());
    assert_eq!((app.probe.calls(Op::Load), app.probe.writes()), (1, 0));
    assert_eq!(read.header("vary"), Some("cookie"));
    assert_eq!(read.header("cache-control"), None);
}

/// The value of `x` in the stored session of `id`, right now.
async fn stored_x(storage: &dyn SessionStorage, id: &SessionId) -> Option<i64> {
    let record = storage.load(&id.key(), Timestamp::now()).await.unwrap()?;
    record.data.get("x").unwrap()
}

/// Writes land when documented: `insert` at the end, `update` on return, `cycle_id`/`destroy` now.
pub async fn io_happens_when_the_table_says(harness: &dyn Harness) {
    let storage = harness.storage();
    let observed: Arc<Mutex<Vec<String>>> = Arc::default();
    let watch = |what: &'static str| {
        let (storage, observed) = (storage.clone(), observed.clone());
        post(move |session: Session| async move {
            let id = session.id().await.unwrap().unwrap();
            let before = stored_x(&*storage, &id).await;
            match what {
                "insert" => session.insert("x", &5).await.unwrap(),
                "update" => {
                    session
                        .update("x", |n: Option<i64>| n.unwrap_or(0) + 1)
                        .await
                        .unwrap();
                }
                "cycle" => session.cycle_id().await.unwrap(),
                _ => session.destroy().await.unwrap(),
            }
            let after = stored_x(&*storage, &id).await;
            observed
                .lock()
                .unwrap()
                .push(format!("{what}: {before:?} -> {after:?}"));
            "done"
        })
    };
    let router = crate::app::routes()
        .route("/io/insert", watch("insert"))
        .route("/io/update", watch("update"))
        .route("/io/cycle", watch("cycle"))
        .route("/io/destroy", watch("destroy"))
        .layer(SessionLayer::from_arc(storage.clone()));
    let pair = call(&router, post_request("/set/x", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    for step in ["insert", "update", "cycle"] {
        call(&router, post_request(&format!("/io/{step}"), Some(&pair))).await;
    }
    let cycled = call(&router, get_request("/names", Some(&pair))).await;
    assert_eq!(
        cycled.body, "",
        "the old id stopped working when the cycle returned"
    );
    let observed_cycle = observed.lock().unwrap().len();
    assert_eq!(observed_cycle, 3);
    let _ = cycled;

    assert_eq!(
        observed.lock().unwrap()[..],
        [
            "insert: Some(1) -> Some(1)", // deferred to the end of the request
            "update: Some(5) -> Some(6)", // written when it returns
            "cycle: Some(6) -> None",     // now: the old id is dead when it returns
        ]
    );
    let login = call(&router, post_request("/login?user=ada", None))
        .await
        .cookie_pair(COOKIE)
        .unwrap();
    call(&router, post_request("/set/x", Some(&login))).await;
    call(&router, post_request("/io/destroy", Some(&login))).await;
    assert_eq!(
        observed.lock().unwrap()[3],
        "destroy: Some(1) -> None",
        "destroy deletes at once"
    );
}

/// A session handle used after the response was sent answers `Closed` and writes nothing.
pub async fn calls_after_the_response_are_closed(harness: &dyn Harness) {
    let (go, wait) = oneshot::channel::<()>();
    let (report, result) = oneshot::channel::<(bool, bool)>();
    let slot = Arc::new(Mutex::new(Some((wait, report))));
    let handler = move |session: Session| {
        let slot = slot.clone();
        async move {
            let (wait, report) = slot.lock().unwrap().take().unwrap();
            tokio::spawn(async move {
                let _ = wait.await;
                let inserted = session.insert("late", &1).await;
                let read = session.get::<i64>("late").await;
                let _ = report.send((
                    matches!(inserted, Err(SessionError::Closed)),
                    matches!(read, Err(SessionError::Closed)),
                ));
            });
            "spawned"
        }
    };
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/spawn",
        get(handler),
    );
    let reply = call(&router, get_request("/spawn", None)).await;
    assert_eq!(reply.body, "spawned");
    go.send(()).unwrap();
    assert_eq!(result.await.unwrap(), (true, true));
    assert_eq!(probe.writes(), 0);
}

/// After an `update`, the handler's next step: what it then sees, and what
/// the request writes.
pub async fn the_handler_sees_its_own_writes(harness: &dyn Harness) {
    let handler = |session: Session, Path(next): Path<String>| async move {
        session.insert("a", &1).await?;
        let n = session
            .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
            .await?;
        match next.as_str() {
            "cycle" => session.cycle_id().await?,
            "destroy" => session.destroy().await?,
            "clear" => session.clear().await?,
            _ => {}
        }
        let seen: Option<i64> = session.get("n").await?;
        let keys = session.names().await?.join(",");
        Ok::<_, SessionError>(format!("{n} {seen:?} [{keys}]"))
    };
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/then/{next}",
        post(handler),
    );
    // Writes per operation: create, update, touch, cycle, delete.
    let table: [(bool, &str, &str, usize, [usize; 5]); 6] = [
        (false, "read", "1 Some(1) [a,n]", 1, [1, 0, 0, 0, 0]),
        // A session the browser does not know yet needs no new id.
        (false, "cycle", "1 Some(1) [a,n]", 1, [1, 0, 0, 0, 0]),
        // Nor any removal cookie: the browser never had one.
        (false, "destroy", "1 None []", 0, [1, 0, 0, 0, 1]),
        (true, "read", "1 Some(1) [a,n,x]", 0, [0, 1, 0, 0, 0]),
        (true, "cycle", "1 Some(1) [a,n,x]", 1, [0, 1, 0, 1, 0]),
        (true, "clear", "1 None []", 0, [0, 2, 0, 0, 0]),
    ];
    for (existing, next, body, cookies, writes) in table {
        let pair = if existing {
            call(&router, post_request("/set/x", None))
                .await
                .cookie_pair(COOKIE)
        } else {
            None
        };
        probe.reset();
        let reply = call(
            &router,
            post_request(&format!("/then/{next}"), pair.as_deref()),
        )
        .await;
        let label = format!("{next} (existing session: {existing})");
        assert_eq!(reply.body, body, "{label}");
        assert_eq!(reply.set_cookies().len(), cookies, "{label}: {reply:?}");
        let calls =
            [Op::Create, Op::Update, Op::Touch, Op::Cycle, Op::Delete].map(|op| probe.calls(op));
        assert_eq!(calls, writes, "{label}");
    }
}
