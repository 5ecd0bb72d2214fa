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
