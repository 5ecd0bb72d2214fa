//! The flat records of a message's `events` array, found in a chunk of its body.
//!
//! One scanner serves both `flat_records` (the records as bytes, for the Python path's
//! parser) and `MessageContext.encode_flat` (the records encoded where they lie): it walks
//! the buffer a record at a time, so the encoder can stop it at any record and take the
//! GIL in between, and says where it stopped the way the parser resumes from.

use crate::json::{self, FlatRecord};

fn skip_whitespace(buf: &[u8], mut pos: usize) -> usize {
    while pos < buf.len() && matches!(buf[pos], b' ' | b'\t' | b'\n' | b'\r') {
        pos += 1;
    }
    pos
}

/// Where the scan is between two calls of `next`.
#[derive(Clone, Copy)]
enum At {
    /// Where a record should start.
    RecordStart,
    /// Right after the record `next` gave last.
    RecordEnd,
    /// Stopped; `after_record` says whether right after a record.
    Stopped { after_record: bool },
}

/// The flat records of `events` from `buf[pos]` on, as (start, end) spans: each a valid
/// JSON object of null, string and integer members of at most `max_record_bytes`. The
/// scan ends at the first thing that is not such a record, at what follows a record other
/// than `,`, or at the buffer's end; once `next` gave None, `stop` says where.
pub struct FlatRecordSpans<'a> {
    buf: &'a [u8],
    pos: usize,
    max_record_bytes: usize,
    at: At,
    /// Whether `next_record` lists each record's members as it finds it.
    listing: bool,
}

impl<'a> FlatRecordSpans<'a> {
    pub fn new(buf: &'a [u8], pos: usize, max_record_bytes: usize) -> Self {
        FlatRecordSpans {
            buf,
            pos,
            max_record_bytes,
            at: At::RecordStart,
            listing: false,
        }
    }

    /// The same scan, giving each record's members too (`next_record`): one pass finds,
    /// validates and lists a record.
    pub fn listing(mut self) -> Self {
        self.listing = true;
        self
    }

    /// Where the scan stopped, and whether right after a record (the separator is still to
    /// come) rather than where a record should start. Only meaningful once `next` gave None.
    pub fn stop(&self) -> (usize, bool) {
        match self.at {
            At::Stopped { after_record } => (self.pos, after_record),
            At::RecordStart | At::RecordEnd => {
                debug_assert!(false, "the scan has not stopped");
                (self.pos, matches!(self.at, At::RecordEnd))
            }
        }
    }

    fn stopped<T>(&mut self, pos: usize, after_record: bool) -> Option<T> {
        self.pos = pos;
        self.at = At::Stopped { after_record };
        None
    }
}

impl<'a> FlatRecordSpans<'a> {
    /// The next record's span, and its members when the scan is `listing`.
    pub fn next_record(&mut self) -> Option<(usize, usize, Option<FlatRecord<'a>>)> {
        let buf = self.buf;
        let mut pos = self.pos;
        match self.at {
            At::Stopped { .. } => return None,
            At::RecordStart => {}
            At::RecordEnd => {
                pos = skip_whitespace(buf, pos);
                if pos >= buf.len() || buf[pos] != b',' {
                    // `]`, something the parser reports, or the separator still to come.
                    return self.stopped(pos, true);
                }
                pos = skip_whitespace(buf, pos + 1);
                if pos >= buf.len() {
                    // The separator is taken; the next record starts in a later chunk.
                    return self.stopped(pos, false);
                }
            }
        }
        if pos >= buf.len() || buf[pos] != b'{' {
            return self.stopped(pos, false);
        }
        let found = if self.listing {
            match json::parse_prefix(&buf[pos..]) {
                json::Parsed::Flat(record, length) => Some((length, Some(record))),
                json::Parsed::Incomplete | json::Parsed::Other => None,
            }
        } else {
            match json::flat_object_end(&buf[pos..]) {
                json::End::Flat(length) => Some((length, None)),
                json::End::Incomplete | json::End::Other => None,
            }
        };
        match found {
            Some((length, record)) if length <= self.max_record_bytes => {
                self.pos = pos + length;
                self.at = At::RecordEnd;
                Some((pos, pos + length, record))
            }
            // Cut by the chunk's end, not flat, invalid or too large: the general path's.
            _ => self.stopped(pos, false),
        }
    }
}

impl Iterator for FlatRecordSpans<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        self.next_record().map(|(start, end, _)| (start, end))
    }
}

/// Every span of `FlatRecordSpans`, then where it stopped and whether after a record.
pub fn flat_record_spans(
    buf: &[u8],
    pos: usize,
    max_record_bytes: usize,
) -> (Vec<(usize, usize)>, usize, bool) {
    let mut scan = FlatRecordSpans::new(buf, pos, max_record_bytes);
    let spans = scan.by_ref().collect();
    let (end, after_record) = scan.stop();
    (spans, end, after_record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(buf: &[u8], pos: usize, max: usize) -> (Vec<&[u8]>, usize, bool) {
        let (spans, end, after_record) = flat_record_spans(buf, pos, max);
        (
            spans
                .into_iter()
                .map(|(start, stop)| &buf[start..stop])
                .collect(),
            end,
            after_record,
        )
    }

    #[test]
    fn flat_records_run_to_the_end_of_events() {
        let buf = br#"[{"a":1} ,
 {"b":"x"},{}]"#;
        let (records, end, after_record) = spans(buf, 1, 1 << 20);
        assert_eq!(records, [&br#"{"a":1}"#[..], br#"{"b":"x"}"#, b"{}"]);
        assert_eq!((end, buf[end], after_record), (buf.len() - 1, b']', true));
    }

    #[test]
    fn flat_records_stop_at_what_the_general_parser_must_take() {
        // A nested record: the scan stops where it starts, after the separator.
        let buf = br#"{"a":1},{"n":{}},{"c":2}]"#;
        assert_eq!(spans(buf, 0, 1 << 20), (vec![&br#"{"a":1}"#[..]], 8, false));
        // Not an object at all.
        assert_eq!(spans(b"[1],{}", 0, 1 << 20), (vec![], 0, false));
        // A record larger than max_record_bytes is left whole to the general path.
        let buf = br#"{"a":"xx"},{"b":"xxxxxxxx"}]"#;
        assert_eq!(spans(buf, 0, 10), (vec![&br#"{"a":"xx"}"#[..]], 11, false));
        assert_eq!(spans(buf, 0, 9), (vec![], 0, false));
        // Something other than ',' or ']' after a record: the caller reports it.
        assert_eq!(spans(br#"{} {}"#, 0, 100), (vec![&b"{}"[..]], 3, true));
        // No whitespace is skipped before the first record: the caller starts on it.
        assert_eq!(spans(b" {}", 0, 100), (vec![], 0, false));
        // A position past the buffer stops there, as at its end.
        assert_eq!(spans(b"{}", 5, 100), (vec![], 5, false));
    }

    #[test]
    fn flat_records_stop_at_the_end_of_the_chunk() {
        // Cut inside a record: that record waits for more data.
        let buf = br#"{"a":1},{"b":"#;
        assert_eq!(spans(buf, 0, 100), (vec![&br#"{"a":1}"#[..]], 8, false));
        // Cut after a separator: it is taken, and the next record starts in a later chunk.
        let buf = b"{},  ";
        assert_eq!(spans(buf, 0, 100), (vec![&b"{}"[..]], buf.len(), false));
        // Cut right after a record: the separator is still to come.
        assert_eq!(spans(b"{} ", 0, 100), (vec![&b"{}"[..]], 3, true));
        assert_eq!(spans(b"", 0, 100), (vec![], 0, false));
    }

    #[test]
    fn a_scan_walks_one_record_at_a_time_and_stays_stopped() {
        let buf = br#"{"a":1} , {"b":2},{"c":3}]"#;
        let mut scan = FlatRecordSpans::new(buf, 0, 100);
        assert_eq!(scan.next(), Some((0, 7)));
        // The separator after a record is only looked at when the next one is asked for.
        assert_eq!(scan.next(), Some((10, 17)));
        assert_eq!(scan.next(), Some((18, 25)));
        assert_eq!(scan.next(), None);
        assert_eq!(scan.stop(), (25, true));
        assert_eq!(scan.next(), None);
        assert_eq!(scan.stop(), (25, true));
    }

    #[test]
    fn every_cut_of_a_body_stops_where_the_parser_resumes() {
        // For every chunk end: the spans are the records wholly inside it, and the stop is
        // right after the last one (after_record) unless its separator is in the chunk too.
        let buf = br#"{"a":1} ,
 {"b":"x,}"},{}]"#;
        let starts = [0, 11, 23];
        let ends = [7, 22, 25];
        for cut in 0..=buf.len() {
            let (spans, end, after_record) = flat_record_spans(&buf[..cut], 0, 100);
            let whole = ends.iter().filter(|&&end| end <= cut).count();
            assert_eq!(spans.len(), whole, "cut at {cut}");
            for (n, &(start, stop)) in spans.iter().enumerate() {
                assert_eq!((start, stop), (starts[n], ends[n]));
            }
            let (want_end, want_after) = match whole {
                0 => (0, false),
                n if n < 3 && cut > ends[n - 1] && buf[ends[n - 1]..cut].contains(&b',') => {
                    // The separator is taken: the stop is where the next record starts,
                    // or the chunk's end when it starts in a later chunk.
                    (starts[n].min(cut), false)
                }
                // `]` after the last record; else only whitespace since the record's end.
                n => (if n == 3 { 25 } else { cut }, true),
            };
            assert_eq!((end, after_record), (want_end, want_after), "cut at {cut}");
        }
    }

    #[test]
    fn a_listing_scan_finds_the_same_records_with_their_members() {
        let buf = br#"{"a":1} ,
 {"b":"x,}\n"},{},{"c":-0},{"d":2}]"#;
        for cut in 0..=buf.len() {
            let chunk = &buf[..cut];
            let mut plain = FlatRecordSpans::new(chunk, 0, 100);
            let mut listing = FlatRecordSpans::new(chunk, 0, 100).listing();
            loop {
                let span = plain.next();
                let listed = listing.next_record();
                // -0 is the one record only the listing scan leaves to the Python path.
                if span.is_some_and(|(start, end)| &chunk[start..end] == br#"{"c":-0}"#) {
                    assert!(listed.is_none(), "cut at {cut}");
                    break;
                }
                match (span, listed) {
                    (Some(span), Some((start, end, Some(record)))) => {
                        assert_eq!(span, (start, end), "cut at {cut}");
                        assert_eq!(Some(record), json::parse(&chunk[start..end]));
                    }
                    (None, None) => {
                        assert_eq!(plain.stop(), listing.stop(), "cut at {cut}");
                        break;
                    }
                    (span, listed) => panic!("cut at {cut}: {span:?} but {listed:?}"),
                }
            }
        }
    }
}
