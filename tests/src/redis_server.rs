//! Real Redis for the tests: a `redis-server` started on a free loopback
//! port in a temporary directory, with nothing persisted unless the extra
//! arguments ask for it, stopped when dropped; or the server named by
//! `REDIS_URL`. The same for a three-master Redis Cluster, or
//! `REDIS_CLUSTER_URLS`; and a cluster that clients reach only through
//! reply-dropping proxies ([`ProxiedCluster`]).
//!
//! Without `redis-server` the Redis tests print that they were skipped and
//! why; with `SESSION_TEST_REQUIRE_REDIS=1` (as CI sets) that is a failure.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use session_core::SessionId;
use session_redis::RedisStorage;

use crate::reply_dropper::{Faults, ReplyDropper, reserve_port};

/// Where a test's Redis is.
pub enum Redis {
    /// A server this test started; stopped when dropped.
    Spawned(RedisServer),
    /// A server from `REDIS_URL`, shared: the test keeps to its own prefix.
    External(String),
}

impl Redis {
    /// The test's Redis, or `None` (after saying why) when there is none.
    pub fn start() -> Option<Self> {
        if let Ok(url) = std::env::var("REDIS_URL") {
            return Some(Self::External(url));
        }
        if !available("redis-server") {
            skip_or_fail("redis-server is not installed and REDIS_URL is not set");
            return None;
        }
        Some(Self::Spawned(RedisServer::start(&[])))
    }

    pub fn url(&self) -> String {
        match self {
            Self::Spawned(server) => server.url(),
            Self::External(url) => url.clone(),
        }
    }
}

/// Storage on the Redis server at `url`, under `prefix`.
pub fn storage(url: &str, prefix: &str, timeout: Duration) -> RedisStorage {
    try_storage(url, prefix, timeout).unwrap()
}

/// [`storage`], saying what is wrong with `url` or `prefix` instead of
/// panicking.
pub fn try_storage(url: &str, prefix: &str, timeout: Duration) -> Result<RedisStorage, String> {
    let client = redis::Client::open(url).map_err(|error| format!("{url}: {error}"))?;
    RedisStorage::builder(client)
        .prefix(prefix)
        .timeout(timeout)
        .build()
        .map_err(|error| format!("prefix {prefix:?}: {error}"))
}

/// A key prefix no other test uses.
pub fn unique_prefix(label: &str) -> String {
    let id = SessionId::generate().unwrap().key().to_string();
    format!("test:{label}:{}:", &id[..12])
}

/// Whether `program` runs.
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn skip_or_fail(why: &str) {
    if std::env::var("SESSION_TEST_REQUIRE_REDIS").is_ok_and(|value| value == "1") {
        panic!("SESSION_TEST_REQUIRE_REDIS=1 but {why}");
    }
    eprintln!("skipped: {why} (set SESSION_TEST_REQUIRE_REDIS=1 to make this a failure)");
}

/// A `redis-server` process.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port with `extra` arguments, and waits
    /// until it answers. A port taken between picking and binding it is
    /// noticed (the server exits) and another one is tried.
    pub fn start(extra: &[&str]) -> Self {
        Self::try_start(extra).unwrap_or_else(|why| panic!("{why}"))
    }

    /// [`start`](Self::start), saying why the server did not start instead
    /// of panicking.
    pub fn try_start(extra: &[&str]) -> Result<Self, String> {
        for _ in 0..5 {
            let port = free_port()?;
            let mut server = Self {
                child: None,
                port,
                dir: temp_dir(port)?,
                extra: extra.iter().map(|arg| (*arg).to_owned()).collect(),
            };
            if server.launch()? {
                return Ok(server);
            }
        }
        Err("redis-server did not start on any of five free ports".to_owned())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Whether the server answers `PING` now.
    pub fn answers(&self) -> bool {
        answers(self.port)
    }

    /// Kills the server at once, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, in the same directory (so
    /// a server started with `--appendonly yes` reloads its data).
    pub fn restart(&mut self) {
        self.try_restart().unwrap_or_else(|why| panic!("{why}"));
    }

    /// [`restart`](Self::restart), saying why the server did not come back
    /// instead of panicking.
    pub fn try_restart(&mut self) -> Result<(), String> {
        self.kill();
        if self.launch()? {
            Ok(())
        } else {
            Err(format!(
                "redis-server did not restart on port {}",
                self.port
            ))
        }
    }

    /// Starts the process and waits until it answers; `Ok(false)` if it
    /// exited (its port was taken).
    fn launch(&mut self) -> Result<bool, String> {
        let log = self.dir.join("redis.log");
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let spawned = command
            .spawn()
            .map_err(|error| format!("redis-server could not be started: {error}"))?;
        let child = self.child.insert(spawned);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(self.port) {
            if child.try_wait().is_ok_and(|exited| exited.is_some()) {
                self.child = None;
                return Ok(false);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "redis-server on port {} did not answer; its log:\n{}",
                    self.port,
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(true)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A connection to the Redis server on `port`, if one answers quickly.
fn connection(port: u16) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    client
        .get_connection_with_timeout(Duration::from_millis(200))
        .ok()
}

/// Whether a Redis server on `port` answers `PING`.
fn answers(port: u16) -> bool {
    connection(port)
        .is_some_and(|mut connection| redis::cmd("PING").query::<String>(&mut connection).is_ok())
}

/// A loopback port nobody listens on right now, at most 55535: a cluster
/// node also listens on its port + 10000.
fn free_port() -> Result<u16, String> {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| format!("no free loopback port: {error}"))?
            .port();
        if port <= 55_535 {
            return Ok(port);
        }
    }
}

fn temp_dir(port: u16) -> Result<PathBuf, String> {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "session-redis-{}-{port}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    Ok(dir)
}

/// A three-master Redis Cluster.
pub enum Cluster {
    /// Three servers this test started and joined.
    Spawned(Vec<RedisServer>),
    /// Seed nodes from `REDIS_CLUSTER_URLS` (comma-separated).
    External(Vec<String>),
}

impl Cluster {
    /// The test's cluster, or `None` (after saying why) when there is none.
    pub fn start() -> Option<Self> {
        if let Ok(urls) = std::env::var("REDIS_CLUSTER_URLS") {
            return Some(Self::External(urls.split(',').map(str::to_owned).collect()));
        }
        if !cluster_tools_available() {
            return None;
        }
        Some(Self::Spawned(start_cluster(&[&[], &[], &[]])))
    }

    pub fn urls(&self) -> Vec<String> {
        match self {
            Self::Spawned(nodes) => nodes.iter().map(RedisServer::url).collect(),
            Self::External(urls) => urls.clone(),
        }
    }
}

/// Whether this machine can start a cluster (after saying why not).
fn cluster_tools_available() -> bool {
    if !available("redis-server") || !available("redis-cli") {
        skip_or_fail(
            "redis-server or redis-cli is not installed and REDIS_CLUSTER_URLS is not set",
        );
        return false;
    }
    true
}

/// Starts three cluster nodes, each with its own `extra` arguments, and
/// joins them as masters.
fn start_cluster(extra: &[&[&str]; 3]) -> Vec<RedisServer> {
    let nodes = launch_cluster_nodes(extra);
    join_cluster(&nodes);
    nodes
}

/// Starts three cluster nodes, each with its own `extra` arguments.
fn launch_cluster_nodes(extra: &[&[&str]; 3]) -> Vec<RedisServer> {
    extra
        .iter()
        .map(|extra| {
            let mut arguments = vec![
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ];
            arguments.extend_from_slice(extra);
            RedisServer::start(&arguments)
        })
        .collect()
}

/// Joins `nodes` as the masters of one cluster and waits until it is ready.
fn join_cluster(nodes: &[RedisServer]) {
    let addresses: Vec<String> = nodes
        .iter()
        .map(|node| format!("127.0.0.1:{}", node.port()))
        .collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli runs");
    assert!(created.success(), "redis-cli --cluster create failed");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !nodes.iter().all(|node| cluster_ok(node.port())) {
        assert!(
            Instant::now() < deadline,
            "the cluster did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A three-master cluster that clients reach only through reply-dropping
/// proxies: each node announces its proxy's port (`cluster-announce-port`),
/// so `CLUSTER SLOTS` and redirects send clients there. The nodes talk to
/// each other directly.
pub struct ProxiedCluster {
    pub faults: Arc<Faults>,
    proxies: Vec<ReplyDropper>,
    _nodes: Vec<RedisServer>,
}

impl ProxiedCluster {
    /// The cluster, or `None` (after saying why) when this machine cannot
    /// start one; an external cluster cannot be proxied this way.
    pub fn start() -> Option<Self> {
        if !cluster_tools_available() {
            return None;
        }
        let listeners = [reserve_port(), reserve_port(), reserve_port()];
        let ports = listeners
            .each_ref()
            .map(|listener| listener.local_addr().unwrap().port().to_string());
        let extra = ports.each_ref().map(|port| {
            [
                "--cluster-announce-ip",
                "127.0.0.1",
                "--cluster-announce-port",
                port,
            ]
        });
        let nodes = launch_cluster_nodes(&extra.each_ref().map(|extra| &extra[..]));
        let faults = Faults::new();
        let proxies = listeners
            .into_iter()
            .zip(&nodes)
            .map(|(listener, node)| {
                let upstream = SocketAddr::from(([127, 0, 0, 1], node.port()));
                ReplyDropper::serve(listener, upstream, faults.clone())
            })
            .collect();
        // After the proxies listen: `redis-cli` checks the cluster through
        // the addresses the nodes announce.
        join_cluster(&nodes);
        Some(Self {
            faults,
            proxies,
            _nodes: nodes,
        })
    }

    /// Seed URLs: the proxies.
    pub fn urls(&self) -> Vec<String> {
        self.proxies.iter().map(ReplyDropper::url).collect()
    }
}

fn cluster_ok(port: u16) -> bool {
    connection(port).is_some_and(|mut connection| {
        redis::cmd("CLUSTER")
            .arg("INFO")
            .query::<String>(&mut connection)
            .is_ok_and(|info| info.contains("cluster_state:ok"))
    })
}
