//! A clock the tests move by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use session_core::Timestamp;
use session_http::Clock;

/// A shared fake time, starting at the real time.
#[derive(Clone, Debug)]
pub struct FakeClock(Arc<AtomicU64>);

impl Default for FakeClock {
    fn default() -> Self {
        Self(Arc::new(AtomicU64::new(Timestamp::now().as_unix_millis())))
    }
}

impl FakeClock {
    pub fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.load(Ordering::SeqCst))
    }

    pub fn set(&self, at: Timestamp) {
        self.0.store(at.as_unix_millis(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.set(self.now().saturating_add(by));
    }

    /// The clock for a session configuration.
    pub fn clock(&self) -> Clock {
        let time = Arc::clone(&self.0);
        Clock::from_fn(move || Timestamp::from_unix_millis(time.load(Ordering::SeqCst)))
    }
}
