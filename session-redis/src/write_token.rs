//! Write tokens: what lets a script recognise that it already ran (see
//! [`scripts`](crate::scripts)), so a write the client resends after a
//! broken connection takes effect once.

use session_core::Error;

/// A fresh token for one write: 64 random bits, as 16 hex digits. It only
/// has to differ from the tokens of the last few writes to the same
/// session; nobody can send a script but this process, so it need not be
/// secret.
pub(crate) fn fresh() -> Result<String, Error> {
    let bits = getrandom::u64().map_err(Error::backend)?;
    Ok(format!("{bits:016x}"))
}
