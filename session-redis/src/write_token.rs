//! Write tokens: what lets a script recognise that it already ran (see
//! [`scripts`](crate::scripts)), so a write the client resends after a
//! broken connection takes effect once.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use session_core::Error;

/// Where this process's tokens start: random, drawn once.
static START: OnceLock<u64> = OnceLock::new();
/// How many tokens this process handed out.
static ISSUED: AtomicU64 = AtomicU64::new(0);

/// A fresh token for one write, as 16 hex digits. It only has to differ
/// from the tokens of the last few writes to the same session, and nobody
/// can send a script but this process, so it need not be secret: a count
/// from a random start is enough (two processes collide only if their
/// starts fall within as many tokens of each other as they issue, a
/// chance of about one in 2^64 per token), and it spares every write a
/// call into the OS for randomness.
pub(crate) fn fresh() -> Result<String, Error> {
    let start = match START.get() {
        Some(start) => *start,
        None => {
            let drawn = getrandom::u64().map_err(Error::backend)?;
            *START.get_or_init(|| drawn)
        }
    };
    let bits = start.wrapping_add(ISSUED.fetch_add(1, Ordering::Relaxed));
    Ok(format!("{bits:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_sixteen_hex_digits_and_differ() {
        let first = fresh().unwrap();
        let second = fresh().unwrap();
        assert_eq!(first.len(), 16);
        assert!(first.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(first, second);
    }
}
