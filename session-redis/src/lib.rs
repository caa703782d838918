//! Session storage on Redis and Redis Cluster.
//!
//! One hash per session, under `<prefix><SHA-256 of the id, hex>`: a
//! metadata field (format, creation time, deadlines, version) and one field
//! per value. Every write is one Lua script run on the server (through
//! `EVALSHA`, reloaded on `NOSCRIPT`), so it is atomic and sets the key's
//! TTL in the same step; `load` is one `HGETALL`. A request that only reads
//! its session costs one round trip; one that reads then writes, two.
//!
//! TTLs are relative (`PEXPIRE`, deadline minus now plus a little slack),
//! and every load checks both deadlines itself, so clocks that drift apart
//! do not resurrect sessions.
//!
//! Each write takes effect once: a client that resends a script after a
//! broken connection (the cluster client does) sends its write token with
//! it, and the script, finding the token among the record's last writes,
//! answers what it did the first time. What Redis hands back is checked
//! too: a stored record whose data is over the size limit is
//! [`Error::TooLarge`] on load, and its bytes are left alone.
//!
//! ```no_run
//! use session_redis::RedisStorage;
//!
//! # fn main() -> Result<(), session_core::Error> {
//! // Connects on first use, so the service starts even while Redis is down.
//! let storage = RedisStorage::open("redis://127.0.0.1:6379")?;
//! # let _ = storage;
//! # Ok(())
//! # }
//! ```
//!
//! Give Redis a `volatile-*` eviction policy (`volatile-lru`,
//! `volatile-ttl`): every session key has a TTL, so under memory pressure
//! Redis evicts sessions rather than refusing writes. With Redis Cluster
//! (feature `cluster`), each session lives on one node; only `cycle` (login)
//! touches two keys, which it does in checked steps: the old record is
//! sealed, the new one created, then the old one deleted, and a failure in
//! between, or a caller that gave up before hearing the outcome, restores
//! the old session.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "cluster")]
mod cluster_cycle;
mod connection;
#[cfg(feature = "conformance")]
mod harness;
mod layout;
mod scripts;
mod write_token;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, RedisResult, ScriptInvocation};
use session_core::{
    Capabilities, ChangeSet, CreateOutcome, CycleOutcome, DEFAULT_MAX_RECORD_BYTES, Deadlines,
    EXPIRY_SLACK, Error, Record, SessionKey, SessionStorage, Timestamp, TouchOutcome,
    UpdateOutcome, async_trait,
};
use tokio::sync::OnceCell;

use connection::{Connection, Target};
#[cfg(feature = "conformance")]
pub use harness::RedisHarness;
use layout::{Answer, data_field, decode_record, encode_meta, parse_answer};
use scripts::{CREATE_SCRIPT, CYCLE_SCRIPT, TOUCH_SCRIPT, UPDATE_SCRIPT};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "session:";
/// The default limit on one Redis call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Sessions in Redis. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisStorage {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    prefix: String,
    timeout: Duration,
    max_record_bytes: usize,
    round_trips: AtomicU64,
}

impl fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStorage")
            .field("prefix", &self.inner.prefix)
            .field("cluster", &self.inner.target.is_cluster())
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// The key prefix holds `{` or `}`: a hash tag would pin every session to
/// one Redis Cluster slot.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Redis key prefix {0:?} must not contain '{{' or '}}'")]
pub struct InvalidPrefix(String);

impl RedisStorage {
    /// Storage on the Redis server at `url` (`redis://`, or `rediss://`
    /// with feature `tls`), with the defaults. Nothing connects until the
    /// first call.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if `url` is not a Redis URL.
    pub fn open(url: &str) -> Result<Self, Error> {
        let client = Client::open(url).map_err(Error::backend)?;
        Ok(Self::builder(client).build_infallible())
    }

    /// Storage on the Redis server of `client`, with the defaults.
    pub fn from_client(client: Client) -> Self {
        Self::builder(client).build_infallible()
    }

    /// Storage over a connection manager the application already has.
    pub fn from_connection_manager(manager: ConnectionManager) -> Self {
        RedisStorageBuilder::new(Target::Manager(manager)).build_infallible()
    }

    /// Storage on Redis Cluster, reached through these seed nodes.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a URL is not a Redis URL.
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn open_cluster<'a>(urls: impl IntoIterator<Item = &'a str>) -> Result<Self, Error> {
        // Connecting gives up on a seed node well within one call's
        // timeout, so a hanging node cannot keep the cluster unreachable.
        let client = redis::cluster::ClusterClient::builder(urls.into_iter().collect::<Vec<_>>())
            .connection_timeout(DEFAULT_TIMEOUT / 4)
            .response_timeout(DEFAULT_TIMEOUT)
            .build()
            .map_err(Error::backend)?;
        Ok(Self::builder_for_cluster(client).build_infallible())
    }

    /// A builder for storage on Redis Cluster.
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn builder_for_cluster(client: redis::cluster::ClusterClient) -> RedisStorageBuilder {
        RedisStorageBuilder::new(Target::Cluster {
            client,
            connection: OnceCell::new(),
        })
    }

    /// A builder for storage on the Redis server of `client`.
    pub fn builder(client: Client) -> RedisStorageBuilder {
        RedisStorageBuilder::new(Target::Node {
            client,
            manager: OnceCell::new(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Redis calls made so far (one round trip each; a script reload after
    /// `NOSCRIPT` adds one more that is not counted).
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// The Redis key of a session.
    fn redis_key(&self, key: &SessionKey) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    /// Runs one Redis call under the timeout.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, Error>
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

    /// Runs a script and reads its answer.
    async fn script(&self, invocation: ScriptInvocation<'_>) -> Result<Answer, Error> {
        let reply: Vec<Vec<u8>> = self
            .call(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await?;
        parse_answer(reply)
    }

    /// Creates `record` under `key` (the create script).
    async fn create_record(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<Answer, Error> {
        record.check_size(self.inner.max_record_bytes)?;
        let mut invocation = CREATE_SCRIPT.prepare_invoke();
        invocation
            .key(self.redis_key(key))
            .arg(write_token::fresh()?)
            .arg(now.as_unix_millis())
            .arg(encode_meta(record))
            .arg(millis(record.deadlines.native_ttl(now)).min(MAX_TTL_MS));
        for (name, value) in record.data.iter() {
            invocation.arg(data_field(name)).arg(value.as_bytes());
        }
        self.script(invocation).await
    }

    /// The arguments `update` and `cycle` share: a write token, now, the
    /// deadlines, the size limit, the expiry slack, then the change set.
    fn changes_invocation<'s>(
        &self,
        invocation: &mut ScriptInvocation<'s>,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<(), Error> {
        invocation
            .arg(write_token::fresh()?)
            .arg(now.as_unix_millis())
            .arg(deadlines.idle().as_unix_millis())
            .arg(deadlines.absolute().as_unix_millis())
            .arg(self.inner.max_record_bytes)
            .arg(millis(EXPIRY_SLACK));
        push_changes(invocation, changes);
        Ok(())
    }

    /// Deletes a key.
    async fn delete_key(&self, key: &SessionKey) -> Result<(), Error> {
        let redis_key = self.redis_key(key);
        self.call(|mut connection| async move {
            redis::cmd("DEL")
                .arg(redis_key)
                .query_async(&mut connection)
                .await
        })
        .await
    }
}

/// The longest TTL written, in milliseconds (about 31 000 years): `PEXPIRE`
/// refuses times that overflow once added to the clock.
const MAX_TTL_MS: u64 = 1_000_000_000_000_000;

/// Whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Appends a change set to a script's arguments: cleared flag, removed
/// fields, inserted field/value pairs, conditions (field, present, value).
fn push_changes(invocation: &mut ScriptInvocation<'_>, changes: &ChangeSet) {
    invocation.arg(if changes.is_cleared() { "1" } else { "0" });
    let removals: Vec<&str> = changes.removals().collect();
    invocation.arg(removals.len());
    for name in removals {
        invocation.arg(data_field(name));
    }
    let inserts: Vec<_> = changes.inserts().collect();
    invocation.arg(inserts.len());
    for (name, value) in inserts {
        invocation.arg(data_field(name)).arg(value.as_bytes());
    }
    let conditions: Vec<_> = changes.conditions().collect();
    invocation.arg(conditions.len());
    for (name, expected) in conditions {
        invocation
            .arg(data_field(name))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.map_or(&[][..], |value| value.as_bytes()));
    }
}

/// A script answer that `update` does not expect.
fn unexpected(answer: &Answer) -> Error {
    Error::backend(format!(
        "unexpected answer from a session script: {answer:?}"
    ))
}

fn cycle_outcome(answer: Answer, limit: usize) -> Result<CycleOutcome, Error> {
    match answer {
        Answer::Cycled => Ok(CycleOutcome::Cycled),
        Answer::Gone => Ok(CycleOutcome::Gone),
        Answer::Collision => Ok(CycleOutcome::Collision),
        Answer::Conflict(current) => Ok(CycleOutcome::Conflict { current }),
        answer => Err(failure(answer, limit)),
    }
}

/// The error a failing answer stands for.
fn failure(answer: Answer, limit: usize) -> Error {
    match answer {
        Answer::Decode => Error::decode("stored session metadata cannot be decoded"),
        Answer::TooLarge(size) => Error::TooLarge { size, limit },
        other => unexpected(&other),
    }
}

#[async_trait]
impl SessionStorage for RedisStorage {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        let redis_key = self.redis_key(key);
        let fields: Vec<(Vec<u8>, Vec<u8>)> = self
            .call(|mut connection| async move {
                redis::cmd("HGETALL")
                    .arg(redis_key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        // The size is checked once the reply is here: checking it on the
        // server would turn this `HGETALL` into a script on every load.
        let record = decode_record(fields, self.inner.max_record_bytes)?;
        Ok(record.filter(|record| record.is_live(now)))
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        match self.create_record(key, record, now).await? {
            Answer::Created => Ok(CreateOutcome::Created),
            Answer::Collision => Ok(CreateOutcome::Collision),
            answer => Err(failure(answer, self.inner.max_record_bytes)),
        }
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let mut invocation = UPDATE_SCRIPT.prepare_invoke();
        invocation.key(self.redis_key(key));
        self.changes_invocation(&mut invocation, changes, deadlines, now)?;
        match self.script(invocation).await? {
            Answer::Updated(version) => Ok(UpdateOutcome::Updated { version }),
            Answer::Gone => Ok(UpdateOutcome::Gone),
            Answer::Conflict(current) => Ok(UpdateOutcome::Conflict { current }),
            answer => Err(failure(answer, self.inner.max_record_bytes)),
        }
    }

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        let mut invocation = TOUCH_SCRIPT.prepare_invoke();
        invocation
            .key(self.redis_key(key))
            .arg(now.as_unix_millis())
            .arg(idle_deadline.as_unix_millis())
            .arg(millis(EXPIRY_SLACK));
        match self.script(invocation).await? {
            Answer::Touched => Ok(TouchOutcome::Touched),
            Answer::Gone => Ok(TouchOutcome::Gone),
            answer => Err(failure(answer, self.inner.max_record_bytes)),
        }
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        #[cfg(feature = "cluster")]
        if self.inner.target.is_cluster() {
            return self
                .cycle_in_steps((*old, *new), changes.clone(), deadlines, now)
                .await;
        }
        let mut invocation = CYCLE_SCRIPT.prepare_invoke();
        invocation.key(self.redis_key(old)).key(self.redis_key(new));
        self.changes_invocation(&mut invocation, changes, deadlines, now)?;
        let answer = self.script(invocation).await?;
        cycle_outcome(answer, self.inner.max_record_bytes)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.delete_key(key).await
    }

    /// Keys expire by their TTL: always `0`.
    async fn delete_expired(&self, _now: Timestamp) -> Result<u64, Error> {
        Ok(0)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default().with_native_expiry()
    }
}

/// Sets the prefix, timeout and record limit of a [`RedisStorage`].
#[must_use]
pub struct RedisStorageBuilder {
    target: Target,
    prefix: String,
    timeout: Duration,
    max_record_bytes: usize,
}

impl fmt::Debug for RedisStorageBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStorageBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("max_record_bytes", &self.max_record_bytes)
            .finish_non_exhaustive()
    }
}

impl RedisStorageBuilder {
    fn new(target: Target) -> Self {
        Self {
            target,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }

    /// The prefix of every session key (default [`DEFAULT_PREFIX`]).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The limit on each Redis call, connecting included (default
    /// [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        if let Target::Node {
            timeout: connect, ..
        } = &mut self.target
        {
            *connect = timeout;
        }
        self
    }

    /// The largest session data accepted (default
    /// [`DEFAULT_MAX_RECORD_BYTES`]).
    pub fn max_record_bytes(mut self, max_record_bytes: usize) -> Self {
        self.max_record_bytes = max_record_bytes;
        self
    }

    /// The storage.
    ///
    /// # Errors
    ///
    /// [`InvalidPrefix`] if the prefix holds `{` or `}`.
    pub fn build(self) -> Result<RedisStorage, InvalidPrefix> {
        if self.prefix.contains(['{', '}']) {
            return Err(InvalidPrefix(self.prefix));
        }
        Ok(self.build_infallible())
    }

    /// The storage with a prefix known to be valid.
    fn build_infallible(self) -> RedisStorage {
        RedisStorage {
            inner: Arc::new(Inner {
                target: self.target,
                prefix: self.prefix,
                timeout: self.timeout,
                max_record_bytes: self.max_record_bytes,
                round_trips: AtomicU64::new(0),
            }),
        }
    }
}
