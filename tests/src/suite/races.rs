//! Concurrency and races: many requests on one session keep every write,
//! and a request that lands while another is between its reads and its
//! writes, deterministically.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, post};
use session_core::Timestamp;
use session_core::conformance::Harness;
use session_http::{Session, SessionConfig, SessionLayer};
use tokio::sync::{Barrier, oneshot};
use tokio::task::JoinHandle;

use super::{custom, key_of, routed};
use crate::COOKIE;
use crate::app::{Reply, call, get_request, post_request};
use crate::probe::{Op, ProbeStorage};

/// This file's tests, for [`http_suite!`](crate::http_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __http_suite_races {
    ($mode:ident $factory:expr) => {
        $crate::__http_suite!($mode $factory;
            concurrent_requests_keep_every_key,
            concurrent_increments_are_exact,
            many_concurrent_increments_take_turns,
            queued_updates_start_from_the_record_before_them,
            a_deferred_write_beside_another_gives_no_stale_copy,
            a_write_during_a_load_leaves_the_loader_its_record,
            logout_wins_over_a_slow_request,
            an_update_after_a_concurrent_logout_ends_the_session,
            a_write_between_load_and_update_is_kept,
        );
    };
}

/// 100 concurrent requests on one session, each setting its own key: every key survives.
pub async fn concurrent_requests_keep_every_key(harness: &dyn Harness) {
    const REQUESTS: usize = 100;
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/write/{index}",
        own_value_writes(REQUESTS),
    );
    let pair = session_from(&router, "/set/base").await;
    let paths: Vec<_> = (0..REQUESTS)
        .map(|index| format!("/write/{index}"))
        .collect();
    all_ok(send_all(std::slice::from_ref(&router), &pair, &paths)).await;
    let keys = call(&router, get_request("/names", Some(&pair))).await.body;
    assert_eq!(keys.split(',').count(), REQUESTS + 1, "{keys}");
    assert_eq!(probe.calls(Op::Update), REQUESTS);
}

/// `POST /count` for `requests` concurrent requests: each loads the
/// session, waits until every one has loaded, then increments `n` with
/// `update`. Its clones share the wait, so it may serve several layers.
fn increment_updates(requests: usize) -> MethodRouter {
    let barrier = Arc::new(Barrier::new(requests));
    post(move |session: Session| {
        let barrier = barrier.clone();
        async move {
            let loaded = session.get::<i64>("n").await;
            barrier.wait().await;
            loaded?;
            session
                .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
                .await
                .map(|n| n.to_string())
        }
    })
}

/// `POST /write/{index}` for `requests` concurrent requests: each loads the
/// session, waits until every one has loaded, then sets `k{index}` (written
/// at the end of the request).
fn own_value_writes(requests: usize) -> MethodRouter {
    let barrier = Arc::new(Barrier::new(requests));
    post(move |session: Session, Path(index): Path<usize>| {
        let barrier = barrier.clone();
        async move {
            let loaded = session.names().await.map(|_| ());
            barrier.wait().await;
            loaded?;
            session
                .insert(&format!("k{index}"), &index)
                .await
                .map(|()| "ok")
        }
    })
}

/// Four concurrent `update` increments of one counter, each through a
/// layer of its own (as four processes would, which take no turns with
/// each other), end at exactly four, through conflicts: all loaded before
/// any wrote, so every one but the first conflicts at least once.
pub async fn concurrent_increments_are_exact(harness: &dyn Harness) {
    let probe = increments(harness, 4, 4, SessionConfig::default()).await;
    let conflicts = probe.conflicts();
    assert!(conflicts >= 3, "only {conflicts} conflicts");
}

/// 64 concurrent `update` increments of one counter, every request loaded
/// before any writes, with only 2 attempts each: requests of one layer
/// take turns, so none gives up and the counter ends at exactly 64.
/// (Racing each other, all but a few would answer `Contended`: every one
/// after the first conflicts once, and all their retries expect the same
/// value.)
pub async fn many_concurrent_increments_take_turns(harness: &dyn Harness) {
    const REQUESTS: usize = 64;
    let config = SessionConfig::builder().update_attempts(2).build().unwrap();
    let probe = increments(harness, REQUESTS, 1, config).await;
    // Each request conflicted at most once, on the value it loaded; the
    // first to write, not at all.
    let conflicts = probe.conflicts();
    assert!(conflicts < REQUESTS, "{conflicts} conflicts");
    assert_eq!(probe.calls(Op::Update), REQUESTS + conflicts);
}

/// Three `update` increments of one layer, all loaded before any wrote.
/// The first one's write is held until the other two wait for their
/// turns; then each writes from the record the one before it wrote, not
/// from the stale one it loaded: no store is given a stale record, and
/// nothing conflicts.
pub async fn queued_updates_start_from_the_record_before_them(harness: &dyn Harness) {
    const REQUESTS: usize = 3;
    let probe = ProbeStorage::new(harness.storage());
    let layer = SessionLayer::from_arc(probe.clone());
    let router = routed(layer.clone(), "/count", increment_updates(REQUESTS));
    let pair = session_from(&router, "/set/x").await;
    probe.check_hints();
    let release = probe.hold_next_update();
    let sent = send_all(&[router], &pair, &vec!["/count".to_owned(); REQUESTS]);
    probe.until_held().await;
    while layer.in_turns() < REQUESTS {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    let mut answers: Vec<_> = all_ok(sent)
        .await
        .into_iter()
        .map(|reply| reply.body)
        .collect();
    answers.sort_unstable();
    assert_eq!(answers, ["1", "2", "3"]);
    assert_eq!(probe.calls(Op::Update), REQUESTS);
    assert_eq!(probe.conflicts(), 0);
    assert_eq!(
        probe.stale_hints(),
        0,
        "a queued update started from its stale copy"
    );
}

/// Two requests of one layer, each setting its own value at its end, both
/// loaded before either wrote. While the first one's write is held, the
/// second writes beside it (deferred changes carry no conditions, so take
/// no turn) and, knowing its copy likely stale, gives the store none.
pub async fn a_deferred_write_beside_another_gives_no_stale_copy(harness: &dyn Harness) {
    let probe = ProbeStorage::new(harness.storage());
    let layer = SessionLayer::from_arc(probe.clone());
    let router = routed(layer, "/write/{index}", own_value_writes(2));
    let pair = session_from(&router, "/set/base").await;
    probe.reset();
    let release = probe.hold_next_update();
    let paths = ["/write/0".to_owned(), "/write/1".to_owned()];
    let sent = send_all(std::slice::from_ref(&router), &pair, &paths);
    probe.until_held().await;
    while probe.calls(Op::Update) < 2 {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    all_ok(sent).await;
    let names = call(&router, get_request("/names", Some(&pair))).await.body;
    assert_eq!(names.split(',').count(), 3, "{names}");
    assert_eq!(
        probe.hinted(),
        1,
        "the write beside the held one had a copy"
    );
}

/// A request whose load has read the session but not yet returned (held)
/// while another request of the layer increments it: the first one's
/// copy is stale by then, and its own increment starts from the record
/// the other wrote instead, so the store sees no stale copy and no
/// conflict.
pub async fn a_write_during_a_load_leaves_the_loader_its_record(harness: &dyn Harness) {
    let probe = ProbeStorage::new(harness.storage());
    let increment = post(|session: Session| async move {
        let n = session.update("n", |n: Option<i64>| n.unwrap_or(0) + 1);
        n.await.map(|n| n.to_string())
    });
    let router = routed(SessionLayer::from_arc(probe.clone()), "/count", increment);
    let pair = session_from(&router, "/set/x").await;
    probe.check_hints();
    let release = probe.hold_next_load();
    let slow = send_all(std::slice::from_ref(&router), &pair, &["/count".to_owned()]);
    probe.until_load_held().await;
    let fast = call(&router, post_request("/count", Some(&pair))).await;
    assert_eq!(fast.body, "1");
    release.send(()).unwrap();
    let slow = all_ok(slow).await;
    assert_eq!(slow[0].body, "2");
    assert_eq!(probe.conflicts(), 0);
    assert_eq!(
        probe.stale_hints(),
        0,
        "the held request wrote from the copy it loaded"
    );
}

/// A new session, made by a POST to `path` through `router`: its cookie.
async fn session_from(router: &Router, path: &str) -> String {
    call(router, post_request(path, None))
        .await
        .cookie_pair(COOKIE)
        .unwrap()
}

/// Sends a POST to each of `paths` with the session cookie `pair`, all at
/// once, the one at index `i` through `routers[i % routers.len()]`.
fn send_all(routers: &[Router], pair: &str, paths: &[String]) -> Vec<JoinHandle<Reply>> {
    paths
        .iter()
        .zip(routers.iter().cycle())
        .map(|(path, router)| {
            let (router, pair, path) = (router.clone(), pair.to_owned(), path.clone());
            tokio::spawn(async move { call(&router, post_request(&path, Some(&pair))).await })
        })
        .collect()
}

/// The replies to `sent`, each checked to be 200 OK.
async fn all_ok(sent: Vec<JoinHandle<Reply>>) -> Vec<Reply> {
    let mut replies = Vec::new();
    for reply in sent {
        let reply = reply.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        replies.push(reply);
    }
    replies
}

/// Sends `requests` concurrent `update` increments of one counter, every
/// request loaded before any writes, spread over `layers` layers of one
/// storage, and checks that each answered a different count and the
/// counter ends at `requests`. Returns the probe around the storage.
async fn increments(
    harness: &dyn Harness,
    requests: usize,
    layers: usize,
    config: SessionConfig,
) -> Arc<ProbeStorage> {
    let probe = ProbeStorage::new(harness.storage());
    let route = increment_updates(requests);
    let routers: Vec<_> = (0..layers)
        .map(|_| {
            let layer = SessionLayer::from_arc(probe.clone()).with_config(config.clone());
            routed(layer, "/count", route.clone())
        })
        .collect();
    let router = &routers[0];
    let pair = session_from(router, "/set/x").await;
    let sent = send_all(&routers, &pair, &vec!["/count".to_owned(); requests]);
    let mut answers: Vec<usize> = all_ok(sent)
        .await
        .iter()
        .map(|reply| reply.body.parse().unwrap())
        .collect();
    answers.sort_unstable();
    assert_eq!(answers, (1..=requests).collect::<Vec<_>>());
    assert_eq!(
        call(router, get_request("/read", Some(&pair))).await.body,
        format!("n={requests}")
    );
    probe
}

/// Where a slow handler stops until the test has logged its session out.
pub struct Pause {
    loaded: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

impl Pause {
    /// Tells the test the handler has loaded, then waits for the logout.
    pub async fn wait(self) {
        self.loaded.send(()).unwrap();
        self.release.await.unwrap();
    }
}

/// Another request that lands while a slow request is between its reads
/// and its writes, deterministically.
pub(super) struct Race {
    pub(super) slow: Reply,
    pub(super) interlude: Reply,
    pub(super) probe: Arc<ProbeStorage>,
    pub(super) pair: String,
}

/// Makes a session with `setup`, starts `slow` on it, logs the session out
/// when `slow` pauses, then lets `slow` finish.
async fn logout_during<F, Fut>(harness: &dyn Harness, setup: &str, slow: F) -> Race
where
    F: Fn(Session, Pause) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    let race = request_during(harness, setup, "/logout", slow).await;
    assert_eq!(race.interlude.body, "bye");
    race
}

/// Makes a session with `setup`, starts `slow` on it, sends `interlude`
/// (a POST) when `slow` pauses, then lets `slow` finish.
pub(super) async fn request_during<F, Fut>(
    harness: &dyn Harness,
    setup: &str,
    interlude: &str,
    slow: F,
) -> Race
where
    F: Fn(Session, Pause) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    let interlude = interlude.to_owned();
    let send = move |router: Router, pair: String| async move {
        call(&router, post_request(&interlude, Some(&pair))).await
    };
    requests_during(harness, setup, slow, send).await
}

/// Makes a session with `setup`, starts `slow` on it, runs `interlude`
/// (given the router and the slow request's cookie, so it can send
/// requests of its own, from other devices too) when `slow` pauses, then
/// lets `slow` finish.
pub(super) async fn requests_during<F, Fut, I, IFut>(
    harness: &dyn Harness,
    setup: &str,
    slow: F,
    interlude: I,
) -> Race
where
    F: Fn(Session, Pause) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
    I: FnOnce(Router, String) -> IFut,
    IFut: Future<Output = Reply>,
{
    let (loaded, loaded_rx) = oneshot::channel();
    let (release_tx, release) = oneshot::channel();
    let slot = Arc::new(Mutex::new(Some(Pause { loaded, release })));
    let handler = move |session: Session| {
        let (slot, slow) = (slot.clone(), slow.clone());
        async move {
            let pause = slot.lock().unwrap().take().unwrap();
            slow(session, pause).await
        }
    };
    let (router, probe) = custom(
        harness.storage(),
        SessionConfig::default(),
        "/slow",
        post(handler),
    );
    let pair = session_from(&router, setup).await;
    let slow_request = {
        let (router, pair) = (router.clone(), pair.clone());
        tokio::spawn(async move { call(&router, post_request("/slow", Some(&pair))).await })
    };
    loaded_rx.await.unwrap();
    let interlude = interlude(router.clone(), pair.clone()).await;
    release_tx.send(()).unwrap();
    let slow = slow_request.await.unwrap();
    Race {
        slow,
        interlude,
        probe,
        pair,
    }
}

/// A logout during a slow request wins: the slow write is `Gone`, sets no cookie, revives nothing.
pub async fn logout_wins_over_a_slow_request(harness: &dyn Harness) {
    let race = logout_during(harness, "/login?user=ada", |session, pause| async move {
        session.insert("late", &1).await.unwrap();
        pause.wait().await;
        "slow done".to_owned()
    })
    .await;
    assert_eq!(race.interlude.set_cookies().len(), 1);
    assert_eq!(race.slow.body, "slow done");
    assert!(race.slow.set_cookies().is_empty(), "{:?}", race.slow);
    assert!(
        !harness.raw_exists(&key_of(&race.pair)).await.unwrap(),
        "logout was undone"
    );
    assert_eq!(
        race.probe.calls(Op::Update),
        1,
        "the slow request tried its write and was told Gone"
    );
}

/// An `update` after a concurrent logout is `Gone`; later calls see no session, nothing is written.
pub async fn an_update_after_a_concurrent_logout_ends_the_session(harness: &dyn Harness) {
    let race = logout_during(harness, "/set/n", |session, pause| async move {
        let before = session.get::<i64>("n").await;
        pause.wait().await;
        let updated = session
            .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
            .await;
        let inserted = session.insert("late", &1).await;
        let after = session.get::<i64>("n").await;
        format!("{before:?} / {updated:?} / {inserted:?} / {after:?}")
    })
    .await;
    assert_eq!(
        race.slow.body,
        "Ok(Some(1)) / Err(Gone) / Err(Gone) / Ok(None)"
    );
    assert!(race.slow.set_cookies().is_empty(), "{:?}", race.slow);
    assert_eq!(
        race.probe.calls(Op::Update),
        1,
        "nothing written after Gone"
    );
    assert!(!harness.raw_exists(&key_of(&race.pair)).await.unwrap());
}

/// A write that lands between a slow request's load and its conditioned
/// update is kept, also by the slow request's later writes: what that
/// update learnt of one key leaves its view of the others stale.
pub async fn a_write_between_load_and_update_is_kept(harness: &dyn Harness) {
    let race = request_during(
        harness,
        "/set/n",
        "/set/other",
        |session, pause| async move {
            let before = session.get::<i64>("n").await;
            pause.wait().await;
            let updated = session
                .update("n", |n: Option<i64>| n.unwrap_or(0) + 1)
                .await;
            let inserted = session.insert("late", &1).await;
            format!("{before:?} / {updated:?} / {inserted:?}")
        },
    )
    .await;
    assert_eq!(race.interlude.body, "set");
    assert_eq!(race.slow.body, "Ok(Some(1)) / Ok(2) / Ok(())");
    let stored = harness
        .storage()
        .load(&key_of(&race.pair), Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.data.names().collect::<Vec<_>>(),
        ["late", "n", "other"]
    );
    assert_eq!(stored.data.get::<i64>("n").unwrap(), Some(2));
}
