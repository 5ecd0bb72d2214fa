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

/// Find the end of a flat record, validating it as strictly as orjson would: an object of
/// members that are null, strings or integers of at most 18 digits. Anything else, including
/// valid JSON of other shapes and `\u` escapes of surrogates, is `Other`.
pub fn flat_object_end(buf: &[u8]) -> End {
    let mut scan = Scan { buf, pos: 0 };
    match scan.object() {
        Ok(()) => {
            // Strings were checked byte-wise; their UTF-8 is checked once, here.
            if std::str::from_utf8(&buf[..scan.pos]).is_ok() {
                End::Flat(scan.pos)
            } else {
                End::Other
            }
        }
        Err(Stop::Incomplete) => End::Incomplete,
        Err(Stop::Other) => End::Other,
    }
}

enum Stop {
    Incomplete,
    Other,
}

struct Scan<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Result<u8, Stop> {
        self.buf.get(self.pos).copied().ok_or(Stop::Incomplete)
    }

    fn whitespace(&mut self) -> Result<u8, Stop> {
        loop {
            let byte = self.peek()?;
            if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                return Ok(byte);
            }
            self.pos += 1;
        }
    }

    fn expect(&mut self, wanted: u8) -> Result<(), Stop> {
        if self.whitespace()? != wanted {
            return Err(Stop::Other);
        }
        self.pos += 1;
        Ok(())
    }

    fn object(&mut self) -> Result<(), Stop> {
        self.expect(b'{')?;
        if self.whitespace()? == b'}' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.expect(b'"')?;
            self.string()?;
            self.expect(b':')?;
            self.value()?;
            match self.whitespace()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Stop::Other),
            }
        }
    }

    /// The rest of a string whose opening quote was taken.
    fn string(&mut self) -> Result<(), Stop> {
        loop {
            // Most bytes of a string are plain: skip them in a tight loop.
            let rest = &self.buf[self.pos..];
            let plain = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            self.pos += plain.unwrap_or(rest.len());
            let byte = self.peek()?;
            self.pos += 1;
            match byte {
                b'"' => return Ok(()),
                b'\\' => match self.peek()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                    b'u' => {
                        let digits = self
                            .buf
                            .get(self.pos + 1..self.pos + 5)
                            .ok_or(Stop::Incomplete)?;
                        let text = std::str::from_utf8(digits).map_err(|_| Stop::Other)?;
                        let unit = u16::from_str_radix(text, 16).map_err(|_| Stop::Other)?;
                        if !digits.iter().all(u8::is_ascii_hexdigit)
                            || (0xD800..=0xDFFF).contains(&unit)
                        {
                            return Err(Stop::Other);
                        }
                        self.pos += 5;
                    }
                    _ => return Err(Stop::Other),
                },
                0x00..=0x1f => return Err(Stop::Other),
                _ => {}
            }
        }
    }

    fn value(&mut self) -> Result<(), Stop> {
        match self.whitespace()? {
            b'"' => {
                self.pos += 1;
                self.string()
            }
            b'n' => {
                let word = self
                    .buf
                    .get(self.pos..self.pos + 4)
                    .ok_or(Stop::Incomplete)?;
                if word != b"null" {
                    return Err(Stop::Other);
                }
                self.pos += 4;
                Ok(())
            }
            b'-' | b'0'..=b'9' => self.integer(),
            _ => Err(Stop::Other),
        }
    }

    fn integer(&mut self) -> Result<(), Stop> {
        if self.peek()? == b'-' {
            self.pos += 1;
        }
        let start = self.pos;
        while self.peek()?.is_ascii_digit() {
            self.pos += 1;
        }
        let digits = &self.buf[start..self.pos];
        // JSON has no leading zeros; fractions and exponents are not integers.
        if digits.is_empty() || digits.len() > 18 || (digits.len() > 1 && digits[0] == b'0') {
            return Err(Stop::Other);
        }
        if matches!(self.peek()?, b'.' | b'e' | b'E') {
            return Err(Stop::Other);
        }
        Ok(())
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
