//! How deeply a MessagePack value nests, measured without recursion.
//!
//! serde decodes nested values by recursing, one set of stack frames per
//! level, so bytes nested thousands deep overflow a worker thread's stack
//! and abort the process. rmp-serde's own depth limit does not count enum
//! variants (a one-entry map each), so the bytes are measured here first,
//! with a loop, before serde sees them.

use rmp::Marker;

use crate::Error;

/// Fails with [`Error::Decode`] if the value at the start of `bytes` has
/// more than `limit` arrays or maps inside each other, or is truncated.
/// Bytes after the value are not looked at.
pub(crate) fn check_depth(mut bytes: &[u8], limit: usize) -> Result<(), Error> {
    // For each open array or map, how many values it still holds;
    // innermost last.
    let mut open: Vec<u64> = Vec::new();
    loop {
        match header(&mut bytes)? {
            Next::Payload(length) => {
                take(&mut bytes, length)?;
            }
            Next::Children(count) => {
                if open.len() >= limit {
                    return Err(Error::decode(format!(
                        "a stored value nests deeper than {limit} levels"
                    )));
                }
                if count > 0 {
                    open.push(count);
                    continue;
                }
            }
        }
        // A value ended: count it off its container, and close every
        // container it completes.
        loop {
            let Some(remaining) = open.last_mut() else {
                return Ok(());
            };
            *remaining -= 1;
            if *remaining > 0 {
                break;
            }
            open.pop();
        }
    }
}

/// What follows a value's header.
enum Next {
    /// Bytes that hold no further values.
    Payload(usize),
    /// This many values (an array's elements, a map's keys and values).
    Children(u64),
}

/// Reads one value's header: its marker and any length after it.
fn header(bytes: &mut &[u8]) -> Result<Next, Error> {
    let marker = Marker::from_u8(byte(bytes)?);
    let payload = |length: usize| Ok(Next::Payload(length));
    match marker {
        Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
            payload(0)
        }
        Marker::U8 | Marker::I8 => payload(1),
        Marker::U16 | Marker::I16 => payload(2),
        Marker::U32 | Marker::I32 | Marker::F32 => payload(4),
        Marker::U64 | Marker::I64 | Marker::F64 => payload(8),
        Marker::FixStr(length) => payload(usize::from(length)),
        Marker::Str8 | Marker::Bin8 => payload(length(bytes, 1)?),
        Marker::Str16 | Marker::Bin16 => payload(length(bytes, 2)?),
        Marker::Str32 | Marker::Bin32 => payload(length(bytes, 4)?),
        // An extension: a type byte, then its data.
        Marker::FixExt1 => payload(2),
        Marker::FixExt2 => payload(3),
        Marker::FixExt4 => payload(5),
        Marker::FixExt8 => payload(9),
        Marker::FixExt16 => payload(17),
        Marker::Ext8 => payload(length(bytes, 1)?.saturating_add(1)),
        Marker::Ext16 => payload(length(bytes, 2)?.saturating_add(1)),
        Marker::Ext32 => payload(length(bytes, 4)?.saturating_add(1)),
        Marker::FixArray(elements) => Ok(Next::Children(u64::from(elements))),
        Marker::Array16 => Ok(Next::Children(count(bytes, 2)?)),
        Marker::Array32 => Ok(Next::Children(count(bytes, 4)?)),
        Marker::FixMap(entries) => Ok(Next::Children(2 * u64::from(entries))),
        Marker::Map16 => Ok(Next::Children(2 * count(bytes, 2)?)),
        Marker::Map32 => Ok(Next::Children(2 * count(bytes, 4)?)),
        Marker::Reserved => Err(Error::decode("a reserved MessagePack marker")),
    }
}

/// A big-endian unsigned integer of `width` bytes.
fn count(bytes: &mut &[u8], width: usize) -> Result<u64, Error> {
    let taken = take(bytes, width)?;
    Ok(taken
        .iter()
        .fold(0, |value, &byte| value << 8 | u64::from(byte)))
}

/// A big-endian length of `width` bytes.
fn length(bytes: &mut &[u8], width: usize) -> Result<usize, Error> {
    usize::try_from(count(bytes, width)?).map_err(Error::decode)
}

fn byte(bytes: &mut &[u8]) -> Result<u8, Error> {
    Ok(take(bytes, 1)?[0])
}

/// The next `length` bytes.
fn take<'a>(bytes: &mut &'a [u8], length: usize) -> Result<&'a [u8], Error> {
    if bytes.len() < length {
        return Err(Error::decode("truncated MessagePack value"));
    }
    let (taken, rest) = bytes.split_at(length);
    *bytes = rest;
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(bytes: &[u8], limit: usize) -> bool {
        check_depth(bytes, limit).is_ok()
    }

    #[test]
    fn counts_arrays_and_maps_inside_each_other() {
        // [1, [[[0]]], "s"]
        let value = b"\x93\x01\x91\x91\x91\x00\xa1s";
        assert!(depth_ok(value, 4));
        assert!(!depth_ok(value, 3));
        // {"a": [], "b": {"c": 1}}: siblings do not add up.
        let map = b"\x82\xa1a\x90\xa1b\x81\xa1c\x01";
        assert!(depth_ok(map, 2));
        assert!(!depth_ok(map, 1));
        assert!(depth_ok(b"\x05", 0) && !depth_ok(b"\x90", 0));
    }

    #[test]
    fn skips_payloads_whole() {
        // A bin8 and an ext8 whose payloads look like nested arrays.
        let value = [
            &[0x92, 0xc4, 3, 0x91, 0x91, 0x90, 0xc7, 2, 7][..],
            &[0x91, 0x90],
        ]
        .concat();
        assert!(depth_ok(&value, 1));
    }

    #[test]
    fn truncated_or_reserved_is_a_decode_error() {
        for bad in [&[][..], &[0x92, 0x01], &[0xc4, 5, 1], &[0xdc, 0], &[0xc1]] {
            let checked = check_depth(bad, 128);
            assert!(matches!(checked, Err(Error::Decode(_))), "{bad:x?}");
        }
    }
}
