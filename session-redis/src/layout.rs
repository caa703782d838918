//! How a record is laid out in its Redis hash (see [`scripts`](crate::scripts)).

use session_core::{Deadlines, Error, Record, SessionData, Timestamp, Value};

/// The metadata field.
pub(crate) const META: &str = "m";
/// The prefix of every value's field.
const DATA: &str = "d:";
/// The metadata of a record a cluster `cycle` has sealed.
const SEALED: &[u8] = b"S;";

/// A hash's fields with their values, as Redis sends them.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The field of the value `name`.
pub(crate) fn data_field(name: &str) -> String {
    format!("{DATA}{name}")
}

/// The value's name in a value's field; `None` for other fields.
pub(crate) fn value_name(field: &[u8]) -> Option<&[u8]> {
    field.strip_prefix(DATA.as_bytes())
}

/// The metadata of `record`: `1;<created>;<idle>;<absolute>;<version>`.
pub(crate) fn encode_meta(record: &Record) -> String {
    format!(
        "1;{};{};{};{}",
        record.created_at.as_unix_millis(),
        record.deadlines.idle().as_unix_millis(),
        record.deadlines.absolute().as_unix_millis(),
        record.version
    )
}

/// The record in a hash's fields: `None` if there is no hash or its record
/// is sealed by a cycle in progress; [`Error::TooLarge`] if its data is
/// over `limit` bytes (as [`SessionData::size`] measures it), whatever
/// Redis sent; [`Error::Decode`] for anything that is not a record.
pub(crate) fn decode_record(fields: Fields, limit: usize) -> Result<Option<Record>, Error> {
    if fields.is_empty() {
        return Ok(None);
    }
    // Measured before anything is decoded or copied.
    let size = data_size(&fields);
    if size > limit {
        return Err(Error::TooLarge { size, limit });
    }
    let mut meta = None;
    let mut data = SessionData::new();
    for (field, value) in fields {
        if field == META.as_bytes() {
            meta = Some(value);
        } else if let Some(name) = value_name(&field) {
            let name = String::from_utf8(name.to_vec()).map_err(Error::decode)?;
            data.insert_value(name, Value::from_bytes(value));
        }
        // Other fields are ignored, as the scripts ignore them: room for
        // what later versions keep beside the data (the remembered writes
        // are one).
    }
    let meta = meta.ok_or_else(|| Error::decode("session hash without metadata"))?;
    if meta.starts_with(SEALED) {
        return Ok(None);
    }
    let (created_at, deadlines, version) = decode_meta(&meta)?;
    Ok(Some(Record::from_parts(
        data, created_at, deadlines, version,
    )))
}

/// What [`SessionData::size`] will say of the data in `fields`: each
/// name's bytes (without the field prefix) plus its value's.
fn data_size(fields: &[(Vec<u8>, Vec<u8>)]) -> usize {
    fields
        .iter()
        .filter_map(|(field, value)| {
            let name = value_name(field)?;
            Some(name.len().saturating_add(value.len()))
        })
        .fold(0, usize::saturating_add)
}

fn decode_meta(meta: &[u8]) -> Result<(Timestamp, Deadlines, u64), Error> {
    let text = std::str::from_utf8(meta).map_err(Error::decode)?;
    let parts: Vec<&str> = text.split(';').collect();
    let [format, created, idle, absolute, version] = parts[..] else {
        return Err(Error::decode("session metadata does not have five parts"));
    };
    if format != "1" {
        return Err(Error::decode(format!(
            "unknown session metadata format {format:?}"
        )));
    }
    // Digits only, as the scripts read them (`parse` alone would take `+1`).
    let number = |part: &str| {
        if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(Error::decode("session metadata holds a non-decimal number"));
        }
        part.parse::<u64>().map_err(Error::decode)
    };
    let at = |part: &str| number(part).map(Timestamp::from_unix_millis);
    Ok((
        at(created)?,
        Deadlines::new(at(idle)?, at(absolute)?),
        number(version)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(data: &[(&[u8], usize)]) -> Fields {
        let mut fields = vec![(META.as_bytes().to_vec(), b"1;1;9;9;1".to_vec())];
        for (name, len) in data {
            let field = [DATA.as_bytes(), name].concat();
            fields.push((field, vec![b'x'; *len]));
        }
        fields
    }

    #[test]
    fn the_size_is_measured_as_session_data_measures_it() {
        let record = decode_record(fields(&[(b"ab", 3), (b"c", 0)]), 100)
            .unwrap()
            .unwrap();
        assert_eq!(record.data.size(), 6);
        assert_eq!(data_size(&fields(&[(b"ab", 3), (b"c", 0)])), 6);
    }

    #[test]
    fn data_over_the_limit_is_refused_before_anything_is_decoded() {
        // A name that is not UTF-8 would be a decode error: the size comes
        // first.
        let hostile = fields(&[(b"\xff", 10)]);
        assert!(matches!(
            decode_record(hostile.clone(), 10),
            Err(Error::TooLarge {
                size: 11,
                limit: 10
            })
        ));
        assert!(matches!(decode_record(hostile, 11), Err(Error::Decode(_))));
    }
}
