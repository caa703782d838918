//! How a record is laid out in its Redis hash (see [`scripts`](crate::scripts)).

use session_core::{
    Account, ChangeSet, Deadlines, Device, Error, Lifetime, Record, SessionData, SessionKey,
    Timestamp, UserKey, Value,
};

/// The metadata field.
pub(crate) const META: &str = "m";
/// The prefix of every value's field.
const DATA: &str = "d:";
/// The field of a session's own lifetime ([`Lifetime::encode`]); absent
/// for the layer's defaults.
pub(crate) const LIFETIME: &str = "l";
/// The field of when a record's key was given to it (Unix milliseconds);
/// absent for at its creation.
const ISSUED: &str = "r";
/// The start of a forward's metadata: `F;<new key hex>;<end>`.
const FORWARD: &str = "F;";
/// The metadata of a record a cluster `cycle` has sealed.
const SEALED: &[u8] = b"S;";
/// The metadata of a tombstone: a key a cluster `revoke` ended while a
/// login to it was in flight, so that its create fails.
pub(crate) const TOMBSTONE: &str = "R";

/// A hash's fields with their values, as Redis sends them.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The field of the value `name`.
pub(crate) fn data_field(name: &str) -> String {
    format!("{DATA}{name}")
}

/// Calls `field` with each field a record's values and lifetime take, as
/// the scripts write them.
pub(crate) fn each_field(record: &Record, mut field: impl FnMut(String, &[u8])) {
    for (name, value) in record.data.iter() {
        field(data_field(name), value.as_bytes());
    }
    if !record.lifetime.is_default() {
        field(LIFETIME.to_owned(), &record.lifetime.encode());
    }
    if record.issued_at != record.created_at {
        let issued_at = record.issued_at.as_unix_millis().to_string();
        field(ISSUED.to_owned(), issued_at.as_bytes());
    }
}

/// The metadata of a forward to `to` until `end`.
pub(crate) fn forward_meta(to: &SessionKey, end: Timestamp) -> String {
    format!("{FORWARD}{to};{}", end.as_unix_millis())
}

/// Whether `fields` are a record a cluster move has sealed.
pub(crate) fn is_sealed(fields: &Fields) -> bool {
    fields
        .iter()
        .any(|(field, meta)| field == META.as_bytes() && meta.starts_with(SEALED))
}

/// The key a forward names and the end of its grace window, if `fields`
/// are a forward's.
pub(crate) fn forward_of(fields: &Fields) -> Option<(SessionKey, Timestamp)> {
    let (_, meta) = fields.iter().find(|(field, _)| field == META.as_bytes())?;
    let rest = std::str::from_utf8(meta.strip_prefix(FORWARD.as_bytes())?).ok()?;
    let (to, end) = rest.split_once(';')?;
    let end = number(end).ok().map(Timestamp::from_unix_millis)?;
    Some((SessionKey::from_bytes(hex_bytes(to)?), end))
}

/// What a change set does to the lifetime field, as the scripts'
/// `read_changes` takes it: empty, nothing; `-`, delete it (the layer's
/// defaults again); else the lifetime to write (never `-`: an encoded
/// lifetime starts with its format byte).
pub(crate) fn lifetime_change(changes: &ChangeSet) -> Vec<u8> {
    match changes.lifetime() {
        None => Vec::new(),
        Some(lifetime) if lifetime.is_default() => b"-".to_vec(),
        Some(lifetime) => lifetime.encode(),
    }
}

/// The value's name in a value's field; `None` for other fields.
pub(crate) fn value_name(field: &[u8]) -> Option<&[u8]> {
    field.strip_prefix(DATA.as_bytes())
}

/// The metadata of `record`: `1;<created>;<idle>;<absolute>;<version>`,
/// then for a bound record `;<user>;<last seen>;<device>` (see
/// [`account_tail`]).
pub(crate) fn encode_meta(record: &Record) -> String {
    let tail = record
        .account
        .as_deref()
        .map(account_tail)
        .unwrap_or_default();
    format!(
        "1;{};{};{};{}{tail}",
        record.created_at.as_unix_millis(),
        record.deadlines.idle().as_unix_millis(),
        record.deadlines.absolute().as_unix_millis(),
        record.version
    )
}

/// The binding's part of the metadata: `;<user hex>;<last seen>;<device>`,
/// the device as `<name hex>=<value hex>` facts joined by `,`, so the
/// scripts can match it with a pattern and copy it without reading it.
pub(crate) fn account_tail(account: &Account) -> String {
    let device: Vec<String> = account
        .device
        .iter()
        .map(|(name, value)| format!("{}={}", hex(name.as_bytes()), hex(value.as_bytes())))
        .collect();
    format!(
        ";{};{};{}",
        account.user,
        account.last_seen.as_unix_millis(),
        device.join(",")
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, Error> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return Err(Error::decode("odd hex in session metadata"));
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).map_err(Error::decode))
        .collect()
}

/// The 32 bytes of a key's or user's hex, if that is what `text` is.
pub(crate) fn hex_bytes(text: &str) -> Option<[u8; 32]> {
    unhex(text).ok()?.try_into().ok()
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
    let mut lifetime = Lifetime::new();
    let mut issued_at = None;
    for (field, value) in fields {
        if field == META.as_bytes() {
            meta = Some(value);
        } else if field == LIFETIME.as_bytes() {
            lifetime = Lifetime::decode(&value)?;
        } else if field == ISSUED.as_bytes() {
            let text = std::str::from_utf8(&value).map_err(Error::decode)?;
            issued_at = Some(Timestamp::from_unix_millis(number(text)?));
        } else if let Some(name) = value_name(&field) {
            let name = String::from_utf8(name.to_vec()).map_err(Error::decode)?;
            data.insert_value(name, Value::from_bytes(value));
        }
        // Other fields are ignored, as the scripts ignore them: room for
        // what later versions keep beside the data (the remembered writes
        // are one).
    }
    let meta = meta.ok_or_else(|| Error::decode("session hash without metadata"))?;
    let unrecorded = [SEALED, FORWARD.as_bytes()];
    if unrecorded.iter().any(|start| meta.starts_with(start)) || meta == TOMBSTONE.as_bytes() {
        return Ok(None);
    }
    let record = decode_meta(&meta, data)?.with_lifetime(lifetime);
    let issued_at = issued_at.unwrap_or(record.created_at);
    Ok(Some(record.with_issued_at(issued_at)))
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

/// The record whose metadata is `meta` and whose values are `data`.
pub(crate) fn decode_meta(meta: &[u8], data: SessionData) -> Result<Record, Error> {
    let text = std::str::from_utf8(meta).map_err(Error::decode)?;
    let parts: Vec<&str> = text.split(';').collect();
    let (record, account) = match parts[..] {
        [format, created, idle, absolute, version] => {
            ([format, created, idle, absolute, version], None)
        }
        [format, created, idle, absolute, version, user, seen, device] => (
            [format, created, idle, absolute, version],
            Some((user, seen, device)),
        ),
        _ => {
            return Err(Error::decode(
                "session metadata does not have five or eight parts",
            ));
        }
    };
    let [format, created, idle, absolute, version] = record;
    if format != "1" {
        return Err(Error::decode(format!(
            "unknown session metadata format {format:?}"
        )));
    }
    let at = |part: &str| number(part).map(Timestamp::from_unix_millis);
    let account = account
        .map(|(user, seen, device)| decode_account(user, at(seen)?, device))
        .transpose()?;
    Ok(Record::from_parts(
        data,
        at(created)?,
        Deadlines::new(at(idle)?, at(absolute)?),
        number(version)?,
    )
    .with_account(account))
}

/// Digits only, as the scripts read them (`parse` alone would take `+1`).
fn number(part: &str) -> Result<u64, Error> {
    if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(Error::decode("session metadata holds a non-decimal number"));
    }
    part.parse::<u64>().map_err(Error::decode)
}

/// The binding in the metadata's last three parts.
fn decode_account(user: &str, last_seen: Timestamp, device: &str) -> Result<Account, Error> {
    let user =
        hex_bytes(user).ok_or_else(|| Error::decode("a user key that is not 64 hex digits"))?;
    let text = |hex: &str| String::from_utf8(unhex(hex)?).map_err(Error::decode);
    let mut facts = Vec::new();
    for fact in device.split(',').filter(|fact| !fact.is_empty()) {
        let (name, value) = fact
            .split_once('=')
            .ok_or_else(|| Error::decode("a device fact without '='"))?;
        facts.push((text(name)?, text(value)?));
    }
    let device: Device = facts
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    Ok(Account::new(UserKey::from_bytes(user), device, last_seen))
}

/// The Redis key of `user`'s index: `<prefix>user:<user hex>`. Never a
/// session's key, whose part after the prefix is 64 hex digits alone.
pub(crate) fn index_key(prefix: &str, user: &UserKey) -> String {
    format!("{prefix}user:{user}")
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
    fn a_binding_survives_its_metadata() {
        let at = Timestamp::from_unix_millis;
        let device = Device::new().with("user_agent", "curl;8,=x").with("ip", "");
        let account = Account::new(UserKey::of("ada"), device, at(7));
        let record = Record::from_parts(SessionData::new(), at(1), Deadlines::new(at(5), at(9)), 3)
            .with_account(Some(account));
        let meta = encode_meta(&record);
        assert_eq!(meta.split(';').count(), 8);
        assert_eq!(
            decode_meta(meta.as_bytes(), SessionData::new()).unwrap(),
            record
        );
        let unbound = record.with_account(None);
        assert_eq!(encode_meta(&unbound), "1;1;5;9;3");
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
