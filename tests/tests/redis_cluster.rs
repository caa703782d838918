//! The conformance suite on a real three-master Redis Cluster, and writes
//! whose replies are lost or delayed on the way back (through proxies).

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::sync::Arc;

use http::StatusCode;
use session_core::conformance::Harness;
use session_core::{
    ChangeSet, CreateOutcome, CycleOutcome, Login, LoginOutcome, Revoke, SessionHandle, SessionId,
    SessionKey, SessionStorage, Timestamp, UpdateOutcome, UserKey,
};
use session_redis::{RedisHarness, RedisStorage, StepHook, steps};
use session_tests::app::{TestApp, get_request, post_request};
use session_tests::records::{created_with, deadlines, fresh_key, increment, int_at, record_with};
use session_tests::redis_server::{Cluster, ProxiedCluster, unique_prefix};
use session_tests::reply_dropper::{is_command_on, is_script_on};
use session_tests::suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_on_a_cluster_spanning_masters() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let urls = cluster.urls();
    let base = unique_prefix("cluster");
    let harness = || {
        let client = redis::cluster::ClusterClient::new(urls.clone()).unwrap();
        let storage = RedisStorage::builder_for_cluster(client)
            .prefix(unique_prefix(&base.replace(':', "-")))
            .build()
            .unwrap();
        async move { RedisHarness::new(storage) }
    };
    if let Err(report) = session_core::conformance::run_all(harness).await {
        panic!("{report}");
    }
    // Sessions' own lifetimes through the HTTP layer, on the cluster too:
    // what a cross-node cycle and login must carry.
    suite::remember_me_keeps_a_persistent_cookie_on_its_deadline(&harness().await).await;
    suite::the_cookie_kind_follows_the_lifetime(&harness().await).await;
    suite::a_login_restarts_the_absolute_deadline_from_the_own_timeout(&harness().await).await;
    suite::own_timeouts_stay_within_the_layers_bounds(&harness().await).await;
    suite::a_shorter_own_timeout_ends_the_session_sooner(&harness().await).await;
    // Rotation across nodes: the forward, writes in flight, logout.
    suite::ids_rotate_with_age_and_the_old_one_lasts_the_grace(&harness().await).await;
    suite::a_write_in_flight_across_a_rotation_is_kept(&harness().await).await;
    suite::writes_through_both_ids_are_all_kept(&harness().await).await;
    suite::logout_or_revoke_in_the_grace_ends_both_ids(&harness().await).await;
    suite::a_login_in_the_grace_ends_both_ids_at_once(&harness().await).await;
    suite::a_persistent_cookie_is_not_sent_again_for_an_id_rotated_meanwhile(&harness().await)
        .await;

    // The suite's sessions were spread over the masters, so cross-node
    // cycles really happened.
    let mut masters_with_keys = BTreeSet::new();
    for url in &urls {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!(
                "test:{}*",
                base.replace(':', "-").trim_end_matches('-')
            ))
            .query_async(&mut connection)
            .await
            .unwrap();
        if !keys.is_empty() {
            masters_with_keys.insert(url.clone());
        }
    }
    assert!(
        masters_with_keys.len() >= 2,
        "the test's keys sit on {masters_with_keys:?}"
    );
}

/// Storage on `cluster` (through its proxies) under a prefix of its own,
/// and that prefix.
fn proxied_storage(cluster: &ProxiedCluster) -> (RedisStorage, String) {
    let prefix = unique_prefix("proxied").replace(':', "-");
    let client = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
    let storage = RedisStorage::builder_for_cluster(client)
        .prefix(&prefix)
        .build()
        .unwrap();
    (storage, prefix)
}

/// Logins through the HTTP layer, where the cycle moves a session between
/// masters: nothing of a login is ever visible under the old id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_on_a_cluster_never_write_under_the_old_id() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let client = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
    let storage = RedisStorage::builder_for_cluster(client)
        .prefix(unique_prefix("cluster-login"))
        .build()
        .unwrap();
    let harness = RedisHarness::new(storage);
    suite::a_login_is_never_written_under_the_old_id(&harness).await;
    suite::a_login_races_requests_on_the_old_id(&harness).await;
    suite::a_login_can_start_from_a_clean_record(&harness).await;
}

/// The HTTP accounts suite on a cluster, where a user's sessions sit on
/// several masters: one cluster for all of it (the whole HTTP suite would
/// start one per test).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accounts_on_a_cluster_spanning_masters() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let harness = || {
        let client = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
        let storage = RedisStorage::builder_for_cluster(client)
            .prefix(unique_prefix("cluster-accounts").replace(':', "-"))
            .build()
            .unwrap();
        RedisHarness::new(storage)
    };
    suite::a_login_binds_the_session_to_the_user(&harness()).await;
    suite::the_list_shows_every_device_and_one_current(&harness()).await;
    suite::a_session_is_revoked_by_its_handle(&harness()).await;
    suite::revoke_others_keeps_only_this_session(&harness()).await;
    suite::revoke_all_ends_this_session_too(&harness()).await;
    suite::a_request_in_flight_on_a_revoked_session_writes_nothing(&harness()).await;
    suite::a_login_with_a_limit_revokes_the_least_recently_seen(&harness()).await;
    suite::a_store_without_accounts_gives_a_clear_error(&harness()).await;
    suite::a_failed_revoke_poisons_the_session(&harness()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditioned_update_whose_reply_was_dropped_applies_once() {
    let Some(cluster) = ProxiedCluster::start() else {
        return;
    };
    let (storage, prefix) = proxied_storage(&cluster);
    let now = Timestamp::now();
    let key = created_with(&storage, &[("n", 1)], now).await;
    let target = format!("{prefix}{key}");
    cluster
        .faults
        .drop_reply(move |command| is_script_on(command, &target));

    let outcome = storage
        .update(&key, &increment("n", 1, 2), deadlines(now), now)
        .await
        .unwrap();
    assert_eq!(
        cluster.faults.dropped(),
        1,
        "the update's reply was dropped"
    );
    // The client resent the update; the resend recognised its own write.
    assert_eq!(outcome, UpdateOutcome::Updated { version: 2 });
    let record = storage.load(&key, now).await.unwrap().unwrap();
    assert_eq!((record.version, int_at(&record.data, "n")), (2, Some(2)));

    // From the record as loaded, the short script: its resend finds the
    // metadata moved and answers `stale`; the full script, sent with the
    // same write token, recognises the write.
    let target = format!("{prefix}{key}");
    cluster
        .faults
        .drop_reply(move |command| is_script_on(command, &target));
    let outcome = storage
        .update_from(&key, &record, &increment("n", 2, 3), deadlines(now), now)
        .await
        .unwrap();
    assert_eq!(cluster.faults.dropped(), 2, "the short script's reply too");
    assert_eq!(outcome, UpdateOutcome::Updated { version: 3 });
    let record = storage.load(&key, now).await.unwrap().unwrap();
    assert_eq!((record.version, int_at(&record.data, "n")), (3, Some(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_increment_whose_reply_was_dropped_counts_once() {
    let Some(cluster) = ProxiedCluster::start() else {
        return;
    };
    let (storage, prefix) = proxied_storage(&cluster);
    let app = TestApp::with_defaults(Arc::new(storage));
    let pair = app.session_with("n").await;
    let id = SessionId::parse(pair.split_once('=').unwrap().1).unwrap();
    let target = format!("{prefix}{}", id.key());
    cluster
        .faults
        .drop_reply(move |command| is_script_on(command, &target));

    let reply = app.call(post_request("/incr", Some(&pair))).await;
    assert_eq!(
        cluster.faults.dropped(),
        1,
        "the update's reply was dropped"
    );
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "2"));
    assert_eq!(
        app.call(get_request("/read", Some(&pair))).await.body,
        "n=2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_reply_was_dropped_is_created_once() {
    let Some(cluster) = ProxiedCluster::start() else {
        return;
    };
    let (storage, prefix) = proxied_storage(&cluster);
    let now = Timestamp::now();
    let key = fresh_key();
    let target = format!("{prefix}{key}");
    cluster
        .faults
        .drop_reply(move |command| is_script_on(command, &target));

    let outcome = storage
        .create(&key, &record_with(&[("n", 1)], now), now)
        .await
        .unwrap();
    assert_eq!(
        cluster.faults.dropped(),
        1,
        "the create's reply was dropped"
    );
    assert_eq!(outcome, CreateOutcome::Created);
    let record = storage.load(&key, now).await.unwrap().unwrap();
    assert_eq!((record.version, int_at(&record.data, "n")), (1, Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_whose_seal_reply_was_dropped_keeps_the_session() {
    let Some(cluster) = ProxiedCluster::start() else {
        return;
    };
    let (storage, prefix) = proxied_storage(&cluster);
    let now = Timestamp::now();
    let old = created_with(&storage, &[("user", 7)], now).await;
    let new = fresh_key();
    let target = format!("{prefix}{old}");
    // The first script on the old record in a cluster cycle is the seal.
    cluster
        .faults
        .drop_reply(move |command| is_script_on(command, &target));

    let outcome = storage
        .cycle(&old, &new, &ChangeSet::new(), deadlines(now), now)
        .await
        .unwrap();
    assert_eq!(cluster.faults.dropped(), 1, "the seal's reply was dropped");
    assert_eq!(outcome, CycleOutcome::Cycled);
    let moved = storage.load(&new, now).await.unwrap().unwrap();
    assert_eq!(int_at(&moved.data, "user"), Some(7));
    assert!(storage.load(&old, now).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_whose_caller_gave_up_leaves_the_old_session_usable() {
    let Some(cluster) = ProxiedCluster::start() else {
        return;
    };
    let (storage, prefix) = proxied_storage(&cluster);
    let harness = RedisHarness::new(storage.clone());
    let now = Timestamp::now();
    let old = created_with(&storage, &[("user", 7)], now).await;
    let new = fresh_key();
    let (old_key, new_key) = (format!("{prefix}{old}"), format!("{prefix}{new}"));
    // The create of the new record runs on its node; its reply waits.
    cluster
        .faults
        .hold_reply(move |command| is_script_on(command, &new_key));
    {
        let changes = ChangeSet::new();
        let cycle = storage.cycle(&old, &new, &changes, deadlines(now), now);
        tokio::pin!(cycle);
        tokio::select! {
            outcome = &mut cycle => panic!("the cycle ended while its create was held: {outcome:?}"),
            () = cluster.faults.wait_held() => {}
        }
        // The caller gives up here, as a request timeout would: its future
        // is dropped between the create and the end of the cycle.
    }
    cluster.faults.release();
    // The next step that reaches the old record: unsealing it (a rollback)
    // or deleting it (a finished move).
    cluster
        .faults
        .wait_replied(move |command| {
            is_command_on(command, "EVAL", 3, &old_key)
                || is_command_on(command, "DEL", 1, &old_key)
        })
        .await;

    assert_eq!(cluster.faults.held(), 1, "the create's reply was held");
    let restored = storage.load(&old, now).await.unwrap();
    let restored = restored.expect("the old session loads again after the abandoned cycle");
    assert_eq!(int_at(&restored.data, "user"), Some(7));
    assert!(storage.load(&new, now).await.unwrap().is_none());
    assert!(
        !harness.raw_exists(&new).await.unwrap(),
        "the new record is gone"
    );
}

/// Storage on `cluster` with a step hook, under a prefix of its own.
fn hooked(cluster: &Cluster) -> (RedisStorage, Arc<StepHook>) {
    let hook = StepHook::new();
    let client = redis::cluster::ClusterClient::new(cluster.urls()).unwrap();
    let storage = RedisStorage::builder_for_cluster(client)
        .prefix(unique_prefix("hooked").replace(':', "-"))
        .step_hook(hook.clone())
        .build()
        .unwrap();
    (storage, hook)
}

/// A login of a fresh user from a fresh anonymous session: the user, old
/// and new keys.
async fn anonymous(storage: &RedisStorage, now: Timestamp) -> (UserKey, SessionKey, SessionKey) {
    let user = UserKey::of(&fresh_key().to_string());
    let old = created_with(storage, &[("cart", 1)], now).await;
    (user, old, fresh_key())
}

async fn log_in(
    storage: &RedisStorage,
    old: Option<&SessionKey>,
    new: &SessionKey,
    user: UserKey,
    now: Timestamp,
) -> Result<LoginOutcome, session_core::Error> {
    let login = Login::new(user);
    storage
        .login(old, new, &ChangeSet::new(), deadlines(now), &login, now)
        .await
}

/// Whether `key` loads, and whether `user`'s list shows it.
async fn live_and_listed(
    storage: &RedisStorage,
    key: &SessionKey,
    user: &UserKey,
    now: Timestamp,
) -> (bool, bool) {
    let live = storage.load(key, now).await.unwrap().is_some();
    let listed = storage
        .list(user, now)
        .await
        .unwrap()
        .iter()
        .any(|listed| listed.handle == SessionHandle::of(key));
    (live, listed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_failing_at_any_step_never_leaves_a_live_unlisted_session() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (storage, hook) = hooked(&cluster);
    let now = Timestamp::now();
    for step in [
        steps::SEAL,
        steps::INDEX_ADD,
        steps::CREATE,
        steps::OFFER,
        steps::CLEANUP,
    ] {
        let (user, old, new) = anonymous(&storage, now).await;
        hook.fail_at(step);
        let before = hook.hits(step);
        let outcome = log_in(&storage, Some(&old), &new, user, now).await;
        // The cleanup runs in the move's task after the caller heard.
        for _ in 0..100 {
            if hook.hits(step) > before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        hook.clear();
        assert_eq!(hook.hits(step), before + 1, "{step} was reached");
        let (live, listed) = live_and_listed(&storage, &new, &user, now).await;
        assert!(
            !live || listed,
            "{step}: the new session is live and unlisted"
        );
        let old_loads = storage.load(&old, now).await.unwrap().is_some();
        if step == steps::CLEANUP {
            assert!(
                matches!(outcome, Ok(LoginOutcome::LoggedIn { .. })),
                "{step}: {outcome:?}"
            );
            assert!(live && !old_loads, "{step}: the move is done");
        } else {
            assert!(outcome.is_err(), "{step}: {outcome:?}");
            assert!(old_loads && !live, "{step}: the old session is intact");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoke_failing_at_any_step_never_brings_a_session_back() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (storage, hook) = hooked(&cluster);
    let now = Timestamp::now();
    for step in [
        steps::REVOKE_READ,
        steps::REVOKE_MEMBER,
        steps::REVOKE_UNINDEX,
    ] {
        let (user, old, new) = anonymous(&storage, now).await;
        assert!(matches!(
            log_in(&storage, Some(&old), &new, user, now).await,
            Ok(LoginOutcome::LoggedIn { .. })
        ));
        hook.fail_at(step);
        let before = hook.hits(step);
        let failed = storage.revoke(&user, &Revoke::All, now).await;
        hook.clear();
        assert_eq!(hook.hits(step), before + 1, "{step} was reached");
        assert!(failed.is_err(), "{step}");
        let (live, listed) = live_and_listed(&storage, &new, &user, now).await;
        assert!(!live || listed, "{step}: live and unlisted");
        if step == steps::REVOKE_UNINDEX {
            assert!(!live, "{step}: the session was ended before the failure");
        }
        // Repeating the revoke finishes it.
        storage.revoke(&user, &Revoke::All, now).await.unwrap();
        assert!(
            storage.load(&new, now).await.unwrap().is_none(),
            "{step}: revoked, still loads"
        );
        assert!(storage.list(&user, now).await.unwrap().is_empty(), "{step}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoke_between_a_logins_index_and_its_create_ends_the_login() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (storage, hook) = hooked(&cluster);
    let now = Timestamp::now();
    let (user, old, new) = anonymous(&storage, now).await;
    hook.pause_at(steps::CREATE);
    let login = tokio::spawn({
        let storage = storage.clone();
        async move { log_in(&storage, Some(&old), &new, user, now).await }
    });
    hook.paused().await;
    assert_eq!(hook.hits(steps::CREATE), 1, "paused at the create");
    let revoked = storage.revoke(&user, &Revoke::All, now).await.unwrap();
    assert_eq!(revoked, 0, "nothing was live yet");
    hook.resume();
    assert_eq!(login.await.unwrap().unwrap(), LoginOutcome::Gone);
    assert!(
        storage.load(&new, now).await.unwrap().is_none(),
        "the revoked login loads"
    );
    assert!(storage.list(&user, now).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoke_of_a_sealed_session_ends_its_new_key() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (storage, hook) = hooked(&cluster);
    let now = Timestamp::now();
    let (user, anonymous_key, old) = anonymous(&storage, now).await;
    let first = log_in(&storage, Some(&anonymous_key), &old, user, now).await;
    assert!(matches!(first, Ok(LoginOutcome::LoggedIn { .. })));
    let new = fresh_key();
    let before = hook.hits(steps::INDEX_ADD);
    hook.pause_at(steps::INDEX_ADD);
    let relogin = tokio::spawn({
        let storage = storage.clone();
        async move { log_in(&storage, Some(&old), &new, user, now).await }
    });
    hook.paused().await;
    assert_eq!(
        hook.hits(steps::INDEX_ADD),
        before + 1,
        "paused after the seal"
    );
    let which = Revoke::One(SessionHandle::of(&old));
    assert_eq!(
        storage.revoke(&user, &which, now).await.unwrap(),
        1,
        "the sealed session counts"
    );
    hook.resume();
    let outcome = relogin.await.unwrap().unwrap();
    assert_eq!(outcome, LoginOutcome::Gone);
    for key in [old, new] {
        assert!(
            storage.load(&key, now).await.unwrap().is_none(),
            "{key} loads after the revoke"
        );
    }
    assert!(storage.list(&user, now).await.unwrap().is_empty());
}

/// A rotation in steps of a fresh session on `storage`, paused before
/// `step`: the old key, the new one, the time, and the rotation's task.
async fn rotation_paused_at(
    storage: &RedisStorage,
    hook: &StepHook,
    step: &'static str,
) -> (SessionKey, SessionKey, Timestamp, RotationTask) {
    let now = Timestamp::now();
    let old = created_with(storage, &[("cart", 1)], now).await;
    let new = fresh_key();
    hook.pause_at(step);
    let rotating = {
        let storage = storage.clone();
        let end = now.saturating_add(std::time::Duration::from_secs(10));
        tokio::spawn(async move { storage.rotate(&old, &new, end, now).await })
    };
    hook.paused().await;
    (old, new, now, rotating)
}

/// The task of a rotation in steps.
type RotationTask =
    tokio::task::JoinHandle<Result<session_core::RotateOutcome, session_core::Error>>;

/// A load of the old id while a rotation in steps has sealed it (paused
/// before the new record is created) waits for the move, and finds the
/// session under the new key: a rotation leaves its old id no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_during_a_rotation_in_steps_finds_the_session() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (storage, hook) = hooked(&cluster);
    let (old, new, now, rotating) = rotation_paused_at(&storage, &hook, steps::CREATE).await;
    let harness = RedisHarness::new(storage.clone());
    let raw = harness.read_raw(&old).await.unwrap().unwrap();
    let sealed = raw.windows(4).any(|field| field == b"m\0S;");
    assert!(sealed, "the old record is sealed: {raw:?}");
    let loading = {
        let storage = storage.clone();
        tokio::spawn(async move { storage.load_following(&old, now).await })
    };
    hook.resume();
    let found = loading.await.unwrap().unwrap();
    assert_eq!(found.map(|(at, _)| at), Some(new));
    assert_eq!(
        rotating.await.unwrap().unwrap(),
        session_core::RotateOutcome::Rotated
    );
}

/// A logout of the old id while a rotation in steps has sealed it (paused
/// before the forward is written) wins: the rotation answers `Gone`, and
/// neither id finds the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_during_a_rotation_in_steps_ends_both_ids() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (storage, hook) = hooked(&cluster);
    let (old, new, now, rotating) = rotation_paused_at(&storage, &hook, steps::CLEANUP).await;
    assert!(
        storage.load(&new, now).await.unwrap().is_some(),
        "created before the pause"
    );
    storage.delete(&old).await.unwrap();
    hook.resume();
    assert_eq!(
        rotating.await.unwrap().unwrap(),
        session_core::RotateOutcome::Gone
    );
    assert!(storage.load(&new, now).await.unwrap().is_none());
    assert!(storage.load_following(&old, now).await.unwrap().is_none());
}
