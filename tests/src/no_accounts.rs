//! A store that keeps no accounts: a real storage with every operation
//! forwarded but the account calls, and capabilities that say so, as a
//! custom store written before accounts existed would be.

use std::sync::Arc;

use session_core::{
    Capabilities, ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, Record, SessionKey,
    SessionStorage, Timestamp, TouchOutcome, UpdateOutcome, async_trait,
};

/// `inner` without accounts: `login`, `list` and `revoke` keep the
/// contract's defaults (`Error::Unsupported`).
pub struct NoAccounts(pub Arc<dyn SessionStorage>);

#[async_trait]
impl SessionStorage for NoAccounts {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        self.0.load(key, now).await
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        self.0.create(key, record, now).await
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        self.0.update(key, changes, deadlines, now).await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        self.0.touch(key, idle_deadline, now).await
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        self.0.cycle(old, new, changes, deadlines, now).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.0.delete(key).await
    }

    async fn delete_expired(&self, now: Timestamp) -> Result<u64, Error> {
        self.0.delete_expired(now).await
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = self.0.capabilities();
        capabilities.accounts = false;
        capabilities
    }
}
