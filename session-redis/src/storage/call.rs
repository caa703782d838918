//! One Redis call: counted, under the storage's timeout, its error mapped
//! to the contract's; and the calls built on it.

use std::future::Future;
use std::sync::atomic::Ordering;

use redis::{FromRedisValue, RedisResult, ScriptInvocation};
use session_core::{Error, SessionKey};

use super::RedisStorage;
use crate::answer::{self, Answer};
use crate::connection::Connection;

impl RedisStorage {
    /// The Redis key of a session.
    pub(crate) fn redis_key(&self, key: &SessionKey) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    /// Runs one Redis call under the timeout.
    pub(crate) async fn call<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        let limit = self.inner.timeout;
        let attempt = async {
            let connection = self.inner.target.connect().await?;
            call(connection).await
        };
        match tokio::time::timeout(limit, attempt).await {
            // A key of another type is not a session: like corrupt bytes.
            Ok(Err(error)) if error.code() == Some("WRONGTYPE") => Err(Error::decode(error)),
            Ok(result) => result.map_err(Error::backend),
            Err(_) => Err(Error::Timeout(limit)),
        }
    }

    /// Runs `command` with a session's Redis key as its one argument.
    pub(crate) async fn key_command<T: FromRedisValue>(
        &self,
        command: &'static str,
        key: &SessionKey,
    ) -> Result<T, Error> {
        let redis_key = self.redis_key(key);
        self.call(|mut connection| async move {
            redis::cmd(command)
                .arg(redis_key)
                .query_async(&mut connection)
                .await
        })
        .await
    }

    /// Deletes a key (the cluster's steps; `delete` keeps the index too).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) async fn delete_key(&self, key: &SessionKey) -> Result<(), Error> {
        self.key_command("DEL", key).await
    }

    /// Runs a script and reads its answer.
    pub(crate) async fn script(&self, invocation: ScriptInvocation<'_>) -> Result<Answer, Error> {
        let reply: Vec<Vec<u8>> = self
            .call(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await?;
        answer::parse(reply)
    }
}
