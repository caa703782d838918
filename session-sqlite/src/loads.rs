//! Batched loads: the loads of concurrent requests share a statement.
//!
//! A load is one statement through sqlx's worker thread, and under load
//! most of its cost is that trip (two thread switches and their wake-ups),
//! not the row. So a load that starts while others are under way goes to
//! one task per storage, which takes what has queued while it read the
//! last batch and reads it with one `SELECT ... WHERE key IN (...)` per
//! piece of up to 64 distinct keys, on a connection of its own. A load
//! that starts while no other is under way is read at once, through the
//! pool: the trip to the task would only add to its latency.
//!
//! Each statement outside a transaction reads the database as committed
//! when it starts, so a load sees every write acknowledged before it was
//! queued. A row that does not decode fails only the loads of its key; a
//! failed statement fails the loads of its batch. Like the batch writer,
//! the loader runs on the runtime of the load that started it, and again
//! on a later load's if that runtime has gone (loads waiting on the old
//! one then fail).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use session_core::{Error, Record, SessionKey, Timestamp};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{FromRow, Row};
use tokio::sync::{mpsc, oneshot};

use crate::SqliteStorage;
use crate::queue::TaskQueue;
use crate::row::{KeyedRow, millis, read_error, session_key};
use crate::schema;

/// The most loads one batch takes from the queue.
const MAX_BATCH: usize = 256;

/// A queued load: the record under `key` if live at `now`, and where it
/// goes.
pub(crate) struct QueuedLoad {
    key: SessionKey,
    now: Timestamp,
    done: oneshot::Sender<Result<Option<Record>, Error>>,
}

/// A storage's loads: the queue to its loader, and how many are under way.
#[derive(Clone, Default)]
pub(crate) struct Loads {
    queue: TaskQueue<QueuedLoad>,
    under_way: Arc<AtomicUsize>,
}

/// One load under way, counted until dropped.
struct UnderWay(Arc<AtomicUsize>);

impl Loads {
    /// Counts a load under way; whether it is the only one.
    fn start(&self) -> (UnderWay, bool) {
        let before = self.under_way.fetch_add(1, Ordering::AcqRel);
        (UnderWay(Arc::clone(&self.under_way)), before == 0)
    }
}

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a batch found: the row under each key that has a live one, not
/// yet decoded (each load decodes its own, so that a row refused is
/// refused to each with an error of its own).
type Found = HashMap<SessionKey, SqliteRow>;

/// A batch failed: every load in it reports the same failure.
#[derive(Debug, thiserror::Error)]
#[error("a batch of session loads failed")]
struct BatchFailed(#[source] Arc<Error>);

impl SqliteStorage {
    /// The record under `key`, if its earlier deadline is after `now` (the
    /// caller checks both): at once if no other load is under way, else
    /// with whatever other loads are queued.
    pub(crate) async fn load_batched(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<Record>, Error> {
        let (_under_way, alone) = self.loads.start();
        if alone {
            return self.read(&self.pool, key, Some(now)).await;
        }
        let (done, found) = oneshot::channel();
        let load = QueuedLoad {
            key: *key,
            now,
            done,
        };
        self.loads.queue.send(load, || self.start_loader());
        found
            .await
            .unwrap_or_else(|_| Err(Error::backend("the session loader stopped")))
    }

    /// Starts the loader, on a [`detached`](Self::detached) copy.
    fn start_loader(&self) -> mpsc::UnboundedSender<QueuedLoad> {
        let (sender, queue) = mpsc::unbounded_channel();
        tokio::spawn(self.detached().load_queued(queue));
        sender
    }

    /// The loader's loop.
    async fn load_queued(self, mut queue: mpsc::UnboundedReceiver<QueuedLoad>) {
        let mut connection = None;
        let mut batch = Vec::new();
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let found = self.read_on(&mut connection, &batch).await;
            if found.is_err() {
                connection = None;
            }
            self.answer(batch.drain(..), found);
        }
    }

    /// Reads the keys of `loads` on the loader's connection, live at the
    /// earliest of their times (each load checks its own).
    async fn read_on(
        &self,
        connection: &mut Option<SqliteConnection>,
        loads: &[QueuedLoad],
    ) -> Result<Found, Error> {
        let connection = self.own_connection(connection).await?;
        let Some(now) = loads.iter().map(|load| load.now).min() else {
            return Ok(Found::new());
        };
        let mut keys: Vec<SessionKey> = loads.iter().map(|load| load.key).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut found = Found::new();
        for piece in schema::pieces(&keys) {
            self.read_many(connection, piece, now, &mut found).await?;
        }
        Ok(found)
    }

    /// One statement: the live rows under `keys` (a size of
    /// [`BATCH_SIZES`](schema::BATCH_SIZES)) into `found`.
    async fn read_many(
        &self,
        connection: &mut SqliteConnection,
        keys: &[SessionKey],
        now: Timestamp,
        found: &mut Found,
    ) -> Result<(), Error> {
        let size = schema::statement_for(keys.len())?;
        let query = sqlx::query(self.sql.load_many[size].get())
            .bind(millis(now))
            .bind(self.longest_data());
        let query = keys
            .iter()
            .fold(query, |query, key| query.bind(key.as_bytes().as_slice()));
        let rows = query.fetch_all(connection).await.map_err(read_error)?;
        for row in rows {
            // The statement matched the key as one of these 32-byte blobs.
            let key = session_key(row.try_get(0).map_err(Error::decode)?)?;
            found.insert(key, row);
        }
        Ok(())
    }

    /// Sends each load the record its key holds, or the batch's failure.
    fn answer(&self, loads: impl Iterator<Item = QueuedLoad>, found: Result<Found, Error>) {
        let found = match found {
            Ok(found) => found,
            Err(error) => {
                let error = Arc::new(error);
                for load in loads {
                    let failed = Error::backend(BatchFailed(Arc::clone(&error)));
                    let _ = load.done.send(Err(failed));
                }
                return;
            }
        };
        for load in loads {
            let record = found.get(&load.key).map(|row| self.record(row)).transpose();
            // A request that stopped waiting has dropped its receiver.
            let _ = load.done.send(record);
        }
    }

    /// The record in a row the loader read, or why it was refused.
    fn record(&self, row: &SqliteRow) -> Result<Record, Error> {
        let (_, record) = KeyedRow::from_row(row)
            .map_err(read_error)?
            .into_record(self.max_record_bytes)?;
        Ok(record)
    }
}
