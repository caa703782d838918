//! Redis Cluster (feature `cluster`): reaching it, and the `cycle` it needs.
//!
//! Every operation on an unbound session touches one key, so it runs as
//! on one node. `cycle` and `login` move a session between keys that may
//! live on different nodes, and a bound session's user index lives on a
//! node of its own, which no one script can reach together: those run in
//! ordered steps (see [`cycle`] and [`revoke`]).

mod cycle;
mod revoke;
mod seal;

use redis::RedisResult;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use session_core::Error;
use tokio::sync::OnceCell;

use crate::builder::{DEFAULT_TIMEOUT, RedisStorageBuilder};
use crate::connection::Target;
use crate::storage::RedisStorage;

#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
impl RedisStorage {
    /// Storage on Redis Cluster, reached through these seed nodes.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a URL is not a Redis URL.
    pub fn open_cluster<'a>(urls: impl IntoIterator<Item = &'a str>) -> Result<Self, Error> {
        // Connecting gives up on a seed node well within one call's
        // timeout, so a hanging node cannot keep the cluster unreachable.
        let client = ClusterClient::builder(urls.into_iter().collect::<Vec<_>>())
            .connection_timeout(DEFAULT_TIMEOUT / 4)
            .response_timeout(DEFAULT_TIMEOUT)
            .build()
            .map_err(Error::backend)?;
        Ok(Self::builder_for_cluster(client).build_infallible())
    }

    /// A builder for storage on Redis Cluster.
    pub fn builder_for_cluster(client: ClusterClient) -> RedisStorageBuilder {
        RedisStorageBuilder::new(Target::Cluster(Cluster::new(client)))
    }
}

/// The cluster's client, and its connection once made. Its client resends
/// a command after a broken connection as well as after a redirect (one
/// retry budget covers both, and redirects need it); the write scripts
/// recognise their own resends, so each write takes effect once.
pub(crate) struct Cluster {
    client: ClusterClient,
    connection: OnceCell<ClusterConnection>,
}

impl Cluster {
    fn new(client: ClusterClient) -> Self {
        Self {
            client,
            connection: OnceCell::new(),
        }
    }

    /// The connection, made now if this is the first use. A failed attempt
    /// is not remembered: the next call tries again.
    pub(crate) async fn connect(&self) -> RedisResult<ClusterConnection> {
        let connection = self
            .connection
            .get_or_try_init(|| self.client.get_async_connection())
            .await?;
        Ok(connection.clone())
    }
}

impl RedisStorage {
    /// Called before each step of a multi-step operation: a test's
    /// [`StepHook`](crate::StepHook) may fail or pause it there (feature
    /// `test-util`; otherwise nothing).
    pub(crate) async fn step(&self, name: &'static str) -> Result<(), Error> {
        #[cfg(feature = "test-util")]
        if let Some(hook) = self.hook() {
            return hook.at(name).await;
        }
        let _ = name;
        Ok(())
    }
}
