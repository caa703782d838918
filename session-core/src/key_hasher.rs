//! A hasher for maps keyed by [`SessionKey`]s.

use std::hash::{BuildHasher, Hasher};

#[cfg(doc)]
use crate::SessionKey;

/// Hashes session keys by taking their first eight bytes, for maps keyed
/// by the keys of stored sessions (a cache, the requests at a session).
///
/// A key is already SHA-256 output, uniformly spread, so hashing it again
/// (the standard maps' SipHash, several times per operation in moka) only costs
/// time. Flooding one bucket would need stored keys with colliding
/// prefixes, and stored keys only ever come from ids the server drew; a
/// client choosing ids can only look keys up.
///
/// ```
/// use std::collections::HashMap;
/// use session_core::{KeyHasher, SessionId};
///
/// let key = SessionId::generate()?.key();
/// let mut sessions = HashMap::with_hasher(KeyHasher);
/// sessions.insert(key, "alice");
/// assert_eq!(sessions.get(&key), Some(&"alice"));
/// # Ok::<(), session_core::RandomnessError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher;

impl BuildHasher for KeyHasher {
    type Hasher = PrefixHasher;

    fn build_hasher(&self) -> PrefixHasher {
        PrefixHasher(0)
    }
}

/// See [`KeyHasher`].
#[derive(Debug)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Mixed in, not taken as is, so that any other writes (such as a
        // length prefix) still change the hash.
        let mut prefix = [0; 8];
        let take = bytes.len().min(8);
        prefix[..take].copy_from_slice(&bytes[..take]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(prefix);
    }
}
