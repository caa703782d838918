//! Where the time comes from, for the parts that read it themselves.

use std::fmt;
use std::sync::Arc;

use crate::Timestamp;

/// Where the HTTP layer and background tasks (such as a backend's cleanup)
/// read the time. The system clock by default; tests set a clock they move
/// by hand, so everything that decides by the time agrees on it.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(Timestamp::now))
    }

    /// A clock that calls `now` (feature `test-util`): for tests that move
    /// the time by hand.
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn from_fn(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}
