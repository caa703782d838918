//! The versioned byte encoding of stored values: one format byte, then
//! MessagePack with field names.

use std::io::Cursor;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// First byte of every encoded record or session data. Bytes whose first
/// byte is unknown are refused with [`Error::Decode`], never guessed at.
pub const FORMAT_V1: u8 = 1;

/// `value` as [`FORMAT_V1`] then MessagePack.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut bytes = vec![FORMAT_V1];
    rmp_serde::encode::write_named(&mut bytes, value).map_err(Error::encode)?;
    Ok(bytes)
}

/// Bytes made by [`encode`]; anything else (empty, another format byte,
/// truncated or corrupt MessagePack, trailing bytes) is [`Error::Decode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    let Some((&format, body)) = bytes.split_first() else {
        return Err(Error::decode(format!("empty {what}")));
    };
    if format != FORMAT_V1 {
        return Err(Error::decode(format!("unknown {what} format {format}")));
    }
    let mut decoder = rmp_serde::Deserializer::new(Cursor::new(body));
    let value = T::deserialize(&mut decoder).map_err(Error::decode)?;
    if usize::try_from(decoder.position()).ok() != Some(body.len()) {
        return Err(Error::decode(format!("trailing bytes after the {what}")));
    }
    Ok(value)
}
