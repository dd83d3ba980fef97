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
}
