//! The queue to a task that serves one storage's batched calls (writes in
//! `batch`, loads in `loads`).

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

/// The queue to a storage's task, started on first use (in the runtime of
/// that use) and again if the runtime it ran on has gone. Shared by every
/// clone of one storage.
pub(crate) struct TaskQueue<T>(Arc<Mutex<Option<mpsc::UnboundedSender<T>>>>);

impl<T> Clone for TaskQueue<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for TaskQueue<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T> TaskQueue<T> {
    /// Queues `item`, starting the task with `start` if none runs.
    pub(crate) fn send(&self, item: T, start: impl Fn() -> mpsc::UnboundedSender<T>) {
        let mut sender = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let item = match sender.as_ref().filter(|sender| !sender.is_closed()) {
            Some(running) => match running.send(item) {
                Ok(()) => return,
                Err(mpsc::error::SendError(item)) => item,
            },
            None => item,
        };
        let started = start();
        // A task started just now holds its receiver: this send succeeds,
        // and if it did not, dropping `item` answers its request.
        let _ = started.send(item);
        *sender = Some(started);
    }
}
