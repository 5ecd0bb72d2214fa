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
#[cfg_attr(test, derive(Debug, PartialEq))]
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
#[cfg_attr(test, derive(Debug, PartialEq))]
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::{flat_object_end, parse, End, Value};

    #[test]
    fn a_flat_record_ends_after_its_closing_brace() {
        let cases: [&[u8]; 9] = [
            br#"{}"#,
            br#"{ }"#,
            br#"{"a":"x"}"#,
            br#"{"a":null,"b":-12,"c":0,"d":-0,"e":""}"#,
            b"{ \"s\" : \"v\" ,\n\t\"n\" : null\r\n}",
            br#"{"s":"esc \" \\ \/ \b \f \n \r \t \u00e9 \uFFFF }"}"#,
            br#"{"big":123456789012345678}"#, // 18 digits: an i64 for sure
            "{\"city\":\"Zürich ☃ 📬\"}".as_bytes(),
            br#"{"a":"x","a":"y"}"#, // a repeated key is the parser's to judge, not the scanner's
        ];
        for record in cases {
            let mut buf = record.to_vec();
            buf.extend_from_slice(b" , {\"next\":1}]");
            assert_eq!(
                flat_object_end(&buf),
                End::Flat(record.len()),
                "{}",
                String::from_utf8_lossy(record)
            );
        }
    }

    #[test]
    fn records_the_scanner_does_not_take() {
        let cases: [&[u8]; 25] = [
            br#"[1]"#,
            br#""s""#,
            br#"{"a":{}}"#,
            br#"{"a":[1]}"#,
            br#"{"a":1.5}"#,
            br#"{"a":1e5}"#,
            br#"{"a":1E5}"#,
            br#"{"a":true}"#,
            br#"{"a":false}"#,
            br#"{"a":nul}"#,
            br#"{"a":NaN}"#,
            br#"{"a":01}"#,
            br#"{"a":-}"#,
            br#"{"a":1234567890123456789}"#, // 19 digits
            br#"{"a":null,}"#,
            br#"{,}"#,
            br#"{"a" "b"}"#,
            br#"{a:1}"#,
            br#"{"a":"\x"}"#,
            br#"{"a":"\u12g4"}"#,
            br#"{"a":"\ud800"}"#, // a lone surrogate escape
            br#"{"a":"\udc00x"}"#,
            b"{\"a\":\"\x01\"}", // a raw control character
            b"{\"a\":\"\xff\"}", // invalid UTF-8
            b"{\"\xc3\":1}",     // a truncated UTF-8 sequence in a key
        ];
        for record in cases {
            assert_eq!(
                flat_object_end(record),
                End::Other,
                "{}",
                String::from_utf8_lossy(record)
            );
        }
    }

    #[test]
    fn a_record_cut_by_the_buffers_end_is_incomplete() {
        let whole = br#"{"a":"x\"y \u00e9","n":null,"i":-12}"#;
        assert_eq!(flat_object_end(whole), End::Flat(whole.len()));
        for cut in 0..whole.len() {
            assert_eq!(
                flat_object_end(&whole[..cut]),
                End::Incomplete,
                "cut at {cut}"
            );
        }
        // An integer at the end may go on in the next chunk.
        assert_eq!(flat_object_end(br#"{"i":12"#), End::Incomplete);
        // An invalid prefix is invalid whatever follows.
        assert_eq!(flat_object_end(br#"{"a":tr"#), End::Other);
    }

    #[test]
    fn parse_keeps_members_in_order_with_their_values() {
        let record = parse(br#"{"s":"x","e":"a\nb\u00e9","n":null,"i":-7,"f":1.5,"b":true,"o":{"k":[1]},"l":[],"u":18446744073709551615}"#)
            .expect("an object");
        let members: Vec<(&str, &Value)> = record
            .members
            .iter()
            .map(|(key, value)| (key.as_ref(), value))
            .collect();
        assert_eq!(
            members,
            [
                ("s", &Value::Str(Cow::Borrowed("x"))),
                ("e", &Value::Str(Cow::Borrowed("a\nbé"))),
                ("n", &Value::Null),
                ("i", &Value::Int(-7)),
                ("f", &Value::Other),
                ("b", &Value::Other),
                ("o", &Value::Other),
                ("l", &Value::Other),
                ("u", &Value::Other), // beyond i64
            ]
        );
        assert!(matches!(record.members[0].1, Value::Str(Cow::Borrowed(_))));
        assert!(matches!(record.members[1].1, Value::Str(Cow::Owned(_)))); // unescaped
        let escaped_key = parse(br#"{"k\u0065y":1}"#).expect("an object");
        assert_eq!(escaped_key.members[0].0, "key");
        assert_eq!(
            parse(br#"{"a":1,"a":2}"#).expect("an object").members.len(),
            2
        );
    }

    #[test]
    fn parse_refuses_what_is_not_one_json_object() {
        let cases: [&[u8]; 8] = [
            b"",
            b"[]",
            b"\"s\"",
            b"null",
            br#"{"a":1"#,
            br#"{"a":1}{}"#,
            br#"{"a":NaN}"#,
            b"{\"a\":\"\xff\"}",
        ];
        for raw in cases {
            assert!(parse(raw).is_none(), "{}", String::from_utf8_lossy(raw));
        }
        assert_eq!(parse(b" {} ").expect("an object").members.len(), 0);
    }
}
