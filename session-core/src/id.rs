//! Session ids (the secret in the cookie) and session keys (their hash, the
//! only form storage ever sees).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Number of random bytes in a session id (128 bits).
const ID_BYTES: usize = 16;
/// Length of the canonical base64url (unpadded) form of an id.
const ID_CHARS: usize = 22;

/// A session id: 128 bits from the operating system's CSPRNG.
///
/// Its text form is base64url without padding, exactly 22 characters.
/// `Debug` and `Display` never print it; the only way to get the secret out
/// is [`SessionId::to_cookie_value`], which says what it is for.
///
/// ```
/// use session_core::SessionId;
///
/// let id = SessionId::generate()?;
/// let value = id.to_cookie_value();
/// assert_eq!(value.len(), 22);
/// assert_eq!(SessionId::parse(&value), Some(id.clone()));
/// assert_eq!(format!("{id:?}"), "SessionId(<redacted>)");
/// # Ok::<(), session_core::RandomnessError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    /// Draws a new id from the operating system's CSPRNG.
    ///
    /// # Errors
    ///
    /// [`RandomnessError`] if the operating system cannot provide random
    /// bytes; no id is ever made from anything weaker.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = [0; ID_BYTES];
        getrandom::fill(&mut bytes).map_err(RandomnessError)?;
        Ok(Self(bytes))
    }

    /// Parses the canonical text form; anything else is `None`.
    ///
    /// Only the exact output of [`to_cookie_value`](Self::to_cookie_value)
    /// is accepted: other lengths, padding, the standard alphabet and
    /// non-zero trailing bits are all refused, so every id has exactly one
    /// spelling.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != ID_CHARS {
            return None;
        }
        let mut bytes = [0; ID_BYTES];
        // The engine refuses non-zero trailing bits, so this is canonical.
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(ID_BYTES) => Some(Self(bytes)),
            _ => None,
        }
    }

    /// The secret text form, for the cookie value and nothing else.
    pub fn to_cookie_value(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The key this session is stored under.
    pub fn key(&self) -> SessionKey {
        SessionKey(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The operating system could not provide random bytes for a session id.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomnessError(#[source] getrandom::Error);

/// SHA-256 of a session id: what storage receives instead of the id.
///
/// A dump of the store therefore holds no usable cookie. The key is not
/// secret, so `Display` prints it as lowercase hex, which is also the form
/// backends put after their prefix.
///
/// ```
/// use session_core::SessionId;
///
/// let id = SessionId::generate()?;
/// let key = id.key();
/// assert_eq!(key.to_string().len(), 64);
/// assert!(!key.to_string().contains(&id.to_cookie_value()));
/// # Ok::<(), session_core::RandomnessError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// The 32 bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a key from the bytes a backend stored.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_are_canonical_and_distinct() {
        let ids: std::collections::HashSet<_> = (0..10_000)
            .map(|_| SessionId::generate().unwrap().to_cookie_value())
            .collect();
        assert_eq!(ids.len(), 10_000);
        for text in &ids {
            assert_eq!(text.len(), ID_CHARS);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }

    /// Each of the 128 bits is set in half of the ids: 200 000 draws put
    /// the standard deviation of each rate at 0.11 %, so a bound of 0.6 %
    /// (over 5 deviations) fails only for a biased generator.
    #[test]
    fn every_bit_is_a_fair_coin() {
        const DRAWS: u32 = 200_000;
        let mut ones = [0_u32; ID_BYTES * 8];
        for _ in 0..DRAWS {
            let id = SessionId::generate().unwrap();
            for (position, count) in ones.iter_mut().enumerate() {
                *count += u32::from(id.0[position / 8] >> (position % 8) & 1);
            }
        }
        for (position, count) in ones.iter().enumerate() {
            let rate = f64::from(*count) / f64::from(DRAWS);
            assert!(
                (rate - 0.5).abs() < 0.006,
                "bit {position} set in {rate:.4} of ids"
            );
        }
    }

    #[test]
    fn redacted_everywhere() {
        let id = SessionId::generate().unwrap();
        let secret = id.to_cookie_value();
        for shown in [
            format!("{id}"),
            format!("{id:?}"),
            format!("{:?}", Some(&id)),
        ] {
            assert!(!shown.contains(&secret), "{shown}");
        }
    }

    #[test]
    fn key_is_sha256_of_the_id_bytes() {
        // SHA-256 of sixteen zero bytes.
        let key = SessionId([0; ID_BYTES]).key();
        assert_eq!(
            key.to_string(),
            "374708fff7719dd5979ec875d56cd2286f6d3cf7ec317a3b25632aab28ec37bb"
        );
        assert_eq!(SessionKey::from_bytes(*key.as_bytes()), key);
    }

    #[test]
    fn refuses_non_canonical_forms() {
        let canonical = SessionId([0xff; ID_BYTES]).to_cookie_value();
        assert_eq!(canonical, "_____________________w");
        for bad in [
            "",
            "malformed",
            "_____________________",    // 21 characters
            "_____________________w_",  // 23 characters
            "_____________________x",   // non-zero trailing bits
            "_____________________w==", // padding
            "/////////////////////w",   // standard alphabet
            "____________________%2w",  // percent sign
            "___________________ _w",   // space
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
        assert!(SessionId::parse(&canonical).is_some());
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(bytes in any::<[u8; ID_BYTES]>()) {
            let id = SessionId(bytes);
            prop_assert_eq!(SessionId::parse(&id.to_cookie_value()), Some(id));
        }

        #[test]
        fn whatever_parses_re_encodes_to_itself(text in "\\PC{0,30}|[A-Za-z0-9_-]{22}") {
            if let Some(id) = SessionId::parse(&text) {
                prop_assert_eq!(id.to_cookie_value(), text);
            }
        }
    }
}
