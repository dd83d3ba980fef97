//! Times: parsing the forms the AWS CLI accepts, and formatting as it prints.

use jiff::{Timestamp, civil};

use crate::error::{Error, ErrorKind};

/// Parses a `--start-time`, `--end-time` or `--expect-until` value with
/// trailmill's one time grammar ([`trailmill_core::time::parse_time`], shared
/// by every command).
///
/// Every form `aws cloudtrail validate-logs` accepts is accepted:
/// `2024-01-08`, `2024-01-08T05:21:42Z`, `2024-01-08T05:21:42.123456Z`,
/// `2024-01-08 05:21`, `2024-01-08T05`, `20240108T052142Z`, `20240108`,
/// `2024/01/08 05:21:42`, and any of those followed by `Z`, `UTC`, `GMT` or
/// an offset such as `+02:00` / `-0500` (case-insensitive `T` and `Z`).
///
/// One difference: the AWS CLI replaces an explicit offset by UTC
/// (`05:00+02:00` means 05:00 UTC to it); trailmill converts it (03:00 UTC),
/// as every trailmill command does. Unix seconds are accepted too:
/// `@1704067200`, or a bare number of 9 or more digits (optionally with a
/// fraction), `1704067200.5`.
pub fn parse_time(s: &str) -> Result<Timestamp, Error> {
    trailmill_core::time::parse_time(s).map_err(|e| {
        Error::new(
            ErrorKind::InvalidTime,
            Some(s.to_string()),
            format!("{}; {}", e.reason, trailmill_core::time::ACCEPTED_FORMS),
        )
    })
}

/// Parses a time and applies its offset (for public key validity windows,
/// where the instant matters): any form [`parse_time`] accepts, or seconds
/// since the Unix epoch of any size (integer or fractional), as AWS APIs give.
pub(crate) fn parse_instant(s: &str) -> Option<Timestamp> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return epoch_seconds(secs);
    }
    trailmill_core::time::parse_time(t).ok()
}

/// Seconds since the epoch (possibly fractional) as a timestamp.
pub(crate) fn epoch_seconds(secs: f64) -> Option<Timestamp> {
    if !secs.is_finite() || secs.abs() > 1e11 {
        return None;
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round() as i32;
    Timestamp::new(whole as i64, nanos.min(999_999_999)).ok()
}

/// Formats as the CLI displays times: `2024-01-08T05:21:42Z` (fractions dropped).
pub fn display_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Formats as digest file names carry times: `20240108T052142Z`.
pub(crate) fn key_time_string(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// `t` truncated to whole seconds.
pub(crate) fn floor_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// `t` plus `secs` seconds, saturating at the representable range.
pub(crate) fn add_secs(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(if secs < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
}

/// Seconds from `a` to `b` (negative when `b` is earlier).
pub(crate) fn secs_between(a: Timestamp, b: Timestamp) -> i64 {
    b.as_second() - a.as_second()
}

/// The time a digest key carries, as the CLI extracts it: the 16 characters
/// `YYYYMMDDTHHMMSSZ` before `.json.gz` (or before `_backfill.json.gz`).
pub(crate) fn digest_key_time(key: &str) -> Option<Timestamp> {
    let stem = key
        .strip_suffix("_backfill.json.gz")
        .or_else(|| key.strip_suffix(".json.gz"))?;
    let start = stem.len().checked_sub(16)?;
    let s = stem.get(start..)?;
    parse_compact(s)
}

/// Parses exactly `YYYYMMDDTHHMMSSZ`.
pub(crate) fn parse_compact(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i32> {
        let part = &b[r];
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i32, |a, &c| a * 10 + i32::from(c - b'0')))
    };
    let dt = civil::DateTime::new(
        i16::try_from(n(0..4)?).ok()?,
        i8::try_from(n(4..6)?).ok()?,
        i8::try_from(n(6..8)?).ok()?,
        i8::try_from(n(9..11)?).ok()?,
        i8::try_from(n(11..13)?).ok()?,
        i8::try_from(n(13..15)?).ok()?,
        0,
    )
    .ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// A Python type name for the CLI's "Parser must be a string…" message.
pub(crate) fn python_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "NoneType",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) if n.is_f64() => "float",
        serde_json::Value::Number(_) => "int",
        serde_json::Value::String(_) => "str",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "dict",
    }
}

/// Parses a digest time field as the CLI does, or gives the CLI's error text.
pub(crate) fn parse_digest_time(v: Option<&serde_json::Value>) -> Result<Timestamp, String> {
    match v {
        Some(serde_json::Value::String(s)) => {
            parse_time(s).map_err(|_| format!("Unable to parse date value: {s}"))
        }
        Some(other) => Err(format!(
            "Parser must be a string or character stream, not {}",
            python_type_name(other)
        )),
        None => Err("Parser must be a string or character stream, not NoneType".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        display_time(parse_time(s).unwrap())
    }

    /// The forms themselves are tested with the grammar
    /// (`trailmill_core::time`); this checks what the wrapper adds: the
    /// display the header uses, whole seconds, and the error kind and text.
    #[test]
    fn validate_times_use_the_one_grammar() {
        assert_eq!(t("20150108"), "2015-01-08T00:00:00Z");
        assert_eq!(t("2015-01-08T05:21:42+02:00"), "2015-01-08T03:21:42Z");
        assert_eq!(t("@1420694502.9"), "2015-01-08T05:21:42Z");
        let e = parse_time("20151301").unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::InvalidTime);
        assert!(e.to_string().contains("20151301"), "{e}");
        assert!(e.to_string().contains("use RFC 3339"), "{e}");
    }

    #[test]
    fn instants_apply_offsets_and_accept_epochs() {
        let a = parse_instant("2015-01-08T05:00:00+02:00").unwrap();
        assert_eq!(display_time(a), "2015-01-08T03:00:00Z");
        assert_eq!(
            display_time(parse_instant("1420694502").unwrap()),
            "2015-01-08T05:21:42Z"
        );
        assert_eq!(
            display_time(parse_instant("1420694502.75").unwrap()),
            "2015-01-08T05:21:42Z"
        );
        assert!(parse_instant("NaN").is_none());
    }

    #[test]
    fn digest_key_times() {
        let k = "AWSLogs/1/CloudTrail-Digest/us-east-1/2024/01/02/1_CloudTrail-Digest_us-east-1_t_us-east-1_20240102T030405Z.json.gz";
        assert_eq!(
            key_time_string(digest_key_time(k).unwrap()),
            "20240102T030405Z"
        );
        let b = k.replace(".json.gz", "_backfill.json.gz");
        assert_eq!(
            key_time_string(digest_key_time(&b).unwrap()),
            "20240102T030405Z"
        );
        assert!(digest_key_time("x.json.gz").is_none());
        assert!(digest_key_time("short").is_none());
    }

    #[test]
    fn digest_time_errors_match_the_cli() {
        assert_eq!(
            parse_digest_time(None).unwrap_err(),
            "Parser must be a string or character stream, not NoneType"
        );
        assert_eq!(
            parse_digest_time(Some(&serde_json::json!(5))).unwrap_err(),
            "Parser must be a string or character stream, not int"
        );
        assert_eq!(
            parse_digest_time(Some(&serde_json::json!("bad"))).unwrap_err(),
            "Unable to parse date value: bad"
        );
    }
}
