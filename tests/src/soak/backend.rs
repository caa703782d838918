//! The storage under test, with what makes it fail and what must live as
//! long as it.

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_core::SessionStorage;
use session_memory::MemoryStorage;
use session_sqlite::SqliteStorage;

use super::Options;
use super::faults::{Injector, sqlite_locker};
use crate::redis_server::{RedisServer, try_storage};

/// Which storage to soak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
    Sqlite,
}

impl Backend {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "memory" => Some(Self::Memory),
            "redis" => Some(Self::Redis),
            "sqlite" => Some(Self::Sqlite),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Sqlite => "sqlite",
        }
    }
}

/// The layer's store timeout (its default), also Redis's own.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// A Redis that persists every write before answering it: a SIGKILL then
/// loses nothing acknowledged, so "no acknowledged write is lost" stays a
/// fair check across restarts. The append-only file lives in the server's
/// temporary directory, which a restart reuses.
const DURABLE_REDIS: [&str; 4] = ["--appendonly", "yes", "--appendfsync", "always"];

pub(crate) struct Store {
    pub(crate) storage: Arc<dyn SessionStorage>,
    pub(crate) injector: Option<Injector>,
    /// What the storage is, for the report.
    pub(crate) description: String,
    /// How it is made to fail, for the report.
    pub(crate) faults: String,
    /// A temporary directory or a server process, dropped after the run.
    _kept: Box<dyn Any + Send>,
}

pub(crate) async fn open(options: &Options) -> Result<Store, String> {
    match options.backend {
        Backend::Memory => Ok(Store {
            storage: Arc::new(MemoryStorage::new()),
            injector: None,
            description: "MemoryStorage in process".to_owned(),
            faults: "none (there is nothing outside the process to break)".to_owned(),
            _kept: Box::new(()),
        }),
        Backend::Redis => match std::env::var("REDIS_URL") {
            Ok(url) => external_redis(&url, options.seed),
            Err(_) => private_redis(options),
        },
        Backend::Sqlite => sqlite(options).await,
    }
}

fn external_redis(url: &str, seed: u64) -> Result<Store, String> {
    // A shared server: this run keeps to keys of its own.
    let prefix = format!("soak:{}:{seed}:", std::process::id());
    Ok(Store {
        storage: Arc::new(try_storage(url, &prefix, STORE_TIMEOUT)?),
        injector: None,
        description: format!("Redis at REDIS_URL {url}, prefix {prefix}"),
        faults: "none (a server this run did not start is never killed)".to_owned(),
        _kept: Box::new(()),
    })
}

fn private_redis(options: &Options) -> Result<Store, String> {
    let server = RedisServer::try_start(&DURABLE_REDIS)?;
    let storage = try_storage(&server.url(), "soak:", STORE_TIMEOUT)?;
    let description = format!(
        "private redis-server on port {} with appendonly yes, appendfsync always \
         (every write is on disk before Redis answers it)",
        server.port()
    );
    let faults = format!(
        "SIGKILL, restarted on the same port after {} s",
        options.fault_length.as_secs_f64()
    );
    let server = Arc::new(Mutex::new(server));
    Ok(Store {
        storage: Arc::new(storage),
        injector: Some(Injector::Redis(Arc::clone(&server))),
        description,
        faults,
        _kept: Box::new(server),
    })
}

async fn sqlite(options: &Options) -> Result<Store, String> {
    let dir = tempfile::tempdir().map_err(|error| format!("temporary directory: {error}"))?;
    let path = dir.path().join("sessions.db");
    let url = format!("sqlite://{}", path.display());
    let storage = SqliteStorage::open(&url)
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    Ok(Store {
        storage: Arc::new(storage),
        injector: Some(sqlite_locker(&url).await?),
        description: format!("SQLite file {} (WAL)", path.display()),
        faults: format!(
            "another connection holds BEGIN IMMEDIATE for {} s",
            options.fault_length.as_secs_f64()
        ),
        _kept: Box::new(dir),
    })
}
