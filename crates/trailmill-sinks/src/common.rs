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
/// `2024-01-01T00:00:00Z` (fractional seconds allowed, offsets converted);
/// anything else is `None`. The parsing is the core's, which the event
/// filter's time bounds use too.
#[cfg(any(feature = "parquet", feature = "postgres"))]
pub fn parse_time_micros(s: &str) -> Option<i64> {
    trailmill_core::time::parse_event_time(s).map(|t| t.as_microsecond())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
#[cfg(all(test, feature = "parquet"))]
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
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
