//! Helpers the stores share: the deduplication key and event-time parsing.

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use trailmill_core::Event;

/// The key a store deduplicates on: `eventID`, or `sha256:` and the hex
/// SHA-256 of the record's bytes when it has none, so that identical copies
/// of an ID-less record still collapse. Every store uses the same key, so
/// their contents can be compared by it.
pub fn event_key<'a>(e: &Event<'a>) -> Cow<'a, str> {
    match e.event_id {
        Some(id) => Cow::Borrowed(id),
        None => Cow::Owned(format!("sha256:{}", hex::encode(Sha256::digest(e.raw)))),
    }
}

/// Microseconds since the Unix epoch of a CloudTrail time such as
/// `2024-01-01T00:00:00Z` (fractional seconds allowed). Other RFC 3339 forms
/// (offsets) go through `jiff`; anything else is `None`.
#[cfg(any(feature = "parquet", feature = "postgres"))]
pub fn parse_time_micros(s: &str) -> Option<i64> {
    parse_fast(s.as_bytes()).or_else(|| {
        let ts: jiff::Timestamp = s.parse().ok()?;
        Some(ts.as_microsecond())
    })
}

/// The exact CloudTrail form, `YYYY-MM-DDTHH:MM:SS[.f+]Z`, without a general
/// parser: this runs once per event on the hot path.
#[cfg(any(feature = "parquet", feature = "postgres"))]
fn parse_fast(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut micros = 0i64;
    let rest = &b[19..];
    let zone = match rest.first()? {
        b'.' => {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            let mut scale = 100_000i64;
            for &c in &rest[1..1 + digits] {
                micros += i64::from(c - b'0') * scale;
                scale /= 10;
            }
            &rest[1 + digits..]
        }
        _ => rest,
    };
    if zone != b"Z" {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros)
}

#[cfg(any(feature = "parquet", feature = "postgres"))]
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
#[cfg(any(feature = "parquet", feature = "postgres"))]
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day count since 1970-01-01.
#[cfg(feature = "parquet")]
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(all(test, any(feature = "parquet", feature = "postgres")))]
mod tests {
    use super::*;

    #[test]
    fn parses_cloudtrail_times() {
        assert_eq!(parse_time_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time_micros("2024-02-29T23:59:59Z"),
            Some(1_709_251_199_000_000)
        );
        assert_eq!(
            parse_time_micros("2024-02-29T23:59:59.25Z"),
            Some(1_709_251_199_250_000)
        );
        // An offset goes through the general parser.
        assert_eq!(
            parse_time_micros("2024-03-01T01:59:59+02:00"),
            Some(1_709_251_199_000_000)
        );
        assert_eq!(parse_time_micros("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_time_micros("yesterday"), None);
        assert_eq!(parse_time_micros(""), None);
    }

    #[cfg(feature = "parquet")]
    #[test]
    fn civil_round_trips() {
        for days in [-800_000, -1, 0, 1, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
