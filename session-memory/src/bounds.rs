//! The two bounds, sessions and bytes, turned into moka capacities and entry
//! weights.
//!
//! moka bounds a cache by one number, the sum of its entries' weights. Each
//! segment's capacity is its share of the byte budget, and each entry weighs
//! its bytes (with what moka spends on it), but never less than the budget's
//! share of one session (the floor). Light entries then count as the floor,
//! so a segment holds no more than its share of the sessions; heavy ones
//! count as their bytes, so it holds no more than its share of the bytes.

use session_core::Error;

use crate::stored::Stored;

/// Default bound on the bytes the sessions take: 256 MiB.
///
/// Ordinary sessions (a user id, a CSRF token, a flash message: a few
/// hundred bytes encoded, plus about 340 bytes of bookkeeping) reach
/// [`DEFAULT_MAX_SESSIONS`](crate::DEFAULT_MAX_SESSIONS) first: 100 000 of
/// them take under 100 MiB, so this bound leaves them room to grow. It binds
/// when sessions are large: 100 000 at the 64 KiB record limit would take
/// 6.5 GB; under this bound they are about 4 000. 256 MiB is what a
/// service that keeps sessions in process can be expected to spare; set
/// [`max_bytes`](crate::MemoryStorageBuilder::max_bytes) to what yours can.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// What moka and the entry cost beyond the encoded record: the key, the
/// entry and its bookkeeping in the hash map, the access and write orders
/// and the timer wheel, the shared bytes' header. Measured by
/// `bench/src/bin/memory.rs`: 382 bytes per session, less its 46-byte
/// encoded record.
const ENTRY_OVERHEAD: u64 = 336;

/// New sessions get one fifth of each bound, sessions in use the rest: the
/// usual segmented-LRU split (Caffeine's main space uses it too). Probation
/// must keep a newcomer until its second request (by default until 20 000
/// more sessions are created), while a flood costs sessions in use nothing.
const PROBATION_SHARE: u64 = 5;

/// Capacities of the two segments and the weight of every entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// The weight of the lightest entry: the byte budget's share of one
    /// session.
    floor: u32,
    /// Capacity of the probation segment, for sessions seen once.
    probation: u64,
    /// Capacity of the protected segment, for sessions seen again.
    protected: u64,
}

impl Bounds {
    /// Bounds keeping at most `max_sessions` sessions and `max_bytes` bytes.
    ///
    /// The sessions are at least two (one per segment) and at most
    /// `max_bytes`, so the floor is a byte or more. A floor over
    /// `u32::MAX` (moka's weight type) is lowered to it, and the capacities
    /// with it: the bytes stay bounded, the sessions too.
    pub(crate) fn new(max_sessions: u64, max_bytes: u64) -> Self {
        let sessions = max_sessions.min(max_bytes).max(2);
        let floor = u32::try_from(max_bytes / sessions).unwrap_or(u32::MAX);
        let probation_sessions = (sessions / PROBATION_SHARE).max(1);
        Self {
            floor,
            probation: u64::from(floor) * probation_sessions,
            protected: u64::from(floor) * (sessions - probation_sessions),
        }
    }

    /// Capacity of the probation segment.
    pub(crate) fn probation(&self) -> u64 {
        self.probation
    }

    /// Capacity of the protected segment.
    pub(crate) fn protected(&self) -> u64 {
        self.protected
    }

    /// The weight of `stored`. Entries over `u32::MAX` are refused by
    /// [`check`](Self::check) before they are written, so the saturation
    /// only ever applies to bytes planted by a raw probe.
    pub(crate) fn weight(&self, stored: &Stored) -> u32 {
        u32::try_from(Self::bytes(stored))
            .unwrap_or(u32::MAX)
            .max(self.floor)
    }

    /// Refuses an entry that could never be kept: heavier than the probation
    /// segment, where every session starts (moka would drop it without a
    /// word, after `create` reported it created), or than a weight can say.
    pub(crate) fn check(&self, stored: &Stored) -> Result<(), Error> {
        let heaviest = self.probation.min(u64::from(u32::MAX));
        if Self::bytes(stored).max(u64::from(self.floor)) <= heaviest {
            return Ok(());
        }
        Err(Error::TooLarge {
            size: stored.len(),
            limit: usize::try_from(heaviest.saturating_sub(ENTRY_OVERHEAD)).unwrap_or(usize::MAX),
        })
    }

    /// The bytes `stored` takes in the cache.
    fn bytes(stored: &Stored) -> u64 {
        u64::try_from(stored.len())
            .unwrap_or(u64::MAX)
            .saturating_add(ENTRY_OVERHEAD)
    }
}
