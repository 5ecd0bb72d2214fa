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
