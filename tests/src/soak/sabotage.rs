//! Deliberately broken storage, for the soak's self-check: a soak that
//! cannot catch these proves nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use session_core::{
    Capabilities, ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, Record, SessionKey,
    SessionStorage, Timestamp, TouchOutcome, UpdateOutcome, async_trait,
};

/// How the storage is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breakage {
    /// Every 100th `update` answers `Updated` without writing anything.
    LoseWrites,
    /// `delete` answers `Ok` without deleting (logout does nothing).
    IgnoreDeletes,
}

impl Breakage {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "lose-writes" => Some(Self::LoseWrites),
            "ignore-deletes" => Some(Self::IgnoreDeletes),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::LoseWrites => "lose-writes",
            Self::IgnoreDeletes => "ignore-deletes",
        }
    }
}

/// Real storage with one [`Breakage`].
pub(crate) struct Sabotaged {
    inner: Arc<dyn SessionStorage>,
    breakage: Breakage,
    updates: AtomicU64,
}

impl Sabotaged {
    pub(crate) fn new(inner: Arc<dyn SessionStorage>, breakage: Breakage) -> Self {
        Self {
            inner,
            breakage,
            updates: AtomicU64::new(0),
        }
    }

    fn loses_this_update(&self) -> bool {
        self.breakage == Breakage::LoseWrites
            && self.updates.fetch_add(1, Ordering::Relaxed) % 100 == 99
    }
}

#[async_trait]
impl SessionStorage for Sabotaged {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        self.inner.load(key, now).await
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        self.inner.create(key, record, now).await
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        if self.loses_this_update() {
            // Claims success for a live session, as a store that drops
            // writes on the floor would.
            return Ok(match self.inner.load(key, now).await? {
                Some(record) => UpdateOutcome::Updated {
                    version: record.version + 1,
                },
                None => UpdateOutcome::Gone,
            });
        }
        self.inner.update(key, changes, deadlines, now).await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        self.inner.touch(key, idle_deadline, now).await
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        self.inner.cycle(old, new, changes, deadlines, now).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        if self.breakage == Breakage::IgnoreDeletes {
            return Ok(());
        }
        self.inner.delete(key).await
    }

    async fn delete_expired(&self, now: Timestamp) -> Result<u64, Error> {
        self.inner.delete_expired(now).await
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}
