//! [`Stamp`]: what identifies a stored record, read from its encoding
//! without decoding its data.

use crate::codec::{self, Header};
use crate::{Deadlines, Error, Record, Timestamp};

/// A record's creation time, deadlines and version, as its encoding holds
/// them: enough for a store that keeps encoded records to tell whether a
/// record a request loaded is still the stored one (the check
/// [`SessionStorage::update_from`](crate::SessionStorage::update_from)
/// allows), for the cost of reading four integers instead of decoding every
/// value.
///
/// ```
/// use session_core::{Deadlines, Record, SessionData, Stamp, Timestamp};
///
/// let at = Timestamp::from_unix_millis(1_000);
/// let record = Record::new(SessionData::new(), at, Deadlines::new(at, at));
/// let stamp = Stamp::decode(&record.encode(1024)?)?;
/// assert!(stamp.is_of(&record));
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// When the record was created.
    pub created_at: Timestamp,
    /// Its deadlines.
    pub deadlines: Deadlines,
    /// Its version.
    pub version: u64,
}

impl Stamp {
    /// The stamp in bytes made by [`Record::encode`]; only the fields
    /// before the data are read, so bytes whose data is damaged still give
    /// a stamp (a full decode refuses them).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the bytes do not start as a record does.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        Ok(Self::of(codec::decode_header(bytes)?))
    }

    /// The stamp a decoded header holds.
    pub(crate) fn of(header: Header) -> Self {
        Self {
            created_at: Timestamp::from_unix_millis(header.created_at),
            deadlines: Deadlines::new(
                Timestamp::from_unix_millis(header.idle),
                Timestamp::from_unix_millis(header.absolute),
            ),
            version: header.version,
        }
    }

    /// Whether this is the stamp of the record `loaded` was read as: the
    /// same version, creation time and absolute deadline. The idle
    /// deadline may have moved since (a touch moves it and nothing else).
    pub fn is_of(&self, loaded: &Record) -> bool {
        self.version == loaded.version
            && self.created_at == loaded.created_at
            && self.deadlines.absolute() == loaded.deadlines.absolute()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Account, Device, SessionData, UserKey};

    fn record() -> Record {
        let mut data = SessionData::new();
        data.insert("n", &1).unwrap();
        let at = Timestamp::from_unix_millis;
        Record::from_parts(data, at(5), Deadlines::new(at(10), at(20)), 7)
    }

    #[test]
    fn a_stamp_is_read_from_plain_and_bound_records() {
        let account = Account::new(
            UserKey::of("ada"),
            Device::new(),
            Timestamp::from_unix_millis(6),
        );
        for record in [record(), record().with_account(Some(account))] {
            let stamp = Stamp::decode(&record.encode(1024).unwrap()).unwrap();
            assert_eq!(
                stamp,
                Stamp {
                    created_at: record.created_at,
                    deadlines: record.deadlines,
                    version: 7
                }
            );
            assert!(stamp.is_of(&record));
        }
    }

    #[test]
    fn a_stamp_tells_another_version_or_absolute_deadline_but_not_a_touch() {
        let stamp = Stamp::decode(&record().encode(1024).unwrap()).unwrap();
        let mut later = record();
        later.version = 8;
        assert!(!stamp.is_of(&later));
        let mut narrowed = record();
        narrowed.deadlines =
            Deadlines::new(narrowed.deadlines.idle(), Timestamp::from_unix_millis(19));
        assert!(!stamp.is_of(&narrowed));
        let mut touched = record();
        touched.deadlines = touched.deadlines.with_idle(Timestamp::from_unix_millis(15));
        assert!(stamp.is_of(&touched));
    }

    #[test]
    fn bytes_that_do_not_start_as_a_record_are_refused() {
        let encoded = record().encode(1024).unwrap();
        for bad in [&[][..], &[2], &encoded[..5], b"\x01garbage"] {
            assert!(
                matches!(Stamp::decode(bad), Err(Error::Decode(_))),
                "{bad:?}"
            );
        }
    }
}
