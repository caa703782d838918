//! Session data: named values, each encoded on its own with MessagePack.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, codec, nesting};

/// How deeply a stored value may nest (arrays, maps, enum variants) before
/// [`Value::decode`] refuses it.
pub const MAX_VALUE_DEPTH: usize = 128;

/// One encoded session value: MessagePack bytes with field names
/// (`rmp_serde::to_vec_named`), so a stored struct can gain fields later.
///
/// Values are compared and conditioned on as bytes; `Debug` shows only the
/// length, so session contents do not end up in logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Value(#[serde(with = "serde_bytes")] Vec<u8>);

impl Value {
    /// Encodes `value`.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] if serde refuses the value (a map with non-string
    /// keys is fine; a failing `Serialize` impl is not).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        rmp_serde::to_vec_named(value)
            .map(Self)
            .map_err(Error::encode)
    }

    /// Decodes the value as a `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the bytes are not a `T`, for example a value
    /// stored as another type, or if they nest more than
    /// [`MAX_VALUE_DEPTH`] arrays or maps (enum variants included) inside
    /// each other: serde decodes nested values by recursing, and stored
    /// bytes must not be able to overflow the stack.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        nesting::check_depth(&self.0, MAX_VALUE_DEPTH)?;
        rmp_serde::from_slice(&self.0).map_err(Error::decode)
    }

    /// Wraps bytes that are already encoded (as read back from a store).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Takes the encoded bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value(<{} bytes>)", self.0.len())
    }
}

/// The data of one session: string names to encoded [`Value`]s.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use session_core::SessionData;
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Cart { items: Vec<String> }
///
/// let mut data = SessionData::new();
/// data.insert("cart", &Cart { items: vec!["tea".into()] })?;
/// assert_eq!(data.get::<Cart>("cart")?, Some(Cart { items: vec!["tea".into()] }));
/// assert_eq!(data.get::<Cart>("missing")?, None);
/// assert!(data.get::<u32>("cart").is_err()); // another type is an error, not `None`
/// # Ok::<(), session_core::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionData(BTreeMap<String, Value>);

impl SessionData {
    /// Empty data.
    pub const fn new() -> Self {
        Self(BTreeMap::new())
    }

    /// The value under `name` decoded as a `T`, or `None` if absent.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] if the value is there but is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        self.0.get(name).map(Value::decode).transpose()
    }

    /// Encodes `value` and stores it under `name`, replacing what was there.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] if `value` cannot be encoded; the data is unchanged.
    pub fn insert<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Error> {
        self.insert_value(name.to_owned(), Value::encode(value)?);
        Ok(())
    }

    /// The encoded value under `name`.
    pub fn get_value(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// Stores an encoded value, returning the one it replaced.
    pub fn insert_value(&mut self, name: String, value: Value) -> Option<Value> {
        self.0.insert(name, value)
    }

    /// Removes `name`, returning its encoded value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name)
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Names and encoded values, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// The size the record limit applies to: the bytes of every name and
    /// encoded value. Every backend measures it the same way, whatever its
    /// own layout.
    pub fn size(&self) -> usize {
        self.0
            .iter()
            .map(|(name, value)| name.len() + value.as_bytes().len())
            .sum()
    }

    /// The data alone in the versioned encoding (a format byte, then
    /// MessagePack), for backends that keep a record's other fields in
    /// columns of their own.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] if it cannot be encoded.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        codec::encode_data(self)
    }

    /// The longest [`encode`](Self::encode) of any data whose
    /// [`size`](Self::size) is at most `size`: a backend that can measure
    /// stored bytes before fetching them refuses longer ones unread, as
    /// over a size limit of `size`.
    pub fn max_encoded_len(size: usize) -> usize {
        codec::max_data_len(size)
    }

    /// Data made by [`encode`](Self::encode).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] for any other bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        codec::decode_data(bytes)
    }

    /// Data holding `values`.
    pub(crate) fn from_map(values: BTreeMap<String, Value>) -> Self {
        Self(values)
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, Value)> for SessionData {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Debug for SessionData {
    /// Names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Old {
        name: String,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct New {
        name: String,
        #[serde(default)]
        age: Option<u8>,
    }

    #[test]
    fn a_struct_can_gain_fields() {
        let mut data = SessionData::new();
        data.insert("user", &Old { name: "ada".into() }).unwrap();
        let user: New = data.get("user").unwrap().unwrap();
        assert_eq!(
            user,
            New {
                name: "ada".into(),
                age: None
            }
        );
    }

    #[test]
    fn another_type_is_a_decode_error() {
        let mut data = SessionData::new();
        data.insert("n", "not a number").unwrap();
        assert!(matches!(data.get::<u64>("n"), Err(Error::Decode(_))));
        assert!(matches!(
            Value::from_bytes(vec![0xc1]).decode::<u8>(),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn data_alone_round_trips_with_its_format_byte() {
        let mut data = SessionData::new();
        data.insert("n", &1).unwrap();
        let bytes = data.encode().unwrap();
        assert_eq!(bytes[0], crate::FORMAT_V1);
        assert_eq!(SessionData::decode(&bytes).unwrap(), data);
        for bad in [&[][..], &bytes[..bytes.len() - 1], &[9, 0x80]] {
            assert!(matches!(SessionData::decode(bad), Err(Error::Decode(_))));
        }
    }

    /// A type that nests as deep as its data: arrays in arrays.
    #[derive(Deserialize, Debug)]
    struct Nested(#[allow(dead_code)] Vec<Self>);

    /// A type that nests as deep as its data through enum variants, which
    /// rmp-serde's own depth limit does not count.
    #[derive(Deserialize, Debug)]
    enum Tree {
        Leaf,
        Node(#[allow(dead_code)] Box<Self>),
    }

    /// `depth` one-element arrays around an empty one.
    fn arrays(depth: usize) -> Vec<u8> {
        let mut bytes = vec![0x91; depth - 1];
        bytes.push(0x90);
        bytes
    }

    /// `depth` `Tree::Node`s (one-entry maps) around a `Tree::Leaf`.
    fn nodes(depth: usize) -> Vec<u8> {
        let mut bytes = b"\x81\xa4Node".repeat(depth);
        bytes.extend(b"\xa4Leaf");
        bytes
    }

    /// `{"name": "ada", "x": <bytes>}`: an unknown field serde skips.
    fn user_with_extra(extra: &[u8]) -> Vec<u8> {
        let mut bytes = b"\x82\xa4name\xa3ada\xa1x".to_vec();
        bytes.extend(extra);
        bytes
    }

    #[derive(Deserialize, Debug)]
    struct User {
        #[allow(dead_code)]
        name: String,
    }

    /// Decodes on a thread with the stack of a tokio worker (2 MiB), where
    /// handlers decode values; an overflow there aborts the whole process.
    fn decode_on_worker_stack<T>(bytes: Vec<u8>) -> Result<T, Error>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let worker = std::thread::Builder::new().stack_size(2 * 1024 * 1024);
        let decoding = worker.spawn(move || Value::from_bytes(bytes).decode::<T>());
        decoding.unwrap().join().unwrap()
    }

    #[test]
    fn values_nested_too_deep_are_decode_errors_not_aborts() {
        // 60 KB of enum variants: within the default record limit.
        let too_deep = 10_000;
        for decoded in [
            decode_on_worker_stack::<Nested>(arrays(too_deep)).map(drop),
            decode_on_worker_stack::<Tree>(nodes(too_deep)).map(drop),
            decode_on_worker_stack::<User>(user_with_extra(&arrays(too_deep))).map(drop),
            decode_on_worker_stack::<User>(user_with_extra(&nodes(too_deep))).map(drop),
        ] {
            assert!(matches!(decoded, Err(Error::Decode(_))), "{decoded:?}");
        }
    }

    #[test]
    fn values_nested_to_the_limit_decode() {
        // A user with an unknown field nested to the limit, counting the
        // user's own map.
        let depth = MAX_VALUE_DEPTH - 1;
        let user = decode_on_worker_stack::<User>(user_with_extra(&arrays(depth)));
        assert!(user.is_ok(), "{user:?}");
        assert!(decode_on_worker_stack::<Nested>(arrays(MAX_VALUE_DEPTH)).is_ok());
        assert!(decode_on_worker_stack::<Tree>(nodes(MAX_VALUE_DEPTH)).is_ok());
        let over = decode_on_worker_stack::<Nested>(arrays(MAX_VALUE_DEPTH + 1));
        assert!(matches!(over, Err(Error::Decode(_))), "{over:?}");
    }

    #[test]
    fn debug_shows_no_values() {
        let mut data = SessionData::new();
        data.insert("token", "s3cret").unwrap();
        let shown = format!("{data:?} {:?}", data.get_value("token"));
        assert!(
            shown.contains("token") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
