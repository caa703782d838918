//! This process's writers take turns.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

/// Whose turn it is to write, in this process: a fair queue, shared by every
/// clone of one storage.
///
/// SQLite runs one writer at a time, and one that finds the database locked
/// sleeps in the busy handler (1 ms, then longer, up to 100 ms) rather than
/// waiting its turn: under load, unlucky writers kept losing and waited for
/// seconds. The process queues its own writers here; the busy timeout is
/// left to writers in other processes.
#[derive(Clone, Default)]
pub(crate) struct Writers(Arc<Mutex<()>>);

/// One writer's turn; the next writer's starts when it is dropped.
pub(crate) type Turn<'a> = MutexGuard<'a, ()>;

impl Writers {
    /// Waits for this writer's turn: Tokio's mutex hands itself over in the
    /// order it was asked for.
    pub(crate) async fn turn(&self) -> Turn<'_> {
        self.0.lock().await
    }
}
