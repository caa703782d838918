//! The fault injectors (Redis killed and restarted, SQLite's write lock
//! held by another connection) and their schedule.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{Connection, SqliteConnection};

use super::lock;
use super::timeline::Timeline;
use crate::redis_server::RedisServer;

/// When faults start, how long each lasts, how often they come.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    pub(crate) every: Duration,
    pub(crate) length: Duration,
    /// Quiet time the last window leaves before the run ends, so the end
    /// of the run is checked with the backend healthy.
    pub(crate) tail: Duration,
}

/// What makes the backend fail.
pub(crate) enum Injector {
    /// SIGKILL, then a restart on the same port and directory.
    Redis(Arc<Mutex<RedisServer>>),
    /// Another connection holding the write lock (`BEGIN IMMEDIATE`).
    Sqlite(SqliteConnection),
}

impl Injector {
    /// One fault of `length`, recorded as a window of `timeline`.
    async fn inject(&mut self, timeline: &Timeline, length: Duration) -> Result<(), String> {
        let window = timeline.open();
        let injected = match self {
            Self::Redis(server) => outage(server, length).await,
            Self::Sqlite(connection) => hold_write_lock(connection, length).await,
        };
        timeline.close(window);
        injected
    }

    /// Makes sure the backend works again (a restart that failed is tried
    /// once more), so the end of the run is checked on a healthy backend.
    async fn recover(&mut self) -> Result<(), String> {
        match self {
            Self::Redis(server) => {
                let server = Arc::clone(server);
                blocking(move || {
                    let mut server = lock(&server);
                    if server.answers() {
                        return Ok(());
                    }
                    server.try_restart()
                })
                .await
            }
            Self::Sqlite(_) => Ok(()),
        }
    }
}

/// Kills the server, waits `length`, starts it again.
async fn outage(server: &Arc<Mutex<RedisServer>>, length: Duration) -> Result<(), String> {
    let killed = Arc::clone(server);
    blocking(move || {
        lock(&killed).kill();
        Ok(())
    })
    .await?;
    tokio::time::sleep(length).await;
    let restarted = Arc::clone(server);
    blocking(move || lock(&restarted).try_restart()).await
}

/// Runs blocking process work off the runtime's workers.
async fn blocking(
    work: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| format!("fault injection task failed: {error}"))?
}

/// Holds SQLite's write lock for `length` from another connection.
async fn hold_write_lock(
    connection: &mut SqliteConnection,
    length: Duration,
) -> Result<(), String> {
    let held = async {
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *connection)
            .await?;
        tokio::time::sleep(length).await;
        sqlx::query("COMMIT").execute(&mut *connection).await
    };
    if let Err(error) = held.await {
        // Whatever failed, the lock must not stay held.
        let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
        return Err(format!("holding the SQLite write lock failed: {error}"));
    }
    Ok(())
}

/// Opens the connection that takes the write lock.
pub(crate) async fn sqlite_locker(url: &str) -> Result<Injector, String> {
    SqliteConnection::connect(url)
        .await
        .map(Injector::Sqlite)
        .map_err(|error| format!("{url}: {error}"))
}

/// Injects faults on `schedule` until the run ends at `end`; the errors of
/// injections that failed.
pub(crate) async fn inject(
    mut injector: Injector,
    schedule: Schedule,
    timeline: Arc<Timeline>,
    end: Instant,
) -> Vec<String> {
    let mut errors = Vec::new();
    // The first fault comes once traffic has settled.
    let mut next = timeline.started() + schedule.every / 3;
    while next + schedule.length + schedule.tail <= end {
        tokio::time::sleep_until(next.into()).await;
        if let Err(error) = injector.inject(&timeline, schedule.length).await {
            errors.push(error);
        }
        next += schedule.every;
    }
    if let Err(error) = injector.recover().await {
        errors.push(error);
    }
    errors
}
