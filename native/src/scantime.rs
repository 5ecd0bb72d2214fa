//! IV-MTR's scan time, `YYYY-MM-DD hh:mm:ss±hh:mm` (or with `T`, or `Z`), to a UTC instant.
//!
//! Only that exact form is taken here; fractions, `±hhmm`, missing seconds and anything
//! the Python parser would refuse go to the Python path.

/// A parsed scan time, as `consumer.core.scantime.ScanTime` holds it.
pub struct ScanTime {
    pub utc_micros: i64,
    /// `YYYY-MM-DDThh:mm:ss`, the naive local wall time.
    pub local_time: String,
    pub utc_offset_minutes: i64,
}

fn digits(bytes: &[u8]) -> Option<i64> {
    let mut value = 0i64;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some(value)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The scan time, or None when the text is not in the one form taken here.
pub fn parse(text: &str) -> Option<ScanTime> {
    let b = text.as_bytes();
    let offset_minutes = match b.len() {
        25 => {
            let sign = match b[19] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if b[22] != b':' || !(b'0'..=b'5').contains(&b[23]) {
                return None;
            }
            let minutes = digits(&b[20..22])? * 60 + digits(&b[23..25])?;
            if minutes > 14 * 60 {
                return None;
            }
            sign * minutes
        }
        20 if b[19] == b'Z' => 0,
        _ => return None,
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    // Years at the ends of Python's datetime range may overflow there: leave them to it.
    if !(2..=9998).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let local_seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let local_time = format!("{}T{}", &text[0..10], &text[11..19]);
    Some(ScanTime {
        utc_micros: (local_seconds - offset_minutes * 60) * 1_000_000,
        local_time,
        utc_offset_minutes: offset_minutes,
    })
}

#[cfg(test)]
mod tests {
    use super::{days_from_civil, parse};

    fn parsed(text: &str) -> (i64, String, i64) {
        let time = parse(text).unwrap_or_else(|| panic!("{text:?} was refused"));
        (time.utc_micros, time.local_time, time.utc_offset_minutes)
    }

    #[test]
    fn the_iv_mtr_form_is_a_utc_instant_local_time_and_offset() {
        // 2016-01-23T03:29:53Z is 1453519793 s after the epoch (Python's datetime agrees).
        let expected = (
            1_453_519_793_000_000,
            "2016-01-22T22:29:53".to_owned(),
            -300,
        );
        assert_eq!(parsed("2016-01-22 22:29:53-05:00"), expected);
        assert_eq!(parsed("2016-01-22T22:29:53-05:00"), expected);
        assert_eq!(
            parsed("2016-01-23 08:59:53+05:30"),
            (1_453_519_793_000_000, "2016-01-23T08:59:53".to_owned(), 330)
        );
        assert_eq!(
            parsed("2016-01-23 03:29:53Z"),
            (1_453_519_793_000_000, "2016-01-23T03:29:53".to_owned(), 0)
        );
        assert_eq!(parsed("2016-01-23 03:29:53+00:00").0, 1_453_519_793_000_000);
        assert_eq!(parsed("2016-01-23 03:29:53-00:00").2, 0);
    }

    #[test]
    fn calendar_edges() {
        assert_eq!(parsed("1970-01-01 00:00:00Z").0, 0);
        assert_eq!(parsed("1969-12-31 23:59:59Z").0, -1_000_000);
        assert_eq!(parsed("2016-02-29 23:59:59Z").0, 1_456_790_399_000_000); // a leap day
        assert_eq!(parsed("2000-02-29 00:00:00Z").0, 951_782_400_000_000); // 400-year rule
                                                                           // The first and last years taken (Python's datetime range, one year in).
        assert_eq!(parsed("0002-01-01 00:00:00Z").0, -62_104_060_800_000_000);
        assert_eq!(parsed("9998-12-31 23:59:59Z").0, 253_370_764_799_000_000);
        assert_eq!(parsed("2016-01-22 10:00:00+14:00").2, 840);
        assert_eq!(parsed("2016-01-22 10:00:00-14:00").2, -840);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn anything_else_is_left_to_the_python_parser() {
        for text in [
            "",
            "2016-01-22",
            "2016-01-22 22:29:53",         // no offset
            "2016-01-22 22:29-05:00",      // no seconds
            "2016-01-22 22:29:53.5-05:00", // a fraction
            "2016-01-22 22:29:53-0500",    // offset without a colon
            "2016-01-22 22:29:53 -05:00",  // a space before the offset
            "2016-01-22 22:29:53z",        // lower-case zone
            "2016-01-22_22:29:53-05:00",   // another separator
            "2016/01/22 22:29:53-05:00",   // another date separator
            " 2016-01-22 22:29:53-05:00",  // leading space
            "2016-01-22 22:29:53+14:01",   // beyond +14:00
            "2016-01-22 22:29:53+05:60",   // offset minutes out of range
            "2016-01-22 22:29:53*05:00",   // no sign
            "2015-02-29 10:00:00-05:00",   // not a leap year
            "1900-02-29 10:00:00-05:00",   // nor a century not divisible by 400
            "2016-04-31 10:00:00-05:00",   // a 30-day month
            "2016-13-01 10:00:00-05:00",   // month 13
            "2016-00-01 10:00:00-05:00",   // month 0
            "2016-01-00 10:00:00-05:00",   // day 0
            "2016-01-22 24:00:00-05:00",   // hour 24
            "2016-01-22 22:60:00-05:00",   // minute 60
            "2016-01-22 22:29:60-05:00",   // a leap second
            "0001-01-01 00:00:00+01:00",   // year 1: Python's range may overflow
            "9999-12-31 23:59:59-01:00",   // year 9999, likewise
            "0000-01-01 00:00:00Z",
            "２016-01-22 22:29:53-05:00", // non-ASCII digits
            "2016-01-22 22:29:é-05:00",   // non-ASCII where digits should be (25 bytes)
            "2016-01-22 22:29:53-05:0é",  // ... and in the offset
            "+016-01-22 22:29:53-05:00",  // a sign inside a number
            "2016-0-122 22:29:53-05:00",
        ] {
            assert!(parse(text).is_none(), "{text:?} was taken");
        }
    }
}
