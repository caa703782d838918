//! [`RedisStorage`]: how to make one, and its [`SessionStorage`] operations.

mod call;
mod write;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use redis::Client;
use redis::aio::ConnectionManager;
use session_core::{
    Capabilities, ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, Listed, Login,
    LoginOutcome, Record, Revoke, RotateOutcome, SessionKey, SessionStorage, Timestamp,
    TouchOutcome, UpdateOutcome, UserKey, async_trait,
};

use crate::answer::outcome;
use crate::builder::{DEFAULT_TIMEOUT, RedisStorageBuilder};
use crate::connection::Target;
use crate::layout::{Fields, decode_record, forward_of, is_sealed};
use crate::write_token;

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
    #[cfg(all(feature = "test-util", feature = "cluster"))]
    hook: Option<Arc<crate::hook::StepHook>>,
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

    /// A builder for storage on the Redis server of `client`.
    pub fn builder(client: Client) -> RedisStorageBuilder {
        RedisStorageBuilder::new(Target::node(client, DEFAULT_TIMEOUT))
    }

    /// Redis calls made so far (one round trip each; a script reload after
    /// `NOSCRIPT` adds one more that is not counted). Feature `test-util`.
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn round_trips(&self) -> u64 {
        self.inner
            .round_trips
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The storage a builder describes.
    pub(crate) fn new(
        target: Target,
        prefix: String,
        timeout: Duration,
        max_record_bytes: usize,
        #[cfg(all(feature = "test-util", feature = "cluster"))] hook: Option<
            Arc<crate::hook::StepHook>,
        >,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                target,
                prefix,
                timeout,
                max_record_bytes,
                round_trips: AtomicU64::new(0),
                #[cfg(all(feature = "test-util", feature = "cluster"))]
                hook,
            }),
        }
    }

    /// The prefix of every key.
    pub(crate) fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Whether keys may live on different nodes.
    pub(crate) fn is_cluster(&self) -> bool {
        self.inner.target.is_cluster()
    }

    /// The step hook of a test, if any (feature `test-util`).
    #[cfg(all(feature = "test-util", feature = "cluster"))]
    pub(crate) fn hook(&self) -> Option<&crate::hook::StepHook> {
        self.inner.hook.as_deref()
    }

    /// The largest session data accepted.
    pub(crate) fn max_record_bytes(&self) -> usize {
        self.inner.max_record_bytes
    }
}

/// How often, and how far apart, `load_following` reads a sealed record
/// again: 200 ms at most, far more than a move's few round trips.
const SEAL_READS: usize = 100;
const SEAL_PAUSE: Duration = Duration::from_millis(2);

#[async_trait]
impl SessionStorage for RedisStorage {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        let fields: Fields = self.key_command("HGETALL", key).await?;
        // The size is checked once the reply is here: checking it on the
        // server would turn this `HGETALL` into a script on every load.
        let record = decode_record(fields, self.max_record_bytes())?;
        Ok(record.filter(|record| record.is_live(now)))
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        let answer = self.create_record(key, record, now).await?;
        outcome(answer, self.max_record_bytes())
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let token = write_token::fresh()?;
        self.update_bound((key, &token), None, changes, deadlines, now)
            .await
    }

    /// An unbound `loaded` still as stored is one compare-and-write; a
    /// bound one names the index to keep: one script on one node.
    async fn update_from(
        &self,
        key: &SessionKey,
        loaded: &Record,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        self.update_loaded((key, loaded), changes, (deadlines, now))
            .await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        self.touch_bound(key, None, idle_deadline, now).await
    }

    /// A bound `loaded` names the index to keep: one script on one node.
    async fn touch_from(
        &self,
        key: &SessionKey,
        loaded: &Record,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        self.touch_bound(key, write::binding(loaded), idle_deadline, now)
            .await
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        // The keys may live on different nodes there: no one script.
        #[cfg(feature = "cluster")]
        if self.is_cluster() {
            return self
                .cycle_in_steps((*old, *new), changes.clone(), deadlines, now)
                .await;
        }
        self.cycle_on_node((old, new), changes, deadlines, now)
            .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.delete_through(key).await
    }

    /// Keys expire by their TTL: always `0`.
    async fn delete_expired(&self, _now: Timestamp) -> Result<u64, Error> {
        Ok(0)
    }

    async fn login(
        &self,
        old: Option<&SessionKey>,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        #[cfg(feature = "cluster")]
        if self.is_cluster() {
            let keys = (old.copied(), *new);
            return self
                .login_in_steps(keys, changes.clone(), deadlines, login.clone(), now)
                .await;
        }
        self.login_on_node((old, new), changes, deadlines, login, now)
            .await
    }

    async fn list(&self, user: &UserKey, now: Timestamp) -> Result<Vec<Listed>, Error> {
        self.list_sessions(user, now).await
    }

    async fn revoke(&self, user: &UserKey, which: &Revoke, now: Timestamp) -> Result<u64, Error> {
        #[cfg(feature = "cluster")]
        if self.is_cluster() {
            return self.revoke_in_steps(user, which, now).await;
        }
        self.revoke_on_node(user, which, now).await
    }

    async fn rotate(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        grace_end: Timestamp,
        now: Timestamp,
    ) -> Result<RotateOutcome, Error> {
        #[cfg(feature = "cluster")]
        if self.is_cluster() {
            return self.rotate_in_steps((*old, *new), grace_end, now).await;
        }
        self.rotate_on_node((old, new), grace_end, now).await
    }

    /// One `HGETALL`, and a second for a forward. On Redis Cluster, a
    /// record sealed by a move is read again until the move is done
    /// (briefly: a few round trips), so that a rotation in steps leaves no
    /// gap in which its old id finds nothing.
    async fn load_following(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<(SessionKey, Record)>, Error> {
        let mut fields: Fields = self.key_command("HGETALL", key).await?;
        for _ in 0..SEAL_READS {
            if !is_sealed(&fields) {
                break;
            }
            tokio::time::sleep(SEAL_PAUSE).await;
            fields = self.key_command("HGETALL", key).await?;
        }
        let (at, fields) = match forward_of(&fields) {
            Some((to, end)) if now < end => (to, self.key_command("HGETALL", &to).await?),
            Some(_) => return Ok(None),
            None => (*key, fields),
        };
        let record = decode_record(fields, self.max_record_bytes())?;
        Ok(record
            .filter(|record| record.is_live(now))
            .map(|record| (at, record)))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_native_expiry()
            .with_accounts()
            .with_rotation()
    }
}
