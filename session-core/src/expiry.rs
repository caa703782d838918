//! Time as storage sees it: timestamps, a session's two deadlines, and the
//! relative lifetime backends with native expiry give a record.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long past its deadline a record is kept by native expiry (Redis TTL,
/// moka expiry).
///
/// Loads check the deadlines against `now` themselves, so this slack never
/// makes an expired session load; it only keeps the clocks of several
/// application servers, and of the store, from racing each other.
pub const EXPIRY_SLACK: Duration = Duration::from_secs(5);

/// A point in time: milliseconds since the Unix epoch, at most
/// [`Timestamp::MAX`].
///
/// Every storage operation takes `now` as an argument instead of reading a
/// clock, so tests can move time by hand and behave like production.
/// Arithmetic saturates instead of overflowing, and every timestamp fits
/// the signed 64-bit integers of SQLite and Redis.
///
/// ```
/// use std::time::Duration;
/// use session_core::Timestamp;
///
/// let t = Timestamp::from_unix_millis(1_000);
/// assert_eq!(t.saturating_add(Duration::from_secs(1)).as_unix_millis(), 2_000);
/// assert_eq!(t.saturating_sub(Duration::from_secs(9)).as_unix_millis(), 0);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The latest timestamp: `i64::MAX` milliseconds after the epoch.
    pub const MAX: Self = Self(0x7fff_ffff_ffff_ffff);

    /// The current wall-clock time (the epoch if the clock is set before it).
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self::from_unix_millis(millis(since_epoch))
    }

    /// A timestamp from milliseconds since the Unix epoch, saturating at
    /// [`Timestamp::MAX`].
    pub const fn from_unix_millis(millis: u64) -> Self {
        if millis > Self::MAX.0 {
            Self::MAX
        } else {
            Self(millis)
        }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_millis(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at [`Timestamp::MAX`].
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        Self::from_unix_millis(self.0.saturating_add(millis(duration)))
    }

    /// `self - duration`, saturating at the epoch.
    #[must_use]
    pub fn saturating_sub(self, duration: Duration) -> Self {
        Self(self.0.saturating_sub(millis(duration)))
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({}ms)", self.0)
    }
}

/// Whole milliseconds in `duration`, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The two deadlines of a session.
///
/// - `idle`: the session ends if no request extends it before then;
/// - `absolute`: the session ends then, however active it is.
///
/// A session is live at `now` only while `now` is before both. The idle
/// deadline never passes the absolute one: the constructor clamps it.
///
/// ```
/// use session_core::{Deadlines, Timestamp};
///
/// let at = Timestamp::from_unix_millis;
/// let deadlines = Deadlines::new(at(500), at(200));
/// assert_eq!(deadlines.idle(), at(200)); // clamped
/// assert!(deadlines.is_live(at(199)));
/// assert!(!deadlines.is_live(at(200)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Deadlines {
    idle: Timestamp,
    absolute: Timestamp,
}

impl Deadlines {
    /// Deadlines with `idle` clamped to `absolute`.
    pub fn new(idle: Timestamp, absolute: Timestamp) -> Self {
        Self {
            idle: idle.min(absolute),
            absolute,
        }
    }

    /// The idle deadline (never after the absolute one).
    pub fn idle(self) -> Timestamp {
        self.idle
    }

    /// The absolute deadline.
    pub fn absolute(self) -> Timestamp {
        self.absolute
    }

    /// When the session ends if nothing extends it: the earlier deadline.
    pub fn expires_at(self) -> Timestamp {
        self.idle
    }

    /// Whether a session with these deadlines is live at `now`.
    pub fn is_live(self, now: Timestamp) -> bool {
        now < self.idle && now < self.absolute
    }

    /// These deadlines with the idle one moved to `idle` (still clamped).
    #[must_use]
    pub fn with_idle(self, idle: Timestamp) -> Self {
        Self::new(idle, self.absolute)
    }

    /// The deadlines an `update` may write over `self`: the idle deadline
    /// from `requested`, the absolute one never later than it is now.
    #[must_use]
    pub fn narrowed_by(self, requested: Self) -> Self {
        Self::new(requested.idle, self.absolute.min(requested.absolute))
    }

    /// The relative lifetime a backend with native expiry sets when it
    /// writes these deadlines at `now`: time to the deadline plus
    /// [`EXPIRY_SLACK`]. Relative, never absolute, so a test on a moved clock
    /// behaves like production.
    pub fn native_ttl(self, now: Timestamp) -> Duration {
        self.expires_at().saturating_duration_since(now) + EXPIRY_SLACK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn at(millis: u64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    #[test]
    fn live_strictly_before_both_deadlines() {
        let deadlines = Deadlines::new(at(100), at(300));
        assert!(deadlines.is_live(at(99)));
        assert!(!deadlines.is_live(at(100)));
        assert!(!deadlines.is_live(at(101)));
        let extended = deadlines.with_idle(at(1_000));
        assert_eq!(extended.idle(), at(300));
        assert!(extended.is_live(at(299)));
        assert!(!extended.is_live(at(300)));
    }

    #[test]
    fn narrowing_never_extends_the_absolute_deadline() {
        let stored = Deadlines::new(at(100), at(300));
        let narrowed = stored.narrowed_by(Deadlines::new(at(250), at(900)));
        assert_eq!((narrowed.idle(), narrowed.absolute()), (at(250), at(300)));
        let shorter = stored.narrowed_by(Deadlines::new(at(250), at(200)));
        assert_eq!((shorter.idle(), shorter.absolute()), (at(200), at(200)));
    }

    #[test]
    fn native_ttl_is_relative_with_slack() {
        let deadlines = Deadlines::new(at(10_000), at(20_000));
        assert_eq!(
            deadlines.native_ttl(at(4_000)),
            Duration::from_secs(6) + EXPIRY_SLACK
        );
        assert_eq!(deadlines.native_ttl(at(99_000)), EXPIRY_SLACK);
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(at(u64::MAX), Timestamp::MAX);
        assert_eq!(at(5).saturating_add(Duration::MAX), Timestamp::MAX);
        assert_eq!(Timestamp::MAX.as_unix_millis(), i64::MAX.unsigned_abs());
        assert_eq!(at(5).saturating_duration_since(at(9)), Duration::ZERO);
    }
}
