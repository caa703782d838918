//! A session's own lifetime: the kind of cookie it has and its timeouts,
//! where a handler chose them instead of the layer's defaults.

use std::num::NonZeroU64;
use std::time::Duration;

use crate::Error;
use crate::codec;

/// How one session lives, where it departs from the defaults of the layer
/// serving it: whether its cookie is persistent (remember me), its idle
/// timeout and its absolute timeout. Each left unset follows the layer.
///
/// It is stored with the session ([`Record::lifetime`](crate::Record::lifetime))
/// and set by a write whose [`ChangeSet`](crate::ChangeSet) carries it
/// ([`ChangeSet::set_lifetime`](crate::ChangeSet::set_lifetime)), so the
/// choice survives later requests and moves with the session when its id
/// changes. The layer keeps each timeout within its bounds, and an absolute
/// deadline is never pushed later by it: only a login restarts it.
///
/// Timeouts are kept to the millisecond, as deadlines are, and are at
/// least one.
///
/// ```
/// use std::time::Duration;
/// use session_core::Lifetime;
///
/// let remember = Lifetime::new()
///     .persistent(true)
///     .idle_timeout(Duration::from_secs(30 * 24 * 3600));
/// assert_eq!(remember.persistence(), Some(true));
/// assert_eq!(remember.absolute(), None); // the layer's
/// assert_eq!(Lifetime::decode(&remember.encode())?, remember);
/// assert!(Lifetime::new().is_default());
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[must_use]
pub struct Lifetime {
    persistent: Option<bool>,
    // Whole milliseconds, at least one: a record carries this on every
    // request, so it is kept small.
    idle: Option<NonZeroU64>,
    absolute: Option<NonZeroU64>,
}

impl Lifetime {
    /// The layer's defaults in every respect.
    pub const fn new() -> Self {
        Self {
            persistent: None,
            idle: None,
            absolute: None,
        }
    }

    /// This lifetime, with a persistent cookie (`Max-Age` following the
    /// session's deadline) or a browser-session one.
    pub const fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = Some(persistent);
        self
    }

    /// This lifetime, with its own idle timeout (whole milliseconds, at
    /// least one).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle = Some(whole_millis(timeout));
        self
    }

    /// This lifetime, with its own absolute timeout (whole milliseconds,
    /// at least one).
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.absolute = Some(whole_millis(timeout));
        self
    }

    /// Whether the cookie is persistent, if chosen.
    pub const fn persistence(&self) -> Option<bool> {
        self.persistent
    }

    /// The idle timeout, if chosen.
    pub fn idle(&self) -> Option<Duration> {
        self.idle.map(duration)
    }

    /// The absolute timeout, if chosen.
    pub fn absolute(&self) -> Option<Duration> {
        self.absolute.map(duration)
    }

    /// Whether nothing is chosen: the layer's defaults. Stores keep nothing
    /// for such a lifetime.
    pub const fn is_default(&self) -> bool {
        self.persistent.is_none() && self.idle.is_none() && self.absolute.is_none()
    }

    /// The lifetime as stores that keep it beside a record's other fields
    /// hold it: the format byte, then the MessagePack map the record
    /// encoding holds under `l`.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode_lifetime(self)
    }

    /// Bytes made by [`encode`](Self::encode).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] for anything else.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        codec::decode_lifetime(bytes)
    }
}

/// `duration` in whole milliseconds, at least one, saturating where they
/// no longer fit in a `u64`.
fn whole_millis(duration: Duration) -> NonZeroU64 {
    let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    NonZeroU64::new(millis).unwrap_or(NonZeroU64::MIN)
}

fn duration(millis: NonZeroU64) -> Duration {
    Duration::from_millis(millis.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_round_trips() {
        let idle = Duration::from_millis(1_500);
        for persistent in [None, Some(false), Some(true)] {
            for idle in [None, Some(idle)] {
                for absolute in [None, Some(Duration::MAX)] {
                    let lifetime = Lifetime {
                        persistent,
                        idle: idle.map(whole_millis),
                        absolute: absolute.map(whole_millis),
                    };
                    assert_eq!(Lifetime::decode(&lifetime.encode()).unwrap(), lifetime);
                }
            }
        }
    }

    #[test]
    fn timeouts_are_kept_to_the_millisecond() {
        let lifetime = Lifetime::new().idle_timeout(Duration::from_micros(2_999));
        assert_eq!(lifetime.idle(), Some(Duration::from_millis(2)));
        let zero = Lifetime::new().absolute_timeout(Duration::ZERO);
        assert_eq!(zero.absolute(), Some(Duration::from_millis(1)));
        assert_eq!(size_of::<Lifetime>(), 24);
    }

    #[test]
    fn other_bytes_are_decode_errors() {
        let good = Lifetime::new().persistent(true).encode();
        for bad in [
            &[][..],
            &good[..good.len() - 1],
            &[2, 0x80],
            &[crate::FORMAT_V1, 0x81, 0xa1, b'x', 0xc3],
            &[crate::FORMAT_V1, 0x81, 0xa1, b'p', 0x01],
            &[crate::FORMAT_V1, 0x80, 0xc0],
        ] {
            assert!(
                matches!(Lifetime::decode(bad), Err(Error::Decode(_))),
                "{bad:?}"
            );
        }
    }
}
