//! Who a session belongs to: the user's key (a hash of the application's
//! user id), the device facts the application records, and when the
//! session was last seen.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::Timestamp;

/// Prefixed to a user id before it is hashed, so a user key can never equal
/// the key of a session (those hash 16 random bytes with no prefix).
const USER_DOMAIN: &[u8] = b"session-user\0";

/// SHA-256 of an application's user id: what storage keeps instead of it.
///
/// The store's index of a user's sessions is keyed by this, so a dump of
/// the store names no user in plain text. It is a plain hash, not a keyed
/// one: whoever can guess a user id (an e-mail address, say) can check the
/// guess against a dump, as for any unsalted hash (SECURITY.md).
///
/// ```
/// use session_core::UserKey;
///
/// assert_eq!(UserKey::of("ada"), UserKey::of("ada"));
/// assert_ne!(UserKey::of("ada"), UserKey::of("Ada"));
/// assert_eq!(UserKey::of("ada").to_string().len(), 64);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey([u8; 32]);

impl UserKey {
    /// The key of the user the application calls `user_id`.
    pub fn of(user_id: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(USER_DOMAIN);
        hash.update(user_id.as_bytes());
        Self(hash.finalize().into())
    }

    /// The 32 bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a key from the bytes a backend stored.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for UserKey {
    /// Lowercase hex, the form backends put after their prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserKey({self})")
    }
}

/// The most facts a [`Device`] holds.
pub const MAX_DEVICE_FACTS: usize = 8;
/// The longest fact name a [`Device`] keeps, in bytes; longer ones are cut.
pub const MAX_DEVICE_NAME_BYTES: usize = 32;
/// The longest fact value a [`Device`] keeps, in bytes; longer ones are cut
/// (at a character boundary), as a user agent often needs.
pub const MAX_DEVICE_VALUE_BYTES: usize = 256;

/// What the application records about the device a session was logged in
/// from, shown when the user lists their sessions: a user agent, say.
///
/// Bounded, because it comes from the request: at most
/// [`MAX_DEVICE_FACTS`] facts, names and values cut to
/// [`MAX_DEVICE_NAME_BYTES`] and [`MAX_DEVICE_VALUE_BYTES`].
///
/// ```
/// use session_core::{Device, MAX_DEVICE_VALUE_BYTES};
///
/// let device = Device::new().with("user_agent", &"Mozilla/5.0 ".repeat(40));
/// let agent = device.get("user_agent").unwrap();
/// assert_eq!(agent.len(), MAX_DEVICE_VALUE_BYTES);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device(BTreeMap<String, String>);

impl Device {
    /// No facts.
    pub fn new() -> Self {
        Self::default()
    }

    /// These facts with `name` set to `value`, both cut to their bounds. A
    /// new name beyond [`MAX_DEVICE_FACTS`] is not added.
    #[must_use]
    pub fn with(mut self, name: &str, value: &str) -> Self {
        let name = cut(name, MAX_DEVICE_NAME_BYTES);
        if self.0.len() < MAX_DEVICE_FACTS || self.0.contains_key(name) {
            self.0.insert(
                name.to_owned(),
                cut(value, MAX_DEVICE_VALUE_BYTES).to_owned(),
            );
        }
        self
    }

    /// The value of the fact `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every fact, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Whether there are no facts.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes the facts take, names and values together.
    pub fn size(&self) -> usize {
        self.iter()
            .map(|(name, value)| name.len() + value.len())
            .sum()
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Device {
    /// Facts as [`Device::with`] adds them, one after another.
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(facts: I) -> Self {
        facts
            .into_iter()
            .fold(Self::new(), |device, (name, value)| {
                device.with(name, value)
            })
    }
}

/// `text` cut to at most `limit` bytes, at a character boundary.
fn cut(text: &str, limit: usize) -> &str {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A session's binding to a user: set by a login, kept by every write,
/// removed with the session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// Whose session it is.
    pub user: UserKey,
    /// What the application recorded at login.
    pub device: Device,
    /// The last write to the session: its login, an update or a touch.
    /// (Touches are throttled by the HTTP layer, so this is as exact as
    /// its touch interval.)
    pub last_seen: Timestamp,
}

impl Account {
    /// A binding to `user`, last seen at `last_seen`.
    pub fn new(user: UserKey, device: Device, last_seen: Timestamp) -> Self {
        Self {
            user,
            device,
            last_seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_never_equal_session_keys_of_the_same_bytes() {
        // A session key hashes its id's bytes with no prefix.
        let bytes = "0123456789abcdef";
        let session_like: [u8; 32] = Sha256::digest(bytes).into();
        assert_ne!(UserKey::of(bytes).as_bytes(), &session_like);
    }

    #[test]
    fn values_are_cut_at_a_character_boundary() {
        let value = "é".repeat(MAX_DEVICE_VALUE_BYTES);
        let device = Device::new().with("agent", &value);
        let kept = device.get("agent").unwrap();
        assert_eq!(kept.len(), MAX_DEVICE_VALUE_BYTES);
        assert!(kept.chars().all(|c| c == 'é'));
        let odd = format!("x{value}");
        let kept = Device::new()
            .with("agent", &odd)
            .get("agent")
            .unwrap()
            .len();
        assert_eq!(kept, MAX_DEVICE_VALUE_BYTES - 1);
    }

    #[test]
    fn facts_are_bounded_in_number_but_can_be_replaced() {
        let names: Vec<String> = (0..MAX_DEVICE_FACTS + 2).map(|n| format!("f{n}")).collect();
        let mut device: Device = names.iter().map(|name| (name.as_str(), "v")).collect();
        assert_eq!(device.iter().count(), MAX_DEVICE_FACTS);
        device = device.with("f0", "new");
        assert_eq!(device.get("f0"), Some("new"));
        let long = "n".repeat(100);
        let device = Device::new().with(&long, "v");
        assert_eq!(device.iter().next().unwrap().0.len(), MAX_DEVICE_NAME_BYTES);
    }
}
