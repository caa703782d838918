//! A session's binding to a user ([`Account`]) in its row: the `user_key`,
//! `last_seen` and `device` columns, all `NULL` for a session bound to no
//! one.
//!
//! The device facts are kept in the data's versioned encoding, as a map of
//! each fact's name to its value's UTF-8 bytes: the column gets a format
//! byte and the data's strict decoder for free.

use session_core::{
    Account, Device, Error, MAX_DEVICE_FACTS, MAX_DEVICE_NAME_BYTES, MAX_DEVICE_VALUE_BYTES,
    SessionData, UserKey, Value,
};

use crate::row::{millis, timestamp};

/// The binding columns of a bound row, as written; an unbound row leaves
/// them `NULL`.
#[derive(Clone)]
pub(crate) struct BoundColumns {
    /// The bound user's key (32 bytes), indexed: how a user's sessions are
    /// found.
    pub(crate) user_key: Vec<u8>,
    pub(crate) last_seen: i64,
    pub(crate) device: Vec<u8>,
}

impl BoundColumns {
    /// The columns of `account`.
    pub(crate) fn of(account: &Account) -> Result<Self, Error> {
        Ok(Self {
            user_key: account.user.as_bytes().to_vec(),
            last_seen: millis(account.last_seen),
            device: encode_device(&account.device)?,
        })
    }
}

/// The binding in the column `schema` composes from the three when it
/// reads a record: none for `NULL`; a user key, a last seen time and the
/// device facts, or [`Error::Decode`] for anything malformed.
pub(crate) fn read(composed: Option<&[u8]>) -> Result<Option<Account>, Error> {
    let Some(composed) = composed else {
        return Ok(None);
    };
    let malformed = || {
        Error::decode(
            "a bound session's row has a malformed user key, last seen time or device facts",
        )
    };
    let (user, rest) = composed.split_first_chunk::<32>().ok_or_else(malformed)?;
    let (last_seen, device) = rest.split_first_chunk::<8>().ok_or_else(malformed)?;
    Ok(Some(Account::new(
        UserKey::from_bytes(*user),
        decode_device(device)?,
        timestamp(i64::from_be_bytes(*last_seen))?,
    )))
}

/// The longest `device` column a [`Device`] encodes to: longer ones are
/// refused without being fetched.
pub(crate) fn longest_device() -> usize {
    let size = MAX_DEVICE_FACTS * (MAX_DEVICE_NAME_BYTES + MAX_DEVICE_VALUE_BYTES);
    SessionData::max_encoded_len(size)
}

/// The facts as the `device` column holds them.
fn encode_device(device: &Device) -> Result<Vec<u8>, Error> {
    let facts: SessionData = device
        .iter()
        .map(|(name, value)| {
            (
                name.to_owned(),
                Value::from_bytes(value.as_bytes().to_vec()),
            )
        })
        .collect();
    facts.encode()
}

/// The facts in a `device` column, bounded as [`Device`] bounds them.
fn decode_device(bytes: &[u8]) -> Result<Device, Error> {
    let facts = SessionData::decode(bytes)?;
    facts
        .iter()
        .try_fold(Device::new(), |device, (name, value)| {
            let value = std::str::from_utf8(value.as_bytes()).map_err(Error::decode)?;
            Ok(device.with(name, value))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::Timestamp;

    /// The binding column as `schema` composes it from `columns`.
    fn composed(columns: &BoundColumns) -> Vec<u8> {
        let mut bytes = columns.user_key.clone();
        bytes.extend_from_slice(&columns.last_seen.to_be_bytes());
        bytes.extend_from_slice(&columns.device);
        bytes
    }

    fn account() -> Account {
        let device = Device::new()
            .with("user_agent", &"é".repeat(MAX_DEVICE_VALUE_BYTES))
            .with("ip", "192.0.2.1");
        Account::new(UserKey::of("ada"), device, Timestamp::from_unix_millis(42))
    }

    #[test]
    fn a_binding_round_trips_through_its_columns() {
        let columns = BoundColumns::of(&account()).unwrap();
        assert_eq!(read(Some(&composed(&columns))).unwrap(), Some(account()));
        assert!(read(None).unwrap().is_none());
    }

    #[test]
    fn the_longest_device_fits_the_bound() {
        let device = (0..MAX_DEVICE_FACTS).fold(Device::new(), |device, n| {
            let name = format!("{n}{}", "n".repeat(MAX_DEVICE_NAME_BYTES));
            device.with(&name, &"v".repeat(MAX_DEVICE_VALUE_BYTES))
        });
        assert!(encode_device(&device).unwrap().len() <= longest_device());
    }

    #[test]
    fn malformed_bindings_are_decode_errors() {
        let good = composed(&BoundColumns::of(&account()).unwrap());
        let mut negative = good.clone();
        negative[32..40].copy_from_slice(&(-1_i64).to_be_bytes());
        let mut garbage = good[..40].to_vec();
        garbage.extend_from_slice(b"\x01garbage");
        for bad in [
            Vec::new(),
            good[..31].to_vec(),
            good[..39].to_vec(),
            negative,
            garbage,
        ] {
            assert!(matches!(read(Some(&bad)), Err(Error::Decode(_))));
        }
    }
}
