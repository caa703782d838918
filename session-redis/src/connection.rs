//! The connection to Redis or Redis Cluster, made on first use so that a
//! service starts while Redis is down.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::OnceCell;

/// Where the storage sends its commands.
pub(crate) enum Target {
    /// One Redis server, through a reconnecting `ConnectionManager`.
    Node {
        client: Client,
        manager: OnceCell<ConnectionManager>,
        timeout: Duration,
    },
    /// A manager the application built.
    Manager(ConnectionManager),
    /// Redis Cluster.
    #[cfg(feature = "cluster")]
    Cluster(crate::cluster::Cluster),
}

impl Target {
    /// One Redis server, connected on first use within `timeout`.
    pub(crate) fn node(client: Client, timeout: Duration) -> Self {
        Self::Node {
            client,
            manager: OnceCell::new(),
            timeout,
        }
    }

    /// Makes connecting give up within `limit`, one call's timeout (the
    /// cluster client has its own, and a given manager is already made).
    pub(crate) fn limit_connecting(&mut self, limit: Duration) {
        if let Self::Node { timeout, .. } = self {
            *timeout = limit;
        }
    }

    /// A connection, made now if this is the first use. A failed attempt is
    /// not remembered: the next call tries again.
    pub(crate) async fn connect(&self) -> RedisResult<Connection> {
        match self {
            Self::Node {
                client,
                manager,
                timeout,
            } => {
                let manager = manager
                    .get_or_try_init(|| async {
                        // Lazy: no I/O here; the manager connects on its
                        // first command and reconnects by itself. The retry
                        // count is of connection attempts: the manager never
                        // sends a command twice (a broken connection fails
                        // the commands in flight), and the scripts would
                        // recognise a resend anyway.
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(*timeout))
                            .set_response_timeout(Some(*timeout))
                            .set_number_of_retries(1);
                        ConnectionManager::new_lazy_with_config(client.clone(), config)
                    })
                    .await?;
                Ok(Connection::Node(manager.clone()))
            }
            Self::Manager(manager) => Ok(Connection::Node(manager.clone())),
            #[cfg(feature = "cluster")]
            Self::Cluster(cluster) => cluster.connect().await.map(Connection::Cluster),
        }
    }

    /// Whether keys may live on different nodes.
    pub(crate) fn is_cluster(&self) -> bool {
        // Every kind but these two is a cluster; so no arm names the one
        // that only a build with feature `cluster` has.
        !matches!(self, Self::Node { .. } | Self::Manager(_))
    }
}

/// A live connection of either kind, usable wherever redis wants one.
#[derive(Clone)]
pub(crate) enum Connection {
    Node(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(connection) => connection.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(connection) => connection.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(connection) => connection.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}
