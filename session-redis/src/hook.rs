//! Step hooks (feature `test-util`): a test names a step of a multi-step
//! operation (the Redis Cluster `login`, `cycle` and `revoke`) and makes
//! it fail, or pause until the test resumes it, to check what the other
//! steps leave behind. Every step counts its hits, so a test can tell that
//! the step it targets was reached. The steps are named in
//! [`steps`](crate::steps).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use session_core::Error;
use tokio::sync::Notify;

/// What the hook does at a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Fail,
    Pause,
}

/// Hooks into the steps of one storage ([`RedisStorageBuilder::step_hook`](crate::RedisStorageBuilder::step_hook)).
#[derive(Debug, Default)]
pub struct StepHook {
    state: Mutex<State>,
    paused: Notify,
    resumed: Notify,
}

#[derive(Debug, Default)]
struct State {
    actions: HashMap<&'static str, Action>,
    hits: HashMap<&'static str, u64>,
    waiting: u64,
}

impl StepHook {
    /// A hook that does nothing yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// From now on, `step` fails (as a call that timed out would) before
    /// it runs.
    pub fn fail_at(&self, step: &'static str) {
        self.state().actions.insert(step, Action::Fail);
    }

    /// From now on, `step` waits before it runs until [`resume`](Self::resume).
    pub fn pause_at(&self, step: &'static str) {
        self.state().actions.insert(step, Action::Pause);
    }

    /// Every step runs normally again.
    pub fn clear(&self) {
        self.state().actions.clear();
    }

    /// Lets the steps that wait go on (and clears every action).
    pub fn resume(&self) {
        self.clear();
        self.resumed.notify_waiters();
    }

    /// Waits until a step is paused.
    pub async fn paused(&self) {
        loop {
            let notified = self.paused.notified();
            if self.state().waiting > 0 {
                return;
            }
            notified.await;
        }
    }

    /// How often `step` was reached.
    pub fn hits(&self, step: &str) -> u64 {
        self.state().hits.get(step).copied().unwrap_or(0)
    }

    /// Called before `step` runs: counts it, then fails or waits if told to.
    pub(crate) async fn at(&self, step: &'static str) -> Result<(), Error> {
        let action = {
            let mut state = self.state();
            *state.hits.entry(step).or_default() += 1;
            state.actions.get(step).copied()
        };
        match action {
            None => Ok(()),
            Some(Action::Fail) => Err(Error::backend(format!("injected failure at {step}"))),
            Some(Action::Pause) => {
                let resumed = self.resumed.notified();
                tokio::pin!(resumed);
                resumed.as_mut().enable();
                self.state().waiting += 1;
                self.paused.notify_waiters();
                resumed.await;
                self.state().waiting -= 1;
                Ok(())
            }
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
