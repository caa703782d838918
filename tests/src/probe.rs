//! A storage wrapper that counts calls and injects faults, around a real
//! storage.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, oneshot};

use session_core::{
    ChangeSet, CreateOutcome, CycleOutcome, Deadlines, Error, Listed, Login, LoginOutcome, Record,
    Revoke, RotateOutcome, SessionKey, SessionStorage, Timestamp, TouchOutcome, UpdateOutcome,
    UserKey, async_trait,
};

/// One storage operation, for counting and for faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Load,
    Create,
    Update,
    Touch,
    Cycle,
    Delete,
    Login,
    List,
    Revoke,
    Rotate,
}

const OPS: [Op; 10] = [
    Op::Load,
    Op::Create,
    Op::Update,
    Op::Touch,
    Op::Cycle,
    Op::Delete,
    Op::Login,
    Op::List,
    Op::Revoke,
    Op::Rotate,
];

/// What a faulty operation does instead of its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fails with a backend error.
    Fail,
    /// Never answers (until the caller's timeout).
    Hang,
    /// Refuses the stored record as over the size limit, as a store does
    /// when it holds more than it should ever have written.
    TooLarge,
}

/// Counts every call and can make chosen operations fail or hang.
pub struct ProbeStorage {
    inner: Arc<dyn SessionStorage>,
    calls: [AtomicUsize; 10],
    conflicts: AtomicUsize,
    faults: [AtomicUsize; 10],
    collisions: [AtomicUsize; 10],
    /// `update_from` calls (also counted as `Update`).
    hinted: AtomicUsize,
    /// Whether `update_from` calls are checked against a load first.
    checking_hints: AtomicBool,
    /// `update_from` calls given a record other than the stored version.
    stale_hints: AtomicUsize,
    /// Where the next update waits before it reaches the inner storage,
    /// if the test is holding it.
    update_gate: Gate,
    /// Where the next load waits after the inner storage answered, if the
    /// test is holding it.
    load_gate: Gate,
}

/// Where the next call of one kind waits, if the test holds it.
#[derive(Default)]
struct Gate {
    hold: Mutex<Option<oneshot::Receiver<()>>>,
    /// Told when a call starts waiting here.
    held: Notify,
}

impl Gate {
    /// Holds the next call until the returned sender sends or drops.
    fn close(&self) -> oneshot::Sender<()> {
        let (release, hold) = oneshot::channel();
        *self.hold.lock().unwrap() = Some(hold);
        release
    }

    /// Waits if the test holds this call.
    async fn pass(&self) {
        let hold = self.hold.lock().unwrap().take();
        if let Some(hold) = hold {
            self.held.notify_one();
            let _ = hold.await;
        }
    }
}

impl ProbeStorage {
    /// Counts a conflict answer.
    fn count_conflict(
        &self,
        outcome: Result<UpdateOutcome, Error>,
    ) -> Result<UpdateOutcome, Error> {
        if let Ok(UpdateOutcome::Conflict { .. }) = outcome {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        outcome
    }

    pub fn new(inner: Arc<dyn SessionStorage>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: Default::default(),
            conflicts: AtomicUsize::new(0),
            faults: Default::default(),
            collisions: Default::default(),
            hinted: AtomicUsize::new(0),
            checking_hints: AtomicBool::new(false),
            stale_hints: AtomicUsize::new(0),
            update_gate: Gate::default(),
            load_gate: Gate::default(),
        })
    }

    /// Updates so far given a record as loaded (`update_from`).
    pub fn hinted(&self) -> usize {
        self.hinted.load(Ordering::SeqCst)
    }

    /// Checks every `update_from` call from now on by a load of the inner
    /// storage just before the write (which costs a round trip, and is
    /// not counted), for [`stale_hints`](Self::stale_hints).
    pub fn check_hints(&self) {
        self.checking_hints.store(true, Ordering::SeqCst);
    }

    /// `update_from` calls so far, since [`check_hints`](Self::check_hints),
    /// given a record whose version was not the stored one.
    pub fn stale_hints(&self) -> usize {
        self.stale_hints.load(Ordering::SeqCst)
    }

    /// Makes the next update (`update` or `update_from`) wait, before it
    /// reaches the inner storage, until the returned sender sends or drops.
    pub fn hold_next_update(&self) -> oneshot::Sender<()> {
        self.update_gate.close()
    }

    /// Returns once the update held by [`hold_next_update`](Self::hold_next_update) waits.
    pub async fn until_held(&self) {
        self.update_gate.held.notified().await;
    }

    /// Makes the next load wait, once the inner storage has answered it
    /// (so it returns the record as it was then), until the returned
    /// sender sends or drops.
    pub fn hold_next_load(&self) -> oneshot::Sender<()> {
        self.load_gate.close()
    }

    /// Returns once the load held by [`hold_next_load`](Self::hold_next_load) waits.
    pub async fn until_load_held(&self) {
        self.load_gate.held.notified().await;
    }

    /// Counts `loaded` if it is not the version stored under `key`.
    async fn check_hint(&self, key: &SessionKey, loaded: &Record, now: Timestamp) {
        if !self.checking_hints.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(Some(stored)) = self.inner.load(key, now).await
            && stored.version != loaded.version
        {
            self.stale_hints.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn index(op: Op) -> usize {
        OPS.iter().position(|known| *known == op).unwrap()
    }

    /// Calls of `op` so far.
    pub fn calls(&self, op: Op) -> usize {
        self.calls[Self::index(op)].load(Ordering::SeqCst)
    }

    /// Calls of every operation so far.
    pub fn total_calls(&self) -> usize {
        OPS.iter().map(|op| self.calls(*op)).sum()
    }

    /// Calls of the writing operations so far.
    pub fn writes(&self) -> usize {
        [
            Op::Create,
            Op::Update,
            Op::Touch,
            Op::Cycle,
            Op::Delete,
            Op::Login,
            Op::Revoke,
            Op::Rotate,
        ]
        .iter()
        .map(|op| self.calls(*op))
        .sum()
    }

    /// `Conflict` outcomes returned by `update` so far.
    pub fn conflicts(&self) -> usize {
        self.conflicts.load(Ordering::SeqCst)
    }

    /// Resets the counters.
    pub fn reset(&self) {
        for count in &self.calls {
            count.store(0, Ordering::SeqCst);
        }
        self.conflicts.store(0, Ordering::SeqCst);
        self.stale_hints.store(0, Ordering::SeqCst);
        self.hinted.store(0, Ordering::SeqCst);
    }

    /// Makes `op` fail or hang from now on (`None`: work again).
    pub fn set_fault(&self, op: Op, fault: Option<Fault>) {
        let code = match fault {
            None => 0,
            Some(Fault::Fail) => 1,
            Some(Fault::Hang) => 2,
            Some(Fault::TooLarge) => 3,
        };
        self.faults[Self::index(op)].store(code, Ordering::SeqCst);
    }

    /// Makes every operation fail or hang.
    pub fn set_fault_all(&self, fault: Option<Fault>) {
        for op in OPS {
            self.set_fault(op, fault);
        }
    }

    /// Makes the next `count` calls of `op` (`Create`, `Cycle` or `Login`) answer
    /// `Collision`, as if the fresh id were taken, without reaching the
    /// inner storage. The calls are counted.
    pub fn collide_next(&self, op: Op, count: usize) {
        self.collisions[Self::index(op)].store(count, Ordering::SeqCst);
    }

    /// Whether this call of `op` is to collide (using up one collision).
    fn take_collision(&self, op: Op) -> bool {
        self.collisions[Self::index(op)]
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    async fn run<T>(
        &self,
        op: Op,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.calls[Self::index(op)].fetch_add(1, Ordering::SeqCst);
        match self.faults[Self::index(op)].load(Ordering::SeqCst) {
            1 => Err(Error::backend(format!("injected failure of {op:?}"))),
            2 => std::future::pending().await,
            3 => Err(Error::TooLarge {
                size: usize::MAX,
                limit: session_core::DEFAULT_MAX_RECORD_BYTES,
            }),
            _ => call.await,
        }
    }
}

#[async_trait]
impl SessionStorage for ProbeStorage {
    async fn load(&self, key: &SessionKey, now: Timestamp) -> Result<Option<Record>, Error> {
        let load = async {
            let loaded = self.inner.load(key, now).await;
            self.load_gate.pass().await;
            loaded
        };
        self.run(Op::Load, load).await
    }

    async fn create(
        &self,
        key: &SessionKey,
        record: &Record,
        now: Timestamp,
    ) -> Result<CreateOutcome, Error> {
        if self.take_collision(Op::Create) {
            return self
                .run(Op::Create, async { Ok(CreateOutcome::Collision) })
                .await;
        }
        self.run(Op::Create, self.inner.create(key, record, now))
            .await
    }

    async fn update(
        &self,
        key: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        let write = async {
            self.update_gate.pass().await;
            self.inner.update(key, changes, deadlines, now).await
        };
        self.count_conflict(self.run(Op::Update, write).await)
    }

    /// Counted as an update: it is one, with a hint.
    async fn update_from(
        &self,
        key: &SessionKey,
        loaded: &Record,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<UpdateOutcome, Error> {
        self.hinted.fetch_add(1, Ordering::SeqCst);
        let write = async {
            self.update_gate.pass().await;
            self.check_hint(key, loaded, now).await;
            self.inner
                .update_from(key, loaded, changes, deadlines, now)
                .await
        };
        self.count_conflict(self.run(Op::Update, write).await)
    }

    async fn touch(
        &self,
        key: &SessionKey,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        self.run(Op::Touch, self.inner.touch(key, idle_deadline, now))
            .await
    }

    /// Counted as a touch: it is one, with a hint.
    async fn touch_from(
        &self,
        key: &SessionKey,
        loaded: &Record,
        idle_deadline: Timestamp,
        now: Timestamp,
    ) -> Result<TouchOutcome, Error> {
        let touch = self.inner.touch_from(key, loaded, idle_deadline, now);
        self.run(Op::Touch, touch).await
    }

    async fn cycle(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        changes: &ChangeSet,
        deadlines: Deadlines,
        now: Timestamp,
    ) -> Result<CycleOutcome, Error> {
        if self.take_collision(Op::Cycle) {
            return self
                .run(Op::Cycle, async { Ok(CycleOutcome::Collision) })
                .await;
        }
        self.run(
            Op::Cycle,
            self.inner.cycle(old, new, changes, deadlines, now),
        )
        .await
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
        if self.take_collision(Op::Login) {
            return self
                .run(Op::Login, async { Ok(LoginOutcome::Collision) })
                .await;
        }
        let call = self.inner.login(old, new, changes, deadlines, login, now);
        self.run(Op::Login, call).await
    }

    async fn list(&self, user: &UserKey, now: Timestamp) -> Result<Vec<Listed>, Error> {
        self.run(Op::List, self.inner.list(user, now)).await
    }

    async fn revoke(&self, user: &UserKey, which: &Revoke, now: Timestamp) -> Result<u64, Error> {
        self.run(Op::Revoke, self.inner.revoke(user, which, now))
            .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        self.run(Op::Delete, self.inner.delete(key)).await
    }

    async fn rotate(
        &self,
        old: &SessionKey,
        new: &SessionKey,
        grace_end: Timestamp,
        now: Timestamp,
    ) -> Result<RotateOutcome, Error> {
        let rotate = self.inner.rotate(old, new, grace_end, now);
        self.run(Op::Rotate, rotate).await
    }

    /// Counted as a load: it is one, through forwards.
    async fn load_following(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> Result<Option<(SessionKey, Record)>, Error> {
        let load = async {
            let loaded = self.inner.load_following(key, now).await;
            self.load_gate.pass().await;
            loaded
        };
        self.run(Op::Load, load).await
    }

    async fn delete_expired(&self, now: Timestamp) -> Result<u64, Error> {
        self.inner.delete_expired(now).await
    }

    fn capabilities(&self) -> session_core::Capabilities {
        self.inner.capabilities()
    }
}
