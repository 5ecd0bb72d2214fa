//! Avro binary encoding of the primitives the events use (Avro 1.11 specification).

/// Appends Avro values to a buffer.
pub struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(capacity: usize) -> Self {
        Writer {
            out: Vec::with_capacity(capacity),
        }
    }

    /// A long or int: zig-zag, then base-128 varint.
    pub fn long(&mut self, value: i64) {
        let mut n = ((value << 1) ^ (value >> 63)) as u64;
        while n >= 0x80 {
            self.out.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    pub fn string(&mut self, value: &str) {
        self.long(value.len() as i64);
        self.out.extend_from_slice(value.as_bytes());
    }

    pub fn boolean(&mut self, value: bool) {
        self.out.push(u8::from(value));
    }

    /// A branch index of a union, or a symbol index of an enum.
    pub fn index(&mut self, index: u32) {
        self.long(i64::from(index));
    }

    /// `["null", "string"]`.
    pub fn optional_string(&mut self, value: Option<&str>) {
        match value {
            None => self.out.push(0),
            Some(text) => {
                self.out.push(2);
                self.string(text);
            }
        }
    }

    /// `["null", "long"]` or `["null", "int"]`.
    pub fn optional_long(&mut self, value: Option<i64>) {
        match value {
            None => self.out.push(0),
            Some(number) => {
                self.out.push(2);
                self.long(number);
            }
        }
    }

    /// `["null", <enum>]`.
    pub fn optional_index(&mut self, value: Option<u32>) {
        match value {
            None => self.out.push(0),
            Some(index) => {
                self.out.push(2);
                self.index(index);
            }
        }
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::Writer;

    fn written(write: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::with_capacity(0);
        write(&mut w);
        w.out
    }

    #[test]
    fn longs_are_zigzag_varints() {
        // The Avro specification's table, its boundaries, and fastavro's bytes for the rest.
        let cases: [(i64, &[u8]); 14] = [
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-2, &[0x03]),
            (2, &[0x04]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (-65, &[0x81, 0x01]),
            (8192, &[0x80, 0x80, 0x01]),
            (i64::from(i32::MAX), &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i64::from(i32::MIN), &[0xff, 0xff, 0xff, 0xff, 0x0f]),
            (
                i64::MAX,
                &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
            (
                i64::MIN,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (value, bytes) in cases {
            assert_eq!(written(|w| w.long(value)), bytes, "{value}");
        }
    }

    #[test]
    fn strings_are_their_byte_length_then_utf8() {
        assert_eq!(written(|w| w.string("foo")), b"\x06foo"); // the specification's example
        assert_eq!(written(|w| w.string("")), [0x00]);
        assert_eq!(written(|w| w.string("é☃")), b"\x0a\xc3\xa9\xe2\x98\x83");
        let long = "x".repeat(64);
        let mut expected = vec![0x80, 0x01];
        expected.extend_from_slice(long.as_bytes());
        assert_eq!(written(|w| w.string(&long)), expected);
    }

    #[test]
    fn unions_with_null_write_the_branch_then_the_value() {
        assert_eq!(written(|w| w.optional_string(None)), [0x00]);
        assert_eq!(written(|w| w.optional_string(Some(""))), [0x02, 0x00]);
        assert_eq!(written(|w| w.optional_string(Some("ab"))), b"\x02\x04ab");
        assert_eq!(written(|w| w.optional_long(None)), [0x00]);
        assert_eq!(written(|w| w.optional_long(Some(-1))), [0x02, 0x01]);
        assert_eq!(written(|w| w.optional_long(Some(64))), [0x02, 0x80, 0x01]);
        assert_eq!(written(|w| w.optional_index(None)), [0x00]);
        assert_eq!(written(|w| w.optional_index(Some(3))), [0x02, 0x06]);
    }

    #[test]
    fn booleans_indexes_and_raw_bytes() {
        assert_eq!(written(|w| w.boolean(false)), [0x00]);
        assert_eq!(written(|w| w.boolean(true)), [0x01]);
        assert_eq!(written(|w| w.index(0)), [0x00]);
        assert_eq!(written(|w| w.index(70)), [0x8c, 0x01]);
        assert_eq!(
            written(|w| w.index(u32::MAX)),
            [0xfe, 0xff, 0xff, 0xff, 0x1f]
        );
        let bytes = written(|w| {
            w.raw(b"\x02\x04");
            w.raw(b"");
            w.boolean(true);
        });
        assert_eq!(bytes, [0x02, 0x04, 0x01]);
    }
}
