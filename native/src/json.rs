//! One record of `events` as an ordered list of members, when it is flat.
//!
//! Only what the fast path can take is kept apart: null, strings and integers. Anything
//! else (floats, booleans, nested values) is `Other`, and the caller hands the record to
//! the Python path, which says exactly what is wrong with it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A member's value.
pub enum Value<'a> {
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    Other,
}

/// The members of one JSON object, in the order they were written.
pub struct FlatRecord<'a> {
    pub members: Vec<(Cow<'a, str>, Value<'a>)>,
}

/// Parse a record; None when it is not a JSON object or not valid JSON.
pub fn parse(raw: &[u8]) -> Option<FlatRecord<'_>> {
    serde_json::from_slice(raw).ok()
}

/// Where the record starting at `buf[0]` ends.
pub enum End {
    /// A valid JSON object of null, string and integer members ends here (exclusive).
    Flat(usize),
    /// The buffer ends inside the record.
    Incomplete,
    /// Anything else: invalid, nested, other value types. The caller's general path decides.
    Other,
}

/// Find the end of a flat record, validating it as strictly as orjson would.
pub fn flat_object_end(buf: &[u8]) -> End {
    let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<FlatRecord>();
    match stream.next() {
        Some(Ok(record)) => {
            if record.members.iter().any(|(_, value)| matches!(value, Value::Other)) {
                End::Other
            } else {
                End::Flat(stream.byte_offset())
            }
        }
        Some(Err(error)) if error.is_eof() => End::Incomplete,
        None => End::Incomplete,
        Some(Err(_)) => End::Other,
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Value::Null)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Value::Other)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Value::Other, Value::Int))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Value::Other)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Value::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Value::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Value::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Value::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Value::Other)
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for FlatRecord<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = FlatRecord<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(48));
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let value = map.next_value::<Value<'de>>()?;
                    members.push((key, value));
                }
                Ok(FlatRecord { members })
            }
        }
        deserializer.deserialize_map(RecordVisitor)
    }
}
