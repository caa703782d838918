//! The versioned byte encoding of stored records and session data: one
//! format byte, then MessagePack.
//!
//! Data is a map of names (strings) to encoded values (binary); a record is
//! a map of five named fields: `c`, `i`, `a`, `v` (created, idle deadline,
//! absolute deadline, version: unsigned integers) and `d` (the data), and
//! a sixth, `u`, for a session bound to a user: a map of `k` (the user key,
//! 32 bytes), `s` (last seen) and `f` (the device facts, strings), and
//! last, for a session with its own [`Lifetime`], `l`: a map of those of
//! `p` (persistent cookie, a boolean), `i` and `a` (idle and absolute
//! timeouts, milliseconds) it sets, in that order; and after that, for a
//! session whose key was given to it after its creation (a `cycle` or a
//! rotation), `r`: when (milliseconds). This
//! is what `rmp-serde` writes for such structs with field names, so records
//! stay readable by any MessagePack reader; it is written and read here with
//! `rmp`'s primitives instead, because it runs on every request and serde's
//! generic path cost several times as many instructions (BENCHMARKS.md).

use std::collections::BTreeMap;

use rmp::{Marker, decode, encode};

use std::time::Duration;

use crate::{Account, Device, Error, Lifetime, SessionData, Timestamp, UserKey, Value};

/// First byte of every encoded record or session data. Bytes whose first
/// byte is unknown are refused with [`Error::Decode`], never guessed at.
pub const FORMAT_V1: u8 = 1;

/// A record's fields other than its data, in encoding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) created_at: u64,
    pub(crate) idle: u64,
    pub(crate) absolute: u64,
    pub(crate) version: u64,
}

/// The names of the header's fields, in encoding order.
const HEADER_FIELDS: [&str; 4] = ["c", "i", "a", "v"];

/// The name of the data field, after the header's.
const DATA_FIELD: &str = "d";

/// The name of the account field, after the data, in bound records only.
const ACCOUNT_FIELD: &str = "u";

/// The names of the account's fields, in encoding order.
const ACCOUNT_FIELDS: [&str; 3] = ["k", "s", "f"];

/// The name of the lifetime field, last, in records with their own
/// lifetime only.
const LIFETIME_FIELD: &str = "l";

/// The names of the lifetime's fields, in encoding order; each only if set.
const LIFETIME_FIELDS: [&str; 3] = ["p", "i", "a"];

/// The name of the field of when the record's key was issued, last, in
/// records whose key was issued after their creation only.
const ISSUED_FIELD: &str = "r";

/// The optional fields after a record's data, in their order.
const EXTRA_FIELDS: [&str; 3] = [ACCOUNT_FIELD, LIFETIME_FIELD, ISSUED_FIELD];

/// `data` alone, in the versioned encoding.
pub(crate) fn encode_data(data: &SessionData) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::with_capacity(2 + data.size() + 3 * data.len());
    bytes.push(FORMAT_V1);
    write_data(&mut bytes, data)?;
    Ok(bytes)
}

/// The longest [`encode_data`] of data whose size
/// ([`SessionData::size`]) is at most `size`.
///
/// A format byte and the map's header take at most 6 bytes. Each value's
/// name and bytes have headers of at most 3 bytes when together they are
/// under 4 bytes long, and of at most 10 bytes otherwise: at most 3 header
/// bytes per byte of name and value either way, except for the one value
/// that can have neither (an empty name, empty bytes; names are distinct),
/// whose headers take 3 bytes.
pub(crate) fn max_data_len(size: usize) -> usize {
    size.saturating_mul(4).saturating_add(6 + 3)
}

/// Bytes made by [`encode_data`]; anything else is [`Error::Decode`].
pub(crate) fn decode_data(bytes: &[u8]) -> Result<SessionData, Error> {
    let mut body = body(bytes, "session data")?;
    let data = read_data(&mut body)?;
    finished(body, "session data")?;
    Ok(data)
}

/// What a record holds beside its header and data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extras<'a> {
    pub(crate) account: Option<&'a Account>,
    pub(crate) lifetime: Lifetime,
    /// When the key was issued, if not at creation.
    pub(crate) issued_at: Option<u64>,
}

/// A record: `header`, `data` and `extras`, in the versioned encoding.
pub(crate) fn encode_record(
    header: Header,
    data: &SessionData,
    extras: Extras<'_>,
) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::with_capacity(48 + data.size() + 3 * data.len());
    bytes.push(FORMAT_V1);
    let Extras {
        account,
        lifetime,
        issued_at,
    } = extras;
    let fields = 5
        + u32::from(account.is_some())
        + u32::from(!lifetime.is_default())
        + u32::from(issued_at.is_some());
    encode::write_map_len(&mut bytes, fields).map_err(Error::encode)?;
    let values = [
        header.created_at,
        header.idle,
        header.absolute,
        header.version,
    ];
    for (name, value) in HEADER_FIELDS.into_iter().zip(values) {
        encode::write_str(&mut bytes, name).map_err(Error::encode)?;
        encode::write_uint(&mut bytes, value).map_err(Error::encode)?;
    }
    encode::write_str(&mut bytes, DATA_FIELD).map_err(Error::encode)?;
    write_data(&mut bytes, data)?;
    if let Some(account) = account {
        encode::write_str(&mut bytes, ACCOUNT_FIELD).map_err(Error::encode)?;
        write_account(&mut bytes, account)?;
    }
    if !lifetime.is_default() {
        encode::write_str(&mut bytes, LIFETIME_FIELD).map_err(Error::encode)?;
        write_lifetime(&mut bytes, &lifetime)?;
    }
    if let Some(issued_at) = issued_at {
        encode::write_str(&mut bytes, ISSUED_FIELD).map_err(Error::encode)?;
        encode::write_uint(&mut bytes, issued_at).map_err(Error::encode)?;
    }
    Ok(bytes)
}

/// A lifetime alone, in the versioned encoding.
pub(crate) fn encode_lifetime(lifetime: &Lifetime) -> Vec<u8> {
    let mut bytes = vec![FORMAT_V1];
    // Writing to a `Vec` cannot fail, and the map has at most three entries.
    let _ = write_lifetime(&mut bytes, lifetime);
    bytes
}

/// Bytes made by [`encode_lifetime`]; anything else is [`Error::Decode`].
pub(crate) fn decode_lifetime(bytes: &[u8]) -> Result<Lifetime, Error> {
    let mut body = body(bytes, "session lifetime")?;
    let lifetime = read_lifetime(&mut body)?;
    finished(body, "session lifetime")?;
    Ok(lifetime)
}

fn write_lifetime(bytes: &mut Vec<u8>, lifetime: &Lifetime) -> Result<(), Error> {
    let [persistent, idle, absolute] = LIFETIME_FIELDS;
    let timeouts = [(idle, lifetime.idle()), (absolute, lifetime.absolute())];
    let count = u32::from(lifetime.persistence().is_some())
        + timeouts
            .iter()
            .map(|(_, t)| u32::from(t.is_some()))
            .sum::<u32>();
    encode::write_map_len(bytes, count).map_err(Error::encode)?;
    if let Some(value) = lifetime.persistence() {
        encode::write_str(bytes, persistent).map_err(Error::encode)?;
        encode::write_bool(bytes, value).map_err(Error::encode)?;
    }
    for (name, timeout) in timeouts {
        if let Some(timeout) = timeout {
            encode::write_str(bytes, name).map_err(Error::encode)?;
            let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            encode::write_uint(bytes, millis).map_err(Error::encode)?;
        }
    }
    Ok(())
}

/// A lifetime's map: the fields it sets, in their order, each at most once.
fn read_lifetime(body: &mut &[u8]) -> Result<Lifetime, Error> {
    let count = decode::read_map_len(body).map_err(Error::decode)?;
    let mut lifetime = Lifetime::new();
    let mut next = 0;
    for _ in 0..count {
        next = next_field(body, &LIFETIME_FIELDS, next)?;
        lifetime = match next {
            1 => lifetime.persistent(decode::read_bool(body).map_err(Error::decode)?),
            2 => lifetime.idle_timeout(read_millis(body)?),
            _ => lifetime.absolute_timeout(read_millis(body)?),
        };
    }
    Ok(lifetime)
}

fn read_millis(body: &mut &[u8]) -> Result<Duration, Error> {
    Ok(Duration::from_millis(
        decode::read_int(body).map_err(Error::decode)?,
    ))
}

fn write_account(bytes: &mut Vec<u8>, account: &Account) -> Result<(), Error> {
    let [user, seen, facts] = ACCOUNT_FIELDS;
    encode::write_map_len(bytes, 3).map_err(Error::encode)?;
    encode::write_str(bytes, user).map_err(Error::encode)?;
    encode::write_bin(bytes, account.user.as_bytes()).map_err(Error::encode)?;
    encode::write_str(bytes, seen).map_err(Error::encode)?;
    encode::write_uint(bytes, account.last_seen.as_unix_millis()).map_err(Error::encode)?;
    encode::write_str(bytes, facts).map_err(Error::encode)?;
    // Bounded by `Device`, so the lengths fit.
    encode::write_map_len(bytes, length(account.device.iter().count())?).map_err(Error::encode)?;
    for (name, value) in account.device.iter() {
        encode::write_str(bytes, name).map_err(Error::encode)?;
        encode::write_str(bytes, value).map_err(Error::encode)?;
    }
    Ok(())
}

fn read_account(body: &mut &[u8]) -> Result<Account, Error> {
    let [user, seen, facts] = ACCOUNT_FIELDS;
    if decode::read_map_len(body).map_err(Error::decode)? != 3 {
        return Err(Error::decode("a session account has three fields"));
    }
    expect_field(body, user)?;
    let length = decode::read_bin_len(body).map_err(Error::decode)?;
    let user = <[u8; 32]>::try_from(take(body, length)?)
        .map_err(|_| Error::decode("a user key is 32 bytes"))?;
    expect_field(body, seen)?;
    let last_seen = Timestamp::from_unix_millis(decode::read_int(body).map_err(Error::decode)?);
    expect_field(body, facts)?;
    let count = decode::read_map_len(body).map_err(Error::decode)?;
    let mut device = Device::new();
    for _ in 0..count {
        let name = read_str(body)?;
        device = device.with(name, read_str(body)?);
    }
    Ok(Account::new(UserKey::from_bytes(user), device, last_seen))
}

/// What [`decode_record`] reads.
pub(crate) type Decoded = (Header, SessionData, Option<Account>, Lifetime, Option<u64>);

/// Bytes made by [`encode_record`]; anything else (empty, another format
/// byte, fields missing, repeated, unknown or out of order, truncated or
/// corrupt MessagePack, trailing bytes) is [`Error::Decode`].
pub(crate) fn decode_record(bytes: &[u8]) -> Result<Decoded, Error> {
    let mut body = body(bytes, "session record")?;
    let extras = record_extras(&mut body)?;
    let header = read_header(&mut body)?;
    expect_field(&mut body, DATA_FIELD)?;
    let data = read_data(&mut body)?;
    let (mut account, mut lifetime, mut issued_at) = (None, None, None);
    let mut next = 0;
    for _ in 0..extras {
        next = next_field(&mut body, &EXTRA_FIELDS, next)?;
        match next {
            1 => account = Some(read_account(&mut body)?),
            2 => lifetime = Some(read_lifetime(&mut body)?),
            _ => issued_at = Some(decode::read_int(&mut body).map_err(Error::decode)?),
        }
    }
    let lifetime = lifetime.unwrap_or_default();
    finished(body, "session record")?;
    Ok((header, data, account, lifetime, issued_at))
}

/// How many fields a record has beyond its header and data: the map's
/// length, which must be five to eight.
fn record_extras(body: &mut &[u8]) -> Result<u32, Error> {
    match decode::read_map_len(body).map_err(Error::decode)? {
        fields @ 5..=8 => Ok(fields - 5),
        _ => Err(Error::decode("a session record has five to eight fields")),
    }
}

/// The header of bytes made by [`encode_record`], read up to the data.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<Header, Error> {
    let mut body = body(bytes, "session record")?;
    record_extras(&mut body)?;
    read_header(&mut body)
}

/// The header's fields, in their order.
fn read_header(body: &mut &[u8]) -> Result<Header, Error> {
    let mut values = [0; 4];
    for (name, value) in HEADER_FIELDS.into_iter().zip(&mut values) {
        expect_field(body, name)?;
        *value = decode::read_int(body).map_err(Error::decode)?;
    }
    let [created_at, idle, absolute, version] = values;
    Ok(Header {
        created_at,
        idle,
        absolute,
        version,
    })
}

/// The MessagePack after the format byte.
fn body<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8], Error> {
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => Ok(body),
        Some((format, _)) => Err(Error::decode(format!("unknown {what} format {format}"))),
        None => Err(Error::decode(format!("empty {what}"))),
    }
}

/// Refuses bytes left over after a whole value.
fn finished(rest: &[u8], what: &str) -> Result<(), Error> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::decode(format!("trailing bytes after the {what}")))
    }
}

fn write_data(bytes: &mut Vec<u8>, data: &SessionData) -> Result<(), Error> {
    encode::write_map_len(bytes, length(data.len())?).map_err(Error::encode)?;
    for (name, value) in data.iter() {
        // `write_str` and `write_bin` would truncate lengths over `u32`.
        length(name.len())?;
        length(value.as_bytes().len())?;
        encode::write_str(bytes, name).map_err(Error::encode)?;
        encode::write_bin(bytes, value.as_bytes()).map_err(Error::encode)?;
    }
    Ok(())
}

fn read_data(body: &mut &[u8]) -> Result<SessionData, Error> {
    let count = decode::read_map_len(body).map_err(Error::decode)?;
    let mut values = BTreeMap::new();
    for _ in 0..count {
        let name = read_str(body)?.to_owned();
        let length = decode::read_bin_len(body).map_err(Error::decode)?;
        let value = Value::from_bytes(take(body, length)?.to_vec());
        if values.insert(name, value).is_some() {
            return Err(Error::decode("a value name appears twice"));
        }
    }
    Ok(SessionData::from_map(values))
}

/// Reads the name of the next of the optional fields `names` (in their
/// order, each at most once) after the first `read` of them: its position
/// in `names` plus one, the new count to pass for the one after.
fn next_field(body: &mut &[u8], names: &[&str], read: usize) -> Result<usize, Error> {
    let name = read_str(body)?;
    let at = (names.get(read..).unwrap_or_default().iter())
        .position(|field| *field == name)
        .ok_or_else(|| Error::decode(format!("unknown, repeated or misplaced field {name:?}")))?;
    Ok(read + at + 1)
}

/// Reads the field name `expected`, refusing any other.
fn expect_field(body: &mut &[u8], expected: &str) -> Result<(), Error> {
    // The form every writer uses (a short name is a fixstr) compared as
    // bytes; any other encoding of the name is read in full.
    let fixstr = u8::try_from(expected.len())
        .ok()
        .filter(|&length| length < 32);
    if let Some(rest) = fixstr
        .and_then(|length| body.strip_prefix(&[Marker::FixStr(length).to_u8()]))
        .and_then(|rest| rest.strip_prefix(expected.as_bytes()))
    {
        *body = rest;
        return Ok(());
    }
    let name = read_str(body)?;
    if name == expected {
        Ok(())
    } else {
        Err(Error::decode(format!(
            "expected session record field {expected:?}"
        )))
    }
}

fn read_str<'a>(body: &mut &'a [u8]) -> Result<&'a str, Error> {
    let length = decode::read_str_len(body).map_err(Error::decode)?;
    std::str::from_utf8(take(body, length)?).map_err(Error::decode)
}

/// The next `length` bytes.
fn take<'a>(body: &mut &'a [u8], length: u32) -> Result<&'a [u8], Error> {
    let length = usize::try_from(length).map_err(Error::decode)?;
    if body.len() < length {
        return Err(Error::decode("truncated session bytes"));
    }
    let (taken, rest) = body.split_at(length);
    *body = rest;
    Ok(taken)
}

/// A length as MessagePack holds it.
fn length(length: usize) -> Result<u32, Error> {
    u32::try_from(length).map_err(Error::encode)
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    /// The layout `rmp-serde` writes for the same structs: what records
    /// were written as before this module, and what they must stay.
    #[derive(Serialize)]
    struct Wire<'a> {
        c: u64,
        i: u64,
        a: u64,
        v: u64,
        d: &'a BTreeMap<String, serde_bytes::ByteBuf>,
    }

    fn data() -> SessionData {
        let mut data = SessionData::new();
        data.insert("n", &7_u64).unwrap();
        data.insert("user", "ada").unwrap();
        data.insert("blob", &vec![0_u8; 300]).unwrap();
        data
    }

    fn by_serde(header: Header, data: &SessionData) -> Vec<u8> {
        let map: BTreeMap<String, serde_bytes::ByteBuf> = data
            .iter()
            .map(|(name, value)| {
                let bytes = serde_bytes::ByteBuf::from(value.as_bytes().to_vec());
                (name.to_owned(), bytes)
            })
            .collect();
        let wire = Wire {
            c: header.created_at,
            i: header.idle,
            a: header.absolute,
            v: header.version,
            d: &map,
        };
        let mut bytes = vec![FORMAT_V1];
        bytes.extend(rmp_serde::to_vec_named(&wire).unwrap());
        bytes
    }

    const HEADER: Header = Header {
        created_at: 1_700_000_000_000,
        idle: 5,
        absolute: u64::MAX,
        version: 300,
    };

    #[test]
    fn records_are_what_rmp_serde_writes() {
        let bytes = encode_record(HEADER, &data(), Extras::default()).unwrap();
        assert_eq!(bytes, by_serde(HEADER, &data()));
        assert_eq!(
            decode_record(&bytes).unwrap(),
            (HEADER, data(), None, Lifetime::new(), None)
        );
    }

    #[test]
    fn bound_records_round_trip() {
        let device = Device::new().with("user_agent", "curl/8").with("ip", "::1");
        let account = Account::new(UserKey::of("ada"), device, Timestamp::from_unix_millis(9));
        let extras = Extras {
            account: Some(&account),
            ..Extras::default()
        };
        let bytes = encode_record(HEADER, &data(), extras).unwrap();
        assert_eq!(bytes[1], 0x86, "a map of six fields");
        let decoded = decode_record(&bytes).unwrap();
        assert_eq!(
            decoded,
            (HEADER, data(), Some(account), Lifetime::new(), None)
        );
        for cut in 1..bytes.len() {
            assert!(decode_record(&bytes[..cut]).is_err(), "{cut}");
        }
    }

    /// A lifetime comes after the account if there is one, when the key was
    /// issued after both; records
    /// with the fields in another order, or twice, are refused.
    #[test]
    fn records_with_their_own_lifetime_round_trip() {
        let account = Account::new(UserKey::of("ada"), Device::new(), Timestamp::MAX);
        let lifetime = Lifetime::new()
            .persistent(true)
            .absolute_timeout(Duration::from_secs(9));
        for account in [None, Some(&account)] {
            let extras = Extras {
                account,
                lifetime,
                issued_at: Some(7),
            };
            let bytes = encode_record(HEADER, &data(), extras).unwrap();
            let decoded = decode_record(&bytes).unwrap();
            assert_eq!(
                decoded,
                (HEADER, data(), account.cloned(), lifetime, Some(7))
            );
            assert_eq!(decode_header(&bytes).unwrap(), HEADER);
            for cut in 1..bytes.len() {
                assert!(decode_record(&bytes[..cut]).is_err(), "{cut}");
            }
        }
        let both = Extras {
            account: Some(&account),
            lifetime,
            issued_at: None,
        };
        let good = encode_record(HEADER, &data(), both).unwrap();
        let at = |name: u8| good.windows(2).position(|w| w == [0xa1, name]).unwrap();
        let (account_at, lifetime_at) = (at(b'u'), at(b'l'));
        let account_field = &good[account_at..lifetime_at];
        let lifetime_field = &good[lifetime_at..];
        let reordered = [&good[..account_at], lifetime_field, account_field].concat();
        let lifetime_twice = [&good[..account_at], lifetime_field, lifetime_field].concat();
        for bad in [reordered, lifetime_twice] {
            assert!(
                matches!(decode_record(&bad), Err(Error::Decode(_))),
                "{bad:x?}"
            );
        }
    }

    #[test]
    fn data_round_trips() {
        let bytes = encode_data(&data()).unwrap();
        assert_eq!(decode_data(&bytes).unwrap(), data());
        let empty = encode_data(&SessionData::new()).unwrap();
        assert_eq!(empty, [FORMAT_V1, 0x80]);
        assert_eq!(decode_data(&empty).unwrap(), SessionData::new());
    }

    proptest::proptest! {
        #[test]
        fn no_data_encodes_longer_than_its_bound(
            values in proptest::collection::btree_map(
                "\\PC{0,40}",
                proptest::collection::vec(0_u8.., 0..300),
                0..40,
            ),
        ) {
            let data: SessionData = values
                .into_iter()
                .map(|(name, bytes)| (name, Value::from_bytes(bytes)))
                .collect();
            let encoded = encode_data(&data).unwrap();
            proptest::prop_assert!(encoded.len() <= max_data_len(data.size()));
        }
    }

    #[test]
    fn the_bound_is_tight() {
        // The empty name with empty bytes, and one-letter names with empty
        // bytes: 4 encoded bytes per byte of size, the most there is.
        let mut data = SessionData::new();
        data.insert_value(String::new(), Value::from_bytes(Vec::new()));
        for name in 'a'..='z' {
            data.insert_value(name.to_string(), Value::from_bytes(Vec::new()));
        }
        let encoded = encode_data(&data).unwrap().len();
        let bound = max_data_len(data.size());
        // Within the 2 bytes a map header of 32 bits would add.
        assert!(
            encoded <= bound && bound - encoded <= 2,
            "{encoded} {bound}"
        );
    }

    #[test]
    fn wider_integers_than_needed_are_read() {
        // 0xcf: a u64 holding 5, where the encoder writes a positive fixint.
        let mut bytes = vec![FORMAT_V1, 0x85];
        for name in HEADER_FIELDS {
            encode::write_str(&mut bytes, name).unwrap();
            bytes.extend([0xcf, 0, 0, 0, 0, 0, 0, 0, 5]);
        }
        encode::write_str(&mut bytes, DATA_FIELD).unwrap();
        bytes.push(0x80);
        let (header, data, ..) = decode_record(&bytes).unwrap();
        assert_eq!(header.version, 5);
        assert!(data.is_empty());
    }

    #[test]
    fn anything_else_is_a_decode_error() {
        let good = encode_record(HEADER, &data(), Extras::default()).unwrap();
        let swap = |from: &[u8], to: &[u8]| {
            let at = good.windows(from.len()).position(|w| w == from).unwrap();
            let mut bad = good.clone();
            bad.splice(at..at + from.len(), to.iter().copied());
            bad
        };
        let duplicate = {
            let mut bytes = vec![FORMAT_V1, 0x82];
            for _ in 0..2 {
                encode::write_str(&mut bytes, "n").unwrap();
                encode::write_bin(&mut bytes, &[1]).unwrap();
            }
            bytes
        };
        let cases: Vec<Vec<u8>> = vec![
            good[..good.len() - 1].to_vec(),
            [good.as_slice(), &[0xc0]].concat(),
            swap(&[0xa1, b'c'], &[0xa1, b'x']),
            swap(&[0x85], &[0x84]),
            swap(&[0xa1, b'v', 0xcd, 0x01, 0x2c], &[0xa1, b'v', 0xff]),
            swap(&[0xa1, b'i', 0x05], &[0xa1, b'i', 0xa1, b'x']),
            swap(
                &[0xa4, b'u', b's', b'e', b'r'],
                &[0xa4, 0xff, b's', b'e', b'r'],
            ),
        ];
        for bad in &cases {
            assert!(
                matches!(decode_record(bad), Err(Error::Decode(_))),
                "{bad:x?}"
            );
        }
        assert!(matches!(decode_data(&duplicate), Err(Error::Decode(_))));
        assert!(matches!(decode_data(&[]), Err(Error::Decode(_))));
        assert!(matches!(decode_data(&[2, 0x80]), Err(Error::Decode(_))));
    }

    /// Field names in a longer form than the writers use (`str8` instead
    /// of a fixstr) are still field names: the byte comparison is only a
    /// shortcut.
    #[test]
    fn field_names_in_any_string_form_decode() {
        let good = encode_record(HEADER, &data(), Extras::default()).unwrap();
        let mut long = good.clone();
        let at = good.windows(2).position(|w| w == [0xa1, b'c']).unwrap();
        long.splice(at..at + 2, [0xd9, 0x01, b'c']);
        assert_eq!(decode_record(&long).unwrap(), decode_record(&good).unwrap());
    }
}
