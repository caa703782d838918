//! The conformance suite on a real three-master Redis Cluster, and writes
//! whose replies are lost or delayed on the way back (through proxies).

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::sync::Arc;

use http::StatusCode;
use session_core::conformance::Harness;
use session_core::{
    ChangeSet, CreateOutcome, CycleOutcome, SessionId, SessionStorage, Timestamp, UpdateOutcome,
};
use session_redis::{RedisHarness, RedisStorage};
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
