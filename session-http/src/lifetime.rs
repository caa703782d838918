//! How long a session lives: the deadlines of a new session, how activity
//! moves them, when a read-only request is worth a `touch`, and what a
//! login does. Pure functions of the configuration and the time, so the
//! policy is tested without storage.

use std::time::Duration;

use session_core::{Deadlines, Timestamp};

use crate::config::SessionConfig;

/// The lifetime policy of one layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifetime {
    idle: Duration,
    absolute: Duration,
    reset_on_login: bool,
}

impl Lifetime {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        Self {
            idle: config.idle_timeout,
            absolute: config.absolute_timeout,
            reset_on_login: config.reset_absolute_on_login,
        }
    }

    /// Deadlines of a session starting at `now`.
    pub(crate) fn fresh(self, now: Timestamp) -> Deadlines {
        Deadlines::new(
            now.saturating_add(self.idle),
            now.saturating_add(self.absolute),
        )
    }

    /// Deadlines after activity at `now`: the idle one moves, the absolute
    /// one stays.
    pub(crate) fn extended(self, current: Deadlines, now: Timestamp) -> Deadlines {
        current.with_idle(now.saturating_add(self.idle))
    }

    /// The deadlines a read-only request should `touch` the session to, if
    /// any: once a quarter of the idle timeout has passed since the idle
    /// deadline last moved, so most read-only requests write nothing.
    pub(crate) fn touch_due(self, current: Deadlines, now: Timestamp) -> Option<Deadlines> {
        let extended = self.extended(current, now);
        let remaining = current.idle().saturating_duration_since(now);
        let due = extended.idle() > current.idle() && remaining < self.idle.saturating_mul(3) / 4;
        due.then_some(extended)
    }

    /// Deadlines of a session logging in at `now`: the absolute lifetime
    /// restarts unless the layer says otherwise.
    pub(crate) fn at_login(self, current: Deadlines, now: Timestamp) -> Deadlines {
        if self.reset_on_login {
            self.fresh(now)
        } else {
            self.extended(current, now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;

    fn at(minutes: u64) -> Timestamp {
        Timestamp::from_unix_millis(1_000_000_000 + minutes * MINUTE)
    }

    fn lifetime(reset_on_login: bool) -> Lifetime {
        let config = SessionConfig::builder()
            .idle_timeout(Duration::from_secs(40 * 60))
            .absolute_timeout(Duration::from_secs(120 * 60))
            .reset_absolute_on_login(reset_on_login)
            .build()
            .unwrap();
        Lifetime::new(&config)
    }

    #[test]
    fn activity_moves_the_idle_deadline_only() {
        let started = lifetime(true).fresh(at(0));
        assert_eq!(started, Deadlines::new(at(40), at(120)));
        let later = lifetime(true).extended(started, at(30));
        assert_eq!(later, Deadlines::new(at(70), at(120)));
        // Never past the absolute deadline.
        assert_eq!(lifetime(true).extended(started, at(100)).idle(), at(120));
    }

    /// A touch is due once a quarter of the idle timeout has passed (here
    /// 10 of 40 minutes), and never when it would not move the deadline.
    #[test]
    fn a_touch_is_due_after_a_quarter_of_the_idle_timeout() {
        let started = lifetime(true).fresh(at(0));
        assert_eq!(lifetime(true).touch_due(started, at(10)), None);
        assert_eq!(
            lifetime(true).touch_due(started, at(11)),
            Some(Deadlines::new(at(51), at(120)))
        );
        let capped = Deadlines::new(at(120), at(120));
        assert_eq!(lifetime(true).touch_due(capped, at(100)), None);
    }

    #[test]
    fn a_login_restarts_the_absolute_lifetime_unless_told_not_to() {
        let started = lifetime(true).fresh(at(0));
        assert_eq!(
            lifetime(true).at_login(started, at(60)),
            Deadlines::new(at(100), at(180))
        );
        assert_eq!(
            lifetime(false).at_login(started, at(60)),
            Deadlines::new(at(100), at(120))
        );
    }
}
