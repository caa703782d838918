//! Log lines that anyone can trigger by sending a cookie (a forged, expired
//! or malformed id), kept to a rate that cannot flood the logs.

use std::sync::atomic::{AtomicU64, Ordering};

use session_core::Timestamp;

/// At most one line per kind of event in this many milliseconds (a minute).
const INTERVAL_MILLIS: u64 = 60_000;

/// Counts one kind of event and says when a summary line is due.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// When the last line was logged, in Unix milliseconds; 0 for never.
    logged_at: AtomicU64,
    /// Events since the last line.
    unlogged: AtomicU64,
}

impl Throttle {
    /// Counts `events` at `now`; if no line was logged in the last
    /// minute, returns how many events the line due now stands for.
    pub(crate) fn count(&self, events: u64, now: Timestamp) -> Option<u64> {
        self.unlogged.fetch_add(events, Ordering::Relaxed);
        let now = now.as_unix_millis().max(1);
        let last = self.logged_at.load(Ordering::Relaxed);
        if last != 0 && now < last.saturating_add(INTERVAL_MILLIS) {
            return None;
        }
        // One caller wins the line; the others' events go into the next.
        self.logged_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        Some(self.unlogged.swap(0, Ordering::Relaxed))
    }
}

/// The throttles of one layer, one per kind of event a client controls.
#[derive(Debug, Default)]
pub(crate) struct Throttles {
    /// A cookie named no live session (expired, logged out or forged).
    pub(crate) unknown: Throttle,
    /// Session cookies that are not well-formed ids.
    pub(crate) malformed: Throttle,
    /// Session cookies beyond the few that are looked up.
    pub(crate) excess: Throttle,
    /// Several session cookies named live sessions.
    pub(crate) ambiguous: Throttle,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counts_every_event() {
        let throttle = Throttle::default();
        let at = |seconds: u64| Timestamp::from_unix_millis(1_000_000 + seconds * 1000);
        assert_eq!(throttle.count(4, at(0)), Some(4));
        assert_eq!(throttle.count(4, at(1)), None);
        assert_eq!(throttle.count(2, at(59)), None);
        assert_eq!(throttle.count(1, at(60)), Some(7));
        assert_eq!(throttle.count(1, at(61)), None);
    }
}
