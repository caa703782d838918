//! The task that deletes expired rows.

use std::time::Duration;

use session_core::SessionStorage;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::SqliteStorage;

/// The cleanup task of [`SqliteStorage::spawn_cleanup`]; dropping it stops
/// the task.
#[derive(Debug)]
#[must_use = "the cleanup task stops when its handle is dropped"]
pub struct CleanupTask(JoinHandle<()>);

impl Drop for CleanupTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SqliteStorage {
    /// Deletes rows expired by the configured clock (the system clock, or
    /// the one given to `SqliteStorageBuilder::clock` with feature
    /// `test-util`) every `period` (at least a millisecond) until the
    /// returned handle is dropped or the pool is closed. A failure is
    /// logged and the next period tries again.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    #[must_use = "the cleanup task stops when its handle is dropped"]
    pub fn spawn_cleanup(&self, period: Duration) -> CleanupTask {
        let storage = self.clone();
        let period = period.max(Duration::from_millis(1));
        CleanupTask(tokio::spawn(
            async move { storage.clean_up_every(period).await },
        ))
    }

    /// The cleanup loop; the first deletion is one period after the start.
    async fn clean_up_every(self, period: Duration) {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            if self.pool.is_closed() {
                return;
            }
            match self.delete_expired(self.clock.now()).await {
                Ok(deleted) => tracing::debug!(deleted, "expired sessions deleted"),
                Err(error) => {
                    tracing::error!(%error, "deleting expired sessions failed; retrying next period")
                }
            }
        }
    }
}
