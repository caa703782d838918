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

/// The binding columns of a row, as read or as written.
#[derive(Clone, Default)]
pub(crate) struct BindingColumns {
    /// The bound user's key (32 bytes), indexed: how a user's sessions are
    /// found.
    pub(crate) user_key: Option<Vec<u8>>,
    pub(crate) last_seen: Option<i64>,
    /// The device facts; `None` in a row read with a `device` longer than
    /// any [`Device`] encodes to (refused unread).
    pub(crate) device: Option<Vec<u8>>,
}

impl BindingColumns {
    /// The columns of `account`; all `NULL` for none.
    pub(crate) fn of(account: Option<&Account>) -> Result<Self, Error> {
        let Some(account) = account else {
            return Ok(Self::default());
        };
        Ok(Self {
            user_key: Some(account.user.as_bytes().to_vec()),
            last_seen: Some(millis(account.last_seen)),
            device: Some(encode_device(&account.device)?),
        })
    }

    /// The binding these columns hold: none without a user key; a user
    /// key without the rest, or anything malformed, is [`Error::Decode`].
    pub(crate) fn into_account(self) -> Result<Option<Account>, Error> {
        let Some(user_key) = self.user_key else {
            return Ok(None);
        };
        let user = <[u8; 32]>::try_from(user_key.as_slice())
            .map_err(|_| Error::decode("a user key is 32 bytes"))?;
        let (Some(last_seen), Some(device)) = (self.last_seen, self.device) else {
            return Err(Error::decode(
                "a bound session's row lacks its last seen time or device facts, \
                 or holds longer device facts than any",
            ));
        };
        Ok(Some(Account::new(
            UserKey::from_bytes(user),
            decode_device(&device)?,
            timestamp(last_seen)?,
        )))
    }
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

    #[test]
    fn a_binding_round_trips_through_its_columns() {
        let device = Device::new()
            .with("user_agent", &"é".repeat(MAX_DEVICE_VALUE_BYTES))
            .with("ip", "192.0.2.1");
        let account = Account::new(UserKey::of("ada"), device, Timestamp::from_unix_millis(42));
        let columns = BindingColumns::of(Some(&account)).unwrap();
        assert_eq!(columns.into_account().unwrap(), Some(account));
        assert!(
            BindingColumns::of(None)
                .unwrap()
                .into_account()
                .unwrap()
                .is_none()
        );
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
        let good = BindingColumns::of(Some(&Account::new(
            UserKey::of("ada"),
            Device::new(),
            Timestamp::from_unix_millis(1),
        )))
        .unwrap();
        let bad = [
            BindingColumns {
                user_key: Some(vec![1; 31]),
                ..good.clone()
            },
            BindingColumns {
                last_seen: None,
                ..good.clone()
            },
            BindingColumns {
                device: None,
                ..good.clone()
            },
            BindingColumns {
                device: Some(b"\x01garbage".to_vec()),
                ..good.clone()
            },
            BindingColumns {
                last_seen: Some(-1),
                ..good
            },
        ];
        for columns in bad {
            assert!(matches!(columns.into_account(), Err(Error::Decode(_))));
        }
    }
}
