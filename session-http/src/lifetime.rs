//! How long a session lives: the deadlines of a new session, how activity
//! moves them, when a read-only request is worth a `touch`, what a login
//! does, and what kind of cookie a session has, each from the layer's
//! settings and the session's own [`Lifetime`], kept within the layer's
//! bounds. Pure functions of the configuration and the time, so the
//! policy is tested without storage.

use std::time::Duration;

use session_core::{Deadlines, Lifetime, Timestamp};

use crate::config::SessionConfig;

/// The lifetime policy of one layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// The timeouts and cookie kind of a session without its own.
    default: Terms,
    /// The longest timeouts a session may have.
    max_idle: Duration,
    max_absolute: Duration,
    reset_on_login: bool,
}

/// How one session lives, its own choices over the layer's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Terms {
    pub(crate) idle: Duration,
    pub(crate) absolute: Duration,
    pub(crate) persistent: bool,
}

impl Policy {
    pub(crate) fn new(config: &SessionConfig) -> Self {
        Self {
            default: Terms {
                idle: config.idle_timeout,
                absolute: config.absolute_timeout,
                persistent: config.persistent,
            },
            max_idle: config.max_idle_timeout(),
            max_absolute: config.max_absolute_timeout(),
            reset_on_login: config.reset_absolute_on_login,
        }
    }

    /// `own` with each chosen timeout within the layer's bounds (at least
    /// a second, at most the bound): what a handler's choice is stored as.
    pub(crate) fn bounded(self, own: Lifetime) -> Lifetime {
        let within = |timeout: Duration, most: Duration| timeout.clamp(MIN_TIMEOUT, most);
        let mut bounded = Lifetime::new();
        if let Some(persistent) = own.persistence() {
            bounded = bounded.persistent(persistent);
        }
        if let Some(idle) = own.idle() {
            bounded = bounded.idle_timeout(within(idle, self.max_idle));
        }
        if let Some(absolute) = own.absolute() {
            bounded = bounded.absolute_timeout(within(absolute, self.max_absolute));
        }
        bounded
    }

    /// The terms of a session whose own lifetime is `own`: its choices,
    /// within the bounds (which may have shrunk since it chose), over the
    /// layer's defaults.
    pub(crate) fn terms(self, own: Lifetime) -> Terms {
        // Most sessions never chose: no bounds to apply.
        if own.is_default() {
            return self.default;
        }
        let own = self.bounded(own);
        Terms {
            idle: own.idle().unwrap_or(self.default.idle),
            absolute: own.absolute().unwrap_or(self.default.absolute),
            persistent: own.persistence().unwrap_or(self.default.persistent),
        }
    }

    /// Deadlines of a session starting at `now`.
    pub(crate) fn fresh(self, own: Lifetime, now: Timestamp) -> Deadlines {
        let terms = self.terms(own);
        Deadlines::new(
            now.saturating_add(terms.idle),
            now.saturating_add(terms.absolute),
        )
    }

    /// Deadlines after a write at `now` that takes the session's own
    /// lifetime from `before` to `after` (the same one, for most writes):
    /// the idle deadline moves by the idle timeout of `after`; the absolute
    /// one stays, or comes earlier if the absolute timeout of `after`,
    /// counted from when the current absolute lifetime began, ends sooner.
    pub(crate) fn extended(
        self,
        (before, after): (Lifetime, Lifetime),
        current: Deadlines,
        now: Timestamp,
    ) -> Deadlines {
        let terms = self.terms(after);
        let mut absolute = current.absolute();
        if after != before {
            let began = absolute.saturating_sub(self.terms(before).absolute);
            absolute = absolute.min(began.saturating_add(terms.absolute));
        }
        Deadlines::new(now.saturating_add(terms.idle), absolute)
    }

    /// The deadlines a read-only request should `touch` the session to, if
    /// any: once a quarter of its idle timeout has passed since the idle
    /// deadline last moved, so most read-only requests write nothing. Only
    /// the idle deadline moves.
    pub(crate) fn touch_due(
        self,
        own: Lifetime,
        current: Deadlines,
        now: Timestamp,
    ) -> Option<Deadlines> {
        let idle = self.terms(own).idle;
        let extended = current.with_idle(now.saturating_add(idle));
        let remaining = current.idle().saturating_duration_since(now);
        let due = extended.idle() > current.idle() && remaining < idle.saturating_mul(3) / 4;
        due.then_some(extended)
    }

    /// Deadlines of a session logging in at `now`, its own lifetime going
    /// from `before` to `after`: the absolute lifetime restarts unless the
    /// layer says otherwise.
    pub(crate) fn at_login(
        self,
        lifetimes: (Lifetime, Lifetime),
        current: Deadlines,
        now: Timestamp,
    ) -> Deadlines {
        if self.reset_on_login {
            self.fresh(lifetimes.1, now)
        } else {
            self.extended(lifetimes, current, now)
        }
    }
}

/// The shortest timeout a session may choose: shorter ones would end it
/// before its response arrived.
const MIN_TIMEOUT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;
    const DEFAULTS: Lifetime = Lifetime::new();
    const SAME: (Lifetime, Lifetime) = (DEFAULTS, DEFAULTS);

    fn at(minutes: u64) -> Timestamp {
        Timestamp::from_unix_millis(1_000_000_000 + minutes * MINUTE)
    }

    fn minutes(n: u64) -> Duration {
        Duration::from_secs(n * 60)
    }

    fn policy(reset_on_login: bool) -> Policy {
        let config = SessionConfig::builder()
            .idle_timeout(minutes(40))
            .absolute_timeout(minutes(120))
            .max_idle_timeout(minutes(600))
            .max_absolute_timeout(minutes(900))
            .reset_absolute_on_login(reset_on_login)
            .build()
            .unwrap();
        Policy::new(&config)
    }

    #[test]
    fn activity_moves_the_idle_deadline_only() {
        let started = policy(true).fresh(DEFAULTS, at(0));
        assert_eq!(started, Deadlines::new(at(40), at(120)));
        let later = policy(true).extended(SAME, started, at(30));
        assert_eq!(later, Deadlines::new(at(70), at(120)));
        // Never past the absolute deadline.
        let late = policy(true).extended(SAME, started, at(100));
        assert_eq!(late.idle(), at(120));
    }

    /// A touch is due once a quarter of the idle timeout has passed (here
    /// 10 of 40 minutes), and never when it would not move the deadline.
    #[test]
    fn a_touch_is_due_after_a_quarter_of_the_idle_timeout() {
        let started = policy(true).fresh(DEFAULTS, at(0));
        assert_eq!(policy(true).touch_due(DEFAULTS, started, at(10)), None);
        assert_eq!(
            policy(true).touch_due(DEFAULTS, started, at(11)),
            Some(Deadlines::new(at(51), at(120)))
        );
        let capped = Deadlines::new(at(120), at(120));
        assert_eq!(policy(true).touch_due(DEFAULTS, capped, at(100)), None);
    }

    #[test]
    fn a_login_restarts_the_absolute_lifetime_unless_told_not_to() {
        let started = policy(true).fresh(DEFAULTS, at(0));
        assert_eq!(
            policy(true).at_login(SAME, started, at(60)),
            Deadlines::new(at(100), at(180))
        );
        assert_eq!(
            policy(false).at_login(SAME, started, at(60)),
            Deadlines::new(at(100), at(120))
        );
    }

    /// A session's own timeouts apply within the bounds: longer ones are
    /// cut to the bound, shorter ones raised to a second.
    #[test]
    fn own_timeouts_are_kept_within_the_bounds() {
        let own = Lifetime::new()
            .idle_timeout(minutes(10_000))
            .absolute_timeout(Duration::ZERO);
        let bounded = policy(true).bounded(own);
        assert_eq!(bounded.idle(), Some(minutes(600)));
        assert_eq!(bounded.absolute(), Some(MIN_TIMEOUT));
        let remember = Lifetime::new().persistent(true).idle_timeout(minutes(500));
        let terms = policy(true).terms(remember);
        assert_eq!(
            terms,
            Terms {
                idle: minutes(500),
                absolute: minutes(120),
                persistent: true,
            }
        );
        assert!(!policy(true).terms(DEFAULTS).persistent);
    }

    /// Activity moves the idle deadline by the session's own idle timeout,
    /// and a shorter own absolute timeout brings the absolute deadline
    /// forward, counted from when the absolute lifetime began; a longer
    /// one never pushes it back, but a login starts from it.
    #[test]
    fn own_timeouts_move_the_deadlines_and_only_a_login_lengthens() {
        let started = policy(true).fresh(DEFAULTS, at(0));
        let admin = Lifetime::new()
            .idle_timeout(minutes(5))
            .absolute_timeout(minutes(30));
        let shortened = policy(true).extended((DEFAULTS, admin), started, at(10));
        assert_eq!(shortened, Deadlines::new(at(15), at(30)));
        // Kept: the idle timeout is its own, the absolute deadline stays.
        assert_eq!(
            policy(true).extended((admin, admin), shortened, at(20)),
            Deadlines::new(at(25), at(30))
        );
        let long = Lifetime::new()
            .idle_timeout(minutes(500))
            .absolute_timeout(minutes(900));
        assert_eq!(
            policy(true).extended((admin, long), shortened, at(20)),
            Deadlines::new(at(30), at(30))
        );
        assert_eq!(
            policy(true).at_login((admin, long), shortened, at(20)),
            Deadlines::new(at(520), at(920))
        );
        assert_eq!(
            policy(true).touch_due(long, started, at(10)),
            Some(Deadlines::new(at(120), at(120)))
        );
    }
}
