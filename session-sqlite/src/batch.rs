//! Group commit: the fast writes of concurrent requests share a
//! transaction and, a kind at a time, a statement.
//!
//! A create's insert and an update's write-if-unchanged are each one
//! statement, and alone each is its own transaction: one trip to sqlx's
//! worker thread and one WAL commit per request. Under load most of a
//! write's cost is those two, not the row. So these writes go to one task
//! per storage, which takes what has queued while it wrote the last batch
//! and writes it all in its turn: inserts as one multi-row `INSERT`,
//! updates as one `UPDATE ... FROM (VALUES ...)`, both with `RETURNING` to
//! tell each request whether its row was written, in one transaction. A
//! request is answered only once that transaction has committed; if it
//! fails, every request of the batch gets the failure and nothing of the
//! batch is written. A batch of one is written as it was before batches,
//! so a request alone costs what it did.
//!
//! A request that stops waiting (a timeout, a dropped future) leaves its
//! write queued: it is written, whole, with its batch, as a statement
//! already waiting for SQLite's lock would be.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use session_core::{Error, SessionKey};
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::SqliteStorage;
use crate::queue::TaskQueue;
use crate::row::{Columns, ReadStamp};
use crate::schema::{self, BATCH_SIZES};

/// The most writes one batch takes from the queue.
const MAX_BATCH: usize = 256;

/// A write that can share a transaction and a statement with others.
pub(crate) enum Write {
    /// The row under `key`, if the key is free.
    Insert { key: SessionKey, columns: Columns },
    /// A write-if-unchanged.
    IfUnchanged(IfUnchanged),
}

/// The row under `key`, if the row there is still the one `read` stamps
/// and is live at `now` (Unix milliseconds); the columns' binding is the
/// read row's, which [`IfUnchanged::new`], the only way to make one,
/// checks: a write never changes a binding (only a login does, by
/// inserting a new row).
#[derive(Clone)]
pub(crate) struct IfUnchanged {
    pub(crate) key: SessionKey,
    pub(crate) read: ReadStamp,
    pub(crate) columns: Columns,
    pub(crate) now: i64,
}

impl IfUnchanged {
    /// A write-if-unchanged; refused if it would change the row's binding.
    pub(crate) fn new(
        key: SessionKey,
        read: ReadStamp,
        columns: Columns,
        now: i64,
    ) -> Result<Self, Error> {
        let written = columns
            .binding
            .as_ref()
            .map(|bound| bound.user_key.as_slice());
        if written != read.user_key() {
            return Err(Error::backend("a write may not change a session's binding"));
        }
        Ok(Self {
            key,
            read,
            columns,
            now,
        })
    }
}

impl Write {
    fn key(&self) -> &SessionKey {
        match self {
            Self::Insert { key, .. } | Self::IfUnchanged(IfUnchanged { key, .. }) => key,
        }
    }

    fn is_insert(&self) -> bool {
        matches!(self, Self::Insert { .. })
    }
}

/// A queued write and where its outcome goes: `true` if its row was
/// written.
pub(crate) struct Queued {
    write: Write,
    done: oneshot::Sender<Result<bool, Error>>,
}

/// The queue to a storage's batch writer.
pub(crate) type Batches = TaskQueue<Queued>;

/// A batch failed: every write in it reports the same failure.
#[derive(Debug, thiserror::Error)]
#[error("a batch of session writes failed")]
struct BatchFailed(#[source] Arc<Error>);

impl SqliteStorage {
    /// Writes `write` with whatever other writes are queued with it;
    /// `true` if its row was written.
    pub(crate) async fn write_batched(&self, write: Write) -> Result<bool, Error> {
        let (done, outcome) = oneshot::channel();
        self.batches
            .send(Queued { write, done }, || self.start_writer());
        outcome
            .await
            .unwrap_or_else(|_| Err(Error::backend("the session batch writer stopped")))
    }

    /// Starts the batch writer, on a [`detached`](Self::detached) copy.
    fn start_writer(&self) -> mpsc::UnboundedSender<Queued> {
        let (sender, queue) = mpsc::unbounded_channel();
        tokio::spawn(self.detached().write_queued(queue));
        sender
    }

    /// The batch writer's loop, on a connection of its own, opened at the
    /// first batch and again after a failed one: a connection that only
    /// this writer writes through keeps its page cache from batch to batch
    /// (SQLite drops a connection's cache when another connection has
    /// written), where one taken from the pool each time re-read the pages
    /// of every insert. Not from the pool, so closing the pool never waits
    /// for the writer.
    async fn write_queued(self, mut queue: mpsc::UnboundedReceiver<Queued>) {
        let mut connection = None;
        let mut batch = Vec::new();
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let writes: Vec<Write>;
            let answers: Vec<oneshot::Sender<Result<bool, Error>>>;
            (writes, answers) = batch
                .drain(..)
                .map(|queued| (queued.write, queued.done))
                .unzip();
            let outcomes = self.write_on(&mut connection, &writes).await;
            if outcomes.is_err() {
                connection = None;
            }
            answer(answers, outcomes);
        }
    }

    /// Writes `writes` on the writer's connection, opening it if needed.
    async fn write_on(
        &self,
        connection: &mut Option<SqliteConnection>,
        writes: &[Write],
    ) -> Result<Vec<bool>, Error> {
        let connection = self.own_connection(connection).await?;
        self.write_batch(connection, writes).await
    }

    /// Writes `writes` in this process's turn: alone as before batches,
    /// else in one transaction.
    async fn write_batch(
        &self,
        connection: &mut SqliteConnection,
        writes: &[Write],
    ) -> Result<Vec<bool>, Error> {
        let _turn = self.writers.turn().await;
        if let [write] = writes {
            return Ok(vec![self.write_alone(connection, write).await?]);
        }
        let mut tx = connection
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(Error::backend)?;
        let mut written = vec![false; writes.len()];
        for statement in statements(writes) {
            let keys = self.write_many(&mut tx, writes, &statement).await?;
            for index in statement {
                written[index] = keys.contains(writes[index].key());
            }
        }
        tx.commit().await.map_err(Error::backend)?;
        Ok(written)
    }

    /// One write as its own statement.
    async fn write_alone(
        &self,
        connection: &mut SqliteConnection,
        write: &Write,
    ) -> Result<bool, Error> {
        match write {
            Write::Insert { key, columns } => self.insert(connection, key, columns.clone()).await,
            Write::IfUnchanged(write) => self.write_if_unchanged(connection, write.clone()).await,
        }
    }

    /// The writes at `indexes` (all of one kind, each key once, a size of
    /// [`BATCH_SIZES`]) as one statement; the keys it wrote.
    async fn write_many(
        &self,
        connection: &mut SqliteConnection,
        writes: &[Write],
        indexes: &[usize],
    ) -> Result<HashSet<SessionKey>, Error> {
        let size = schema::statement_for(indexes.len())?;
        let inserts = writes[indexes[0]].is_insert();
        let sql = if inserts {
            &self.sql.insert_many[size]
        } else {
            &self.sql.write_many_if_unchanged[size]
        };
        let query = indexes
            .iter()
            .fold(sqlx::query_scalar(sql.get()), |query, index| {
                bind(query, &writes[*index])
            });
        let keys: Vec<Vec<u8>> = query.fetch_all(connection).await.map_err(Error::backend)?;
        keys.into_iter().map(crate::row::session_key).collect()
    }
}

type ScalarQuery<'q> =
    sqlx::query::QueryScalar<'q, sqlx::Sqlite, Vec<u8>, sqlx::sqlite::SqliteArguments>;

/// Binds one row of a multi-row statement, in the order `schema` lists
/// its columns.
fn bind<'q>(query: ScalarQuery<'q>, write: &'q Write) -> ScalarQuery<'q> {
    match write {
        Write::Insert { key, columns } => {
            let binding = columns.binding.as_ref();
            query
                .bind(key.as_bytes().as_slice())
                .bind(columns.data.as_slice())
                .bind(columns.created_at)
                .bind(columns.idle)
                .bind(columns.absolute)
                .bind(columns.expires_at)
                .bind(columns.version)
                .bind(binding.map(|bound| bound.user_key.as_slice()))
                .bind(binding.map(|bound| bound.last_seen))
                .bind(binding.map(|bound| bound.device.as_slice()))
                .bind(columns.lifetime.as_deref())
                .bind(columns.issued_at)
        }
        Write::IfUnchanged(IfUnchanged {
            key,
            read,
            columns,
            now,
        }) => query
            .bind(key.as_bytes().as_slice())
            .bind(columns.data.as_slice())
            .bind(columns.idle)
            .bind(columns.absolute)
            .bind(columns.expires_at)
            .bind(columns.version)
            .bind(columns.binding.as_ref().map(|bound| bound.last_seen))
            .bind(read.version)
            .bind(read.created_at)
            .bind(read.absolute_deadline)
            .bind(read.user_key())
            .bind(*now)
            .bind(columns.lifetime.as_deref()),
    }
}

/// The statements that write `writes`, in their order, as the indexes of
/// their writes: a statement holds writes of one kind, each key at most
/// once, and as many as a size of [`BATCH_SIZES`]; a write goes to a
/// statement after every statement that holds its key (which it then
/// sees), so a key's writes keep their order.
fn statements(writes: &[Write]) -> Vec<Vec<usize>> {
    let largest = BATCH_SIZES[BATCH_SIZES.len() - 1];
    let mut statements: Vec<(bool, Vec<usize>)> = Vec::new();
    let mut last = HashMap::new();
    for (index, write) in writes.iter().enumerate() {
        let kind = write.is_insert();
        let after = last.get(write.key()).map_or(0, |statement| statement + 1);
        let joins = (after..statements.len()).rev().find(|&statement| {
            let (of, members) = &statements[statement];
            *of == kind && members.len() < largest
        });
        let statement = joins.unwrap_or_else(|| {
            statements.push((kind, Vec::new()));
            statements.len() - 1
        });
        statements[statement].1.push(index);
        last.insert(*write.key(), statement);
    }
    statements
        .into_iter()
        .flat_map(|(_, members)| {
            schema::pieces(&members)
                .into_iter()
                .map(<[usize]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Sends each request its outcome, or the batch's failure.
fn answer(answers: Vec<oneshot::Sender<Result<bool, Error>>>, outcomes: Result<Vec<bool>, Error>) {
    match outcomes {
        Ok(outcomes) => {
            for (answer, written) in answers.into_iter().zip(outcomes) {
                // A request that stopped waiting has dropped its receiver.
                let _ = answer.send(Ok(written));
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for answer in answers {
                let _ = answer.send(Err(Error::backend(BatchFailed(Arc::clone(&error)))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::Columns;

    fn insert(key: u8) -> Write {
        Write::Insert {
            key: SessionKey::from_bytes([key; 32]),
            columns: Columns {
                data: Vec::new(),
                created_at: 0,
                idle: 0,
                absolute: 0,
                expires_at: 0,
                version: 1,
                binding: None,
                lifetime: None,
                issued_at: None,
            },
        }
    }

    fn update(key: u8) -> Write {
        let Write::Insert { key, columns } = insert(key) else {
            unreachable!()
        };
        let read = ReadStamp {
            version: 1,
            created_at: 0,
            absolute_deadline: 0,
            user: None,
        };
        Write::IfUnchanged(IfUnchanged::new(key, read, columns, 0).unwrap())
    }

    #[test]
    fn a_keys_writes_keep_their_order_across_statements() {
        let writes = [
            update(1),
            update(2),
            update(1),
            insert(3),
            update(4),
            update(1),
            insert(5),
        ];
        let planned = statements(&writes);
        assert_eq!(
            planned,
            [vec![0, 1], vec![2, 4], vec![3, 6], vec![5]].map(|s| s.to_vec())
        );
        for statement in &planned {
            let keys: HashSet<_> = statement.iter().map(|index| writes[*index].key()).collect();
            assert_eq!(keys.len(), statement.len(), "a key twice in one statement");
        }
    }
}
