//! The conformance suite on a real three-master Redis Cluster.

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::collections::BTreeSet;

use session_redis::{RedisHarness, RedisStorage};
use session_tests::redis_server::{Cluster, unique_prefix};

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
