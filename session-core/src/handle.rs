//! Session handles: how a user names one of their sessions to revoke it,
//! without anything that could be used as a session.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::SessionKey;

/// Prefixed to a session key before it is hashed into a handle.
const HANDLE_DOMAIN: &[u8] = b"session-handle\0";
/// Bytes of a handle: 128 bits, as many as an id, so handles of one user's
/// sessions never collide.
const HANDLE_BYTES: usize = 16;
/// Length of the text form.
const HANDLE_CHARS: usize = 22;

/// An opaque name for one session in a user's list of sessions.
///
/// A handle is a hash of the session's key, which is itself a hash of its
/// id: it cannot be turned back into either, and it is never accepted
/// where an id is (a cookie holding a handle is an unknown id). Only the
/// user's own list gives it meaning: [`Revoke::One`](crate::Revoke::One)
/// looks it up among that user's sessions, so a handle of someone else's
/// session revokes nothing.
///
/// ```
/// use session_core::{SessionHandle, SessionId};
///
/// let id = SessionId::generate()?;
/// let handle = SessionHandle::of(&id.key());
/// let text = handle.to_string();
/// assert_eq!(SessionHandle::parse(&text), Some(handle));
/// assert_ne!(text, id.to_cookie_value());
/// # Ok::<(), session_core::RandomnessError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionHandle([u8; HANDLE_BYTES]);

impl SessionHandle {
    /// The handle of the session stored under `key`.
    pub fn of(key: &SessionKey) -> Self {
        let mut hash = Sha256::new();
        hash.update(HANDLE_DOMAIN);
        hash.update(key.as_bytes());
        let digest = hash.finalize();
        let mut bytes = [0; HANDLE_BYTES];
        bytes.copy_from_slice(&digest[..HANDLE_BYTES]);
        Self(bytes)
    }

    /// Parses the text form ([`Display`](fmt::Display)); anything else is
    /// `None`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != HANDLE_CHARS {
            return None;
        }
        let mut bytes = [0; HANDLE_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(HANDLE_BYTES) => Some(Self(bytes)),
            _ => None,
        }
    }
}

impl fmt::Display for SessionHandle {
    /// base64url without padding, 22 characters: safe in a URL path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionId;

    #[test]
    fn a_handle_is_neither_the_id_nor_the_key() {
        let id = SessionId::generate().unwrap();
        let key = id.key();
        let handle = SessionHandle::of(&key);
        assert!(SessionId::parse(&handle.to_string()).is_none_or(|parsed| parsed != id));
        assert!(!key.to_string().contains(&handle.to_string()));
        assert_ne!(&handle.0[..], &key.as_bytes()[..HANDLE_BYTES]);
    }

    #[test]
    fn only_the_canonical_text_parses() {
        let handle = SessionHandle::of(&SessionId::generate().unwrap().key());
        let text = handle.to_string();
        assert_eq!(text.len(), HANDLE_CHARS);
        for bad in [
            "",
            "x",
            &text[1..],
            &format!("{text}A"),
            &text.replace('A', "+"),
        ] {
            if bad != text {
                assert_eq!(SessionHandle::parse(bad), None, "{bad}");
            }
        }
    }
}
