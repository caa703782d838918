//! The conformance suite catches broken stores.
//!
//! Each store here is the memory backend with one classic bug added on top.
//! A suite that passes them proves nothing, so each must fail the tests
//! that guard against its bug. The races are forced, not hoped for: a gate
//! holds the first N callers between their read and their write until all N
//! have read, or orders a slow operation around racing writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use session_core::conformance::{
    self, CONCURRENT_CREATES, CONCURRENT_INCREMENTS, CONCURRENT_WRITERS, Failure, Harness,
    RACING_TOUCHES, RACING_WRITERS,
};
use session_core::{
    ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, Lifetime, Listed, Login,
    LoginOutcome, Record, Revoke, RotateOutcome, SessionData, SessionKey, SessionStorage,
    Timestamp, TouchOutcome, UpdateOutcome, UserKey, async_trait,
};
use session_memory::{MemoryHarness, MemoryStorage};
use tokio::sync::Barrier;

/// Holds the first `count` callers until all of them have arrived; later
/// callers pass straight through.
struct Gate {
    barrier: Barrier,
    remaining: AtomicUsize,
}

impl Gate {
    fn new(count: usize) -> Self {
        Self {
            barrier: Barrier::new(count),
            remaining: AtomicUsize::new(count),
        }
    }

    async fn pass(&self) {
        let held = self
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if held {
            self.barrier.wait().await;
        }
    }
}

/// Orders a race: a slow operation reads, then every racing writer writes,
/// then the slow operation writes back what it read.
struct Race {
    read: Gate,
    written: Gate,
}

impl Race {
    /// A race of `slow` operations against `writers` writes.
    fn new(slow: usize, writers: usize) -> Self {
        Self {
            read: Gate::new(slow + writers),
            written: Gate::new(slow + writers),
        }
    }

    /// Runs a racing write after every slow operation has read, and lets the
    /// slow operations go on once every write is done.
    async fn write<T>(&self, write: impl Future<Output = T>) -> T {
        self.read.pass().await;
        let written = write.await;
        self.written.pass().await;
        written
    }

    /// Where a slow operation waits between its read and its write.
    async fn between(&self) {
        self.read.pass().await;
        self.written.pass().await;
    }
}

/// The bug a broken store adds.
enum Flaw {
    /// `update` writes back a snapshot, and creates the record if absent.
    UpsertingUpdate,
    /// `update` reads, awaits, then writes back the snapshot it read.
    RacyUpdate(Gate),
    /// `create` checks for a record, awaits, then inserts anyway.
    CheckThenInsert(Gate),
    /// `touch` reads the record, awaits, then stores it back with the new
    /// deadline.
    RacyTouch(Race),
    /// `cycle` reads the old record, awaits, then creates the new one and
    /// deletes the old one in separate steps.
    StepwiseCycle(Race),
    /// `update_from` trusts the loaded record: it writes it back with the
    /// changes applied, whatever is stored now.
    TrustingUpdateFrom,
    /// `update` writes the data and version, yields, then moves the idle
    /// deadline: dropped in between, it is half done.
    UpdateInTwoSteps,
    /// `login` from a logged-in session reads the old record, awaits, then
    /// creates the new one and deletes the old one in separate steps.
    StepwiseRelogin(Race),
    /// `login` ignores the limit on the user's sessions.
    UnlimitedLogin,
    /// `load_following` is `load`: a forward leads nowhere.
    UnfollowedForward,
    /// `update` writes the record back on its layer's defaults, unless
    /// the change set gives it a lifetime: the session forgets its own.
    LifetimeForgettingUpdate,
    /// `load_following` follows a forward whatever the end of its grace
    /// window.
    EndlessForward,
}

struct Broken {
    inner: MemoryStorage,
    flaw: Flaw,
}

/// A change set that replaces the whole record with `data`.
fn snapshot(data: &SessionData) -> ChangeSet {
    let mut changes = ChangeSet::new();
    changes.clear();
    for (key, value) in data.iter() {
        changes.insert(key, value.clone());
    }
    changes
}

/// `changes` applied to `data` the way a careless store does it: on a copy.
fn applied(mut data: SessionData, changes: &ChangeSet) -> SessionData {
    changes.apply(&mut data);
    data
}

impl Broken {
    /// The race that updates and deletes take part in, if any.
    fn race(&self) -> Option<&Race> {
        match &self.flaw {
            Flaw::RacyTouch(race) | Flaw::StepwiseCycle(race) | Flaw::StepwiseRelogin(race) => {
                Some(race)
            }
            _ => None,
        }
    }

    /// Stores `record` under `key` whatever is there: an upsert.
    async fn put(&self, key: &SessionKey, record: &Record, now: Timestamp) -> Result<(), Error> {
        self.inner.delete(key).await?;
        let _ = self.inner.create(key, record, now).await?;
        Ok(())
    }

    async fn racy_touch(
        &self,
        race: &Race,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        let Some(mut record) = self.inner.load(key, now).await? else {
            return Ok(TouchOutcome::Gone);
        };
        race.between().await;
        record.deadlines = record.deadlines.with_idle(idle_deadline);
        self.put(key, &record, now).await?;
        Ok(TouchOutcome::Touched)
    }

    async fn stepwise_cycle(
        &self,
        race: &Race,
        (old, new): (&SessionKey, &SessionKey),
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        let Some(record) = self.inner.load(old, now).await? else {
            return Ok(CycleOutcome::Gone);
        };
        let next = match record.cycled(changes, deadlines, now) {
            Ok(next) => next,
            Err(refused) => return Ok(refused),
        };
        race.between().await;
        if self.inner.create(new, &next, now).await? == CreateOutcome::Collision {
            return Ok(CycleOutcome::Collision);
        }
        self.inner.delete(old).await?;
        Ok(CycleOutcome::Cycled)
    }

    /// A login that reads, waits for the race, then writes in two steps;
    /// from a session that is not logged in, the real login.
    async fn stepwise_relogin(
        &self,
        race: &Race,
        (old, new): (Option<&SessionKey>, &SessionKey),
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        let record = match old {
            Some(old) => self.inner.load(old, now).await?,
            None => None,
        };
        let (Some(old), Some(record)) = (old, record.filter(|r| r.account.is_some())) else {
            return self
                .inner
                .login(old, new, changes, deadlines, login, now)
                .await;
        };
        let next = match Record::logged_in(Some(record), changes, deadlines, login, now) {
            Ok(next) => next,
            Err(refused) => return Ok(refused),
        };
        race.between().await;
        if self.inner.create(new, &next, now).await? == CreateOutcome::Collision {
            return Ok(LoginOutcome::Collision);
        }
        self.inner.delete(old).await?;
        Ok(LoginOutcome::LoggedIn { revoked: 0 })
    }

    async fn upserting_update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        match self.inner.load(key, now).await? {
            Some(record) => {
                let snapshot = snapshot(&applied(record.data, changes));
                self.inner.update(key, &snapshot, deadlines, now).await
            }
            None => {
                let record = Record::new(applied(SessionData::new(), changes), now, deadlines);
                let _ = self.inner.create(key, &record, now).await?;
                Ok(UpdateOutcome::Updated { version: 1 })
            }
        }
    }

    async fn racy_update(
        &self,
        gate: &Gate,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let Some(record) = self.inner.load(key, now).await? else {
            return Ok(UpdateOutcome::Gone);
        };
        if let Err(current) = changes.check(&record.data) {
            return Ok(UpdateOutcome::Conflict { current });
        }
        gate.pass().await;
        let snapshot = snapshot(&applied(record.data, changes));
        self.inner.update(key, &snapshot, deadlines, now).await
    }

    async fn update_in_two_steps(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let Some(stored) = self.inner.load(key, now).await? else {
            return Ok(UpdateOutcome::Gone);
        };
        let outcome = self
            .inner
            .update(key, changes, stored.deadlines, now)
            .await?;
        tokio::task::yield_now().await;
        if matches!(outcome, UpdateOutcome::Updated { .. }) {
            let _ = self.inner.touch(key, deadlines.idle(), now).await?;
        }
        Ok(outcome)
    }

    async fn check_then_insert(
        &self,
        gate: &Gate,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        if self.inner.load(key, now).await?.is_some() {
            return Ok(CreateOutcome::Collision);
        }
        gate.pass().await;
        self.inner.delete(key).await?;
        self.inner.create(key, record, now).await
    }
}

#[async_trait]
impl SessionStorage for Broken {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        self.inner.load(key, now).await
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        match &self.flaw {
            Flaw::CheckThenInsert(gate) => self.check_then_insert(gate, key, record, now).await,
            _ => self.inner.create(key, record, now).await,
        }
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        match &self.flaw {
            Flaw::UpsertingUpdate => self.upserting_update(key, changes, deadlines, now).await,
            Flaw::RacyUpdate(gate) => self.racy_update(gate, key, changes, deadlines, now).await,
            Flaw::RacyTouch(race) | Flaw::StepwiseCycle(race) => {
                race.write(self.inner.update(key, changes, deadlines, now))
                    .await
            }
            Flaw::UpdateInTwoSteps => self.update_in_two_steps(key, changes, deadlines, now).await,
            Flaw::CheckThenInsert(_)
            | Flaw::TrustingUpdateFrom
            | Flaw::StepwiseRelogin(_)
            | Flaw::UnlimitedLogin
            | Flaw::UnfollowedForward
            | Flaw::EndlessForward => self.inner.update(key, changes, deadlines, now).await,
            Flaw::LifetimeForgettingUpdate => {
                let mut forgetting = changes.clone();
                if forgetting.lifetime().is_none() {
                    forgetting.set_lifetime(Lifetime::new());
                }
                self.inner.update(key, &forgetting, deadlines, now).await
            }
        }
    }

    async fn update_from(
        &self,
        key: &SessionKey,
        loaded: &Record,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        if !matches!(self.flaw, Flaw::TrustingUpdateFrom) {
            return self.update(key, changes, deadlines, now).await;
        }
        match loaded.clone().updated(changes, deadlines, now) {
            Ok(next) => {
                self.put(key, &next, now).await?;
                Ok(UpdateOutcome::Updated {
                    version: next.version,
                })
            }
            Err(refused) => Ok(refused),
        }
    }

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        match &self.flaw {
            Flaw::RacyTouch(race) => self.racy_touch(race, key, idle_deadline, now).await,
            _ => self.inner.touch(key, idle_deadline, now).await,
        }
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        match &self.flaw {
            Flaw::StepwiseCycle(race) => {
                self.stepwise_cycle(race, (old, new), changes, deadlines, now)
                    .await
            }
            _ => self.inner.cycle(old, new, changes, deadlines, now).await,
        }
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        match self.race() {
            Some(race) => race.write(self.inner.delete(key)).await,
            None => self.inner.delete(key).await,
        }
    }

    async fn delete_expired(&self, now: Timestamp) -> Result<u64, Error> {
        self.inner.delete_expired(now).await
    }

    async fn login(
        &self,
        old: Option<&SessionKey>,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        match &self.flaw {
            Flaw::StepwiseRelogin(race) => {
                self.stepwise_relogin(race, (old, new), changes, deadlines, login, now)
                    .await
            }
            Flaw::UnlimitedLogin => {
                let unlimited = Login::new(login.user()).device(login.device_facts().clone());
                self.inner
                    .login(old, new, changes, deadlines, &unlimited, now)
                    .await
            }
            _ => {
                self.inner
                    .login(old, new, changes, deadlines, login, now)
                    .await
            }
        }
    }

    async fn list(&self, user: &UserKey, now: Timestamp) -> Result<Vec<Listed>, Error> {
        self.inner.list(user, now).await
    }

    async fn revoke(&self, user: &UserKey, which: &Revoke, now: Timestamp) -> Result<u64, Error> {
        match self.race() {
            Some(race) => race.write(self.inner.revoke(user, which, now)).await,
            None => self.inner.revoke(user, which, now).await,
        }
    }

    async fn load_following(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<(SessionKey, Record)>, Error> {
        match self.flaw {
            Flaw::UnfollowedForward => {
                let record = self.inner.load(key, now).await?;
                Ok(record.map(|record| (*key, record)))
            }
            Flaw::EndlessForward => {
                // Followed as if at the epoch, before any grace window ended.
                let found = self.inner.load_following(key, Timestamp::default()).await?;
                Ok(found.filter(|(_, record)| record.is_live(now)))
            }
            _ => self.inner.load_following(key, now).await,
        }
    }

    async fn rotate(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        grace_end: Timestamp,
        now: Timestamp,
    ) -> Result<RotateOutcome, Error> {
        self.inner.rotate(old, new, grace_end, now).await
    }

    fn capabilities(&self) -> session_core::Capabilities {
        self.inner.capabilities()
    }
}

/// A broken store with the memory backend's raw probes.
struct BrokenHarness {
    probes: MemoryHarness,
    storage: Arc<Broken>,
}

impl BrokenHarness {
    fn new(flaw: Flaw) -> Self {
        let inner = MemoryStorage::new();
        Self {
            probes: MemoryHarness::new(inner.clone()),
            storage: Arc::new(Broken { inner, flaw }),
        }
    }
}

#[async_trait]
impl Harness for BrokenHarness {
    fn storage(&self) -> Arc<dyn SessionStorage> {
        self.storage.clone()
    }

    async fn raw_exists(&self, key: &SessionKey) -> Result<bool, Error> {
        self.probes.raw_exists(key).await
    }

    async fn read_raw(&self, key: &SessionKey) -> Result<Option<Vec<u8>>, Error> {
        self.probes.read_raw(key).await
    }

    async fn write_raw(&self, key: &SessionKey, bytes: &[u8], now: Timestamp) -> Result<(), Error> {
        self.probes.write_raw(key, bytes, now).await
    }

    async fn write_record_unchecked(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.probes.write_record_unchecked(key, record, now).await
    }

    async fn index_members(&self, user: &UserKey) -> Result<Vec<SessionKey>, Error> {
        self.probes.index_members(user).await
    }
}

/// Runs one conformance test on a broken store and checks that it fails
/// for the expected reason. Bounded, so that a gate that is never filled
/// fails the test instead of hanging it.
async fn assert_caught(test: impl Future<Output = Result<(), Failure>>, expected: &str) {
    let outcome = tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .unwrap_or_else(|_| Err(Failure::new("the conformance test hung")));
    let Err(failure) = outcome else {
        panic!("the suite passed a broken store");
    };
    assert!(failure.to_string().contains(expected), "{failure}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upserting_update_is_caught() {
    let report = conformance::run_all(|| async { BrokenHarness::new(Flaw::UpsertingUpdate) })
        .await
        .expect_err("the suite passed a store whose update upserts");
    assert!(report.failed("update_after_delete_is_gone"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trusting_update_from_is_caught() {
    let report = conformance::run_all(|| async { BrokenHarness::new(Flaw::TrustingUpdateFrom) })
        .await
        .expect_err("the suite passed a store whose update_from trusts its hint");
    for test in [
        "update_from_stale_record_loses_nothing",
        "update_from_checks_stored_conditions",
        "update_from_after_delete_is_gone",
    ] {
        assert!(report.failed(test), "{test}: {report}");
    }
    assert!(
        !report.failed("update_from_current_record_applies"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_racy_update_loses_concurrent_keys_and_is_caught() {
    let harness = BrokenHarness::new(Flaw::RacyUpdate(Gate::new(CONCURRENT_WRITERS)));
    let test = conformance::concurrent_updates_keep_every_key(&harness);
    assert_caught(test, "concurrent writes were lost").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_racy_update_breaks_conditions_and_is_caught() {
    let harness = BrokenHarness::new(Flaw::RacyUpdate(Gate::new(CONCURRENT_INCREMENTS)));
    let test = conformance::concurrent_conditioned_increments(&harness);
    assert_caught(test, "counter after 4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_check_then_insert_create_is_caught() {
    let harness = BrokenHarness::new(Flaw::CheckThenInsert(Gate::new(CONCURRENT_CREATES)));
    let test = conformance::concurrent_creates_have_one_winner(&harness);
    assert_caught(test, "reported as created").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_touch_writing_back_what_it_read_loses_updates_and_is_caught() {
    let race = Race::new(RACING_TOUCHES, RACING_WRITERS);
    let harness = BrokenHarness::new(Flaw::RacyTouch(race));
    let test = conformance::touches_racing_updates_keep_them(&harness);
    assert_caught(test, "updates lost to racing touches").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_touch_writing_back_what_it_read_revives_a_logout_and_is_caught() {
    let harness = BrokenHarness::new(Flaw::RacyTouch(Race::new(1, 1)));
    let test = conformance::touch_racing_delete_does_not_revive(&harness);
    assert_caught(test, "a touch revived a deleted session").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cycle_in_separate_steps_loses_updates_and_is_caught() {
    let harness = BrokenHarness::new(Flaw::StepwiseCycle(Race::new(1, RACING_WRITERS)));
    let test = conformance::cycle_racing_updates_keeps_them(&harness);
    assert_caught(test, "updates reported written but lost by the cycle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_in_two_steps_is_caught_when_dropped_between_them() {
    let harness = BrokenHarness::new(Flaw::UpdateInTwoSteps);
    let test = conformance::dropped_update_is_all_or_nothing(&harness);
    assert_caught(test, "update dropped after 1 polls left").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cycle_in_separate_steps_brings_a_revoked_session_back_and_is_caught() {
    let harness = BrokenHarness::new(Flaw::StepwiseCycle(Race::new(1, 1)));
    let test = conformance::revoke_racing_cycle_is_final(&harness);
    assert_caught(test, "a revoked session came back under its new key").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relogin_in_separate_steps_survives_revoke_all_and_is_caught() {
    let harness = BrokenHarness::new(Flaw::StepwiseRelogin(Race::new(1, 1)));
    let test = conformance::relogin_racing_revoke_all_ends_both(&harness);
    assert_caught(test, "the new key loads after revoke all").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_ignoring_its_limit_is_caught() {
    let harness = BrokenHarness::new(Flaw::UnlimitedLogin);
    let test = conformance::login_limit_revokes_the_least_recently_seen(&harness);
    assert_caught(test, "login at the limit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_update_forgetting_the_lifetime_is_caught() {
    let harness = BrokenHarness::new(Flaw::LifetimeForgettingUpdate);
    let test = conformance::a_lifetime_is_stored_and_kept_by_other_writes(&harness);
    assert_caught(test, "the lifetime after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forward_never_followed_is_caught() {
    let harness = BrokenHarness::new(Flaw::UnfollowedForward);
    let test = conformance::rotate_moves_the_record_and_forwards_the_old_key(&harness);
    assert_caught(test, "load_following of the old key").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forward_that_never_ends_is_caught() {
    let harness = BrokenHarness::new(Flaw::EndlessForward);
    let test = conformance::rotate_moves_the_record_and_forwards_the_old_key(&harness);
    assert_caught(test, "the forward outlived its grace window").await;
}

/// The concurrency tests fail for want of a multi-thread runtime rather than
/// pass without having raced anything.
#[tokio::test(flavor = "current_thread")]
async fn concurrency_tests_refuse_a_single_thread() {
    let harness = MemoryHarness::new(MemoryStorage::new());
    let failure = conformance::concurrent_updates_keep_every_key(&harness)
        .await
        .expect_err("a concurrency test ran on a current-thread runtime");
    assert!(failure.to_string().contains("multi-thread"), "{failure}");
}
