//! Times: the one grammar every command reads times in, and CloudTrail's
//! `eventTime`.
//!
//! [`parse_time`] reads a time given by a user (`process --start`,
//! `--event-time-start`, `validate --start-time`, `keys fetch --start`, …).
//! Every command uses it, so a time means the same everywhere:
//!
//! | form | example | meaning |
//! |---|---|---|
//! | RFC 3339 / ISO 8601 | `2024-01-08T05:21:42Z`, `2024-01-08T05:21:42.5+02:00` | that instant; an offset is **converted** to UTC |
//! | date and time without zone | `2024-01-08 05:21`, `2024-01-08T05`, `2024/01/08 05:21:42` | UTC |
//! | date | `2024-01-08`, `2024/01/08`, `20240108` | midnight UTC; eight digits are always a date, or an error |
//! | compact date and time | `20240108T052142Z` | as in CloudTrail file names |
//! | Unix seconds | `@1704067200`, `@0`, `1704067200`, `1704067200.5` | a bare number needs at least 9 digits (anything since 1973); `@` takes any |
//!
//! `T` and `Z` may be lower case; the zone may be `Z`, `UTC`, `GMT`, or an
//! offset (`+02:00`, `+0200`, `+02`). Fractions of a second are kept.
//! Anything else is an error that says which forms are accepted.
//!
//! This differs from `aws cloudtrail validate-logs` in one way: the AWS CLI
//! drops an explicit offset (it reads `05:00+02:00` as 05:00 UTC), trailmill
//! converts it (03:00 UTC). Every form the AWS CLI accepts is accepted.
//!
//! [`parse_event_time`] reads the `eventTime` of a record, on the hot path:
//! CloudTrail's exact `YYYY-MM-DDTHH:MM:SS[.f]Z` without a general parser,
//! and other RFC 3339 forms through `jiff`.

use std::fmt;

pub use jiff::Timestamp;
use jiff::civil;

/// A time that [`parse_time`] could not read, with the text and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeError {
    /// The text given.
    pub input: String,
    /// Why it is not a time.
    pub reason: String,
}

/// What [`TimeError`] tells the user to write instead.
pub const ACCEPTED_FORMS: &str = "use RFC 3339 (2024-01-01T00:00:00Z, offsets allowed), \
     a date (2024-01-01 or 20240101) or Unix seconds (@1704067200)";

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a time: {}; {ACCEPTED_FORMS}",
            self.input, self.reason
        )
    }
}

impl std::error::Error for TimeError {}

/// Whole Unix seconds at or after `t`: a [`crate::Selection`] bound. Key
/// times are whole minutes, so for a key time `k`, `k >= t` and `k < t` hold
/// exactly when they hold for this.
pub fn ceil_seconds(t: Timestamp) -> i64 {
    t.as_second() + i64::from(t.subsec_nanosecond() > 0)
}

/// Parses a time given by a user, in the grammar of the [module docs](self).
pub fn parse_time(s: &str) -> Result<Timestamp, TimeError> {
    let err = |reason: &str| TimeError {
        input: s.to_owned(),
        reason: reason.to_owned(),
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(err("it is empty"));
    }
    let (at, digits) = match t.strip_prefix('@') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (int_part, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let numeric = all_digits(int_part) && frac.is_none_or(all_digits);
    if at && !numeric {
        return Err(err("after @ come Unix seconds, such as @1704067200"));
    }
    if numeric {
        if at || int_part.len() >= 9 {
            return unix_seconds(int_part, frac.unwrap_or(""))
                .ok_or_else(|| err("Unix seconds out of range"));
        }
        if int_part.len() != 8 || frac.is_some() {
            // `2024` or `86400` could be a year or seconds: refuse to guess.
            return Err(err(
                "a bare number is a compact date (8 digits, YYYYMMDD) or Unix seconds \
                 (9 or more digits); write small Unix seconds as @N",
            ));
        }
    }
    let loose = parse_loose(t).ok_or_else(|| {
        err(if numeric {
            "8 digits are a compact date, YYYYMMDD, and this is not a valid date"
        } else {
            "unknown form, or a field out of range"
        })
    })?;
    let ts = loose
        .dt
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| err(&e.to_string()))?;
    ts.checked_sub(jiff::SignedDuration::from_secs(
        loose.offset_seconds.unwrap_or(0).into(),
    ))
    .map_err(|e| err(&e.to_string()))
}

/// `secs.frac` Unix seconds as a timestamp, exactly (no float rounding).
fn unix_seconds(secs: &str, frac: &str) -> Option<Timestamp> {
    let secs: i64 = secs.parse().ok()?;
    // Digits below a nanosecond are dropped.
    let nanos = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0i32, |a, c| a * 10 + i32::from(c - b'0'));
    Timestamp::new(secs, nanos).ok()
}

/// A date and time as written, and the offset it was written with.
pub(crate) struct Loose {
    pub(crate) dt: civil::DateTime,
    pub(crate) offset_seconds: Option<i32>,
}

/// The date-and-time forms of the [module docs](self) (not Unix seconds).
pub(crate) fn parse_loose(s: &str) -> Option<Loose> {
    let s = s.trim();
    let b = s.as_bytes();
    let mut i = 0;
    let num = |i: &mut usize, len: usize| -> Option<i32> {
        let part = b.get(*i..*i + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *i += len;
        Some(part.iter().fold(0i32, |a, &c| a * 10 + i32::from(c - b'0')))
    };
    // Date.
    let year = num(&mut i, 4)?;
    let sep = b.get(i).copied();
    let (month, day) = if matches!(sep, Some(b'-' | b'/')) {
        i += 1;
        let m = num(&mut i, 2)?;
        if b.get(i) != sep.as_ref() {
            return None;
        }
        i += 1;
        (m, num(&mut i, 2)?)
    } else {
        (num(&mut i, 2)?, num(&mut i, 2)?)
    };
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    // Time.
    if matches!(b.get(i), Some(b'T' | b't' | b' ')) && b.get(i + 1).is_some_and(u8::is_ascii_digit)
    {
        i += 1;
        hour = num(&mut i, 2)?;
        let colon = b.get(i) == Some(&b':');
        if colon {
            i += 1;
        }
        if b.get(i).is_some_and(u8::is_ascii_digit) {
            minute = num(&mut i, 2)?;
            if colon && b.get(i) == Some(&b':')
                || !colon && b.get(i).is_some_and(u8::is_ascii_digit)
            {
                if colon {
                    i += 1;
                }
                second = num(&mut i, 2)?;
                if matches!(b.get(i), Some(b'.' | b',')) {
                    i += 1;
                    let start = i;
                    while b.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                    let frac = &s[start..i];
                    if frac.is_empty() {
                        return None;
                    }
                    let digits: String =
                        frac.chars().chain(std::iter::repeat('0')).take(9).collect();
                    nanos = digits.parse().ok()?;
                }
            }
        } else if colon {
            return None;
        }
    }
    // Zone.
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let rest = &s[i..];
    let offset_seconds = if rest.is_empty() {
        None
    } else if rest.eq_ignore_ascii_case("z")
        || rest.eq_ignore_ascii_case("utc")
        || rest.eq_ignore_ascii_case("gmt")
    {
        Some(0)
    } else {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let o = rest[1..].replace(':', "");
        if !o.bytes().all(|c| c.is_ascii_digit()) || !matches!(o.len(), 2 | 4) {
            return None;
        }
        let h: i32 = o[..2].parse().ok()?;
        let m: i32 = if o.len() == 4 {
            o[2..].parse().ok()?
        } else {
            0
        };
        if h > 23 || m > 59 {
            return None;
        }
        Some(sign * (h * 3600 + m * 60))
    };
    let dt = civil::DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    Some(Loose { dt, offset_seconds })
}

/// The instant of a record's `eventTime`: CloudTrail's exact
/// `YYYY-MM-DDTHH:MM:SS[.f]Z` (fractions kept to the nanosecond) read without
/// a general parser, since this runs once per event; other RFC 3339 forms
/// (offsets) through `jiff`; `None` for anything else.
pub fn parse_event_time(s: &str) -> Option<Timestamp> {
    match parse_cloudtrail_time(s.as_bytes()) {
        Some((secs, nanos)) => Timestamp::new(secs, nanos).ok(),
        None => s.parse().ok(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f+]Z` as Unix seconds and nanoseconds.
fn parse_cloudtrail_time(b: &[u8]) -> Option<(i64, i32)> {
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
    let mut nanos = 0i32;
    let rest = &b[19..];
    let zone = match rest.first()? {
        b'.' => {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            let mut scale = 100_000_000i32;
            for &c in &rest[1..1 + digits] {
                nanos += i32::from(c - b'0') * scale;
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
    Some((((days * 24 + hour) * 60 + minute) * 60 + second, nanos))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm): plain arithmetic, exact for any year, where a date library's
/// range ends (jiff's `Timestamp` ends on 9999-12-30).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day count since
/// 1970-01-01: the inverse of [`days_from_civil`].
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

/// `t` in RFC 3339, UTC, as CloudTrail writes times: `2024-01-01T00:00:00Z`,
/// with a fraction (trailing zeros dropped) only when there is one. Written
/// out here rather than taken from `jiff`'s `Display`, because it is part of
/// the state binding's text ([`crate::EventFilter::binding_text`]), which must
/// not change with a dependency.
pub fn rfc3339(t: Timestamp) -> String {
    let whole = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    match t.subsec_nanosecond() {
        0 => format!("{whole}Z"),
        // Negative for instants before 1970 with a fraction: the whole
        // seconds are then rounded toward zero, so step one back.
        n if n < 0 => {
            let floor = Timestamp::new(t.as_second() - 1, 0).unwrap_or(t);
            let frac = format!("{:09}", 1_000_000_000 + n);
            format!(
                "{}.{}Z",
                floor.strftime("%Y-%m-%dT%H:%M:%S"),
                frac.trim_end_matches('0')
            )
        }
        n => format!("{whole}.{}Z", format!("{n:09}").trim_end_matches('0')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        rfc3339(parse_time(s).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Every form the AWS CLI's `validate-logs` accepts is still accepted.
    #[test]
    fn parses_the_aws_cli_forms() {
        assert_eq!(t("2015-01-08T05:21:42Z"), "2015-01-08T05:21:42Z");
        assert_eq!(t("2015-01-08"), "2015-01-08T00:00:00Z");
        assert_eq!(t("2015/01/08"), "2015-01-08T00:00:00Z");
        assert_eq!(t("2015-01-08 05:21"), "2015-01-08T05:21:00Z");
        assert_eq!(t("2015-01-08T05"), "2015-01-08T05:00:00Z");
        assert_eq!(t("20150108T052142Z"), "2015-01-08T05:21:42Z");
        assert_eq!(t("2015/01/08 05:21:42 UTC"), "2015-01-08T05:21:42Z");
        assert_eq!(t("2015-01-08 05:21:42 GMT"), "2015-01-08T05:21:42Z");
        assert_eq!(
            t("2015-01-08t05:21:42.123456z"),
            "2015-01-08T05:21:42.123456Z"
        );
        assert_eq!(t(" 2015-01-08T05:21:42Z "), "2015-01-08T05:21:42Z");
    }

    /// Regression (issue 11, item 5): `process` read `--start 20240101` as
    /// Unix seconds (a time in 1970). Eight digits are a compact date, or an
    /// error; they are never seconds.
    #[test]
    fn a_compact_date_is_a_date_or_an_error_never_seconds() {
        assert_eq!(t("20240101"), "2024-01-01T00:00:00Z");
        let e = parse_time("20241301").unwrap_err();
        assert!(e.to_string().contains("compact date, YYYYMMDD"), "{e}");
        assert!(parse_time("20240230").is_err());
        assert!(parse_time("20240101.5").is_err());
        for short in ["2024", "86400", "0", "1234567"] {
            let e = parse_time(short).unwrap_err();
            assert!(e.to_string().contains("@N"), "{short}: {e}");
        }
    }

    /// Regression (issue 11, item 5): explicit offsets were dropped (the
    /// AWS CLI's validate-logs replaces the zone); they are converted.
    #[test]
    fn explicit_offsets_are_converted_to_utc() {
        assert_eq!(t("2015-01-08T05:21:42+02:00"), "2015-01-08T03:21:42Z");
        assert_eq!(t("2015-01-08T05:21:42-0500"), "2015-01-08T10:21:42Z");
        assert_eq!(t("2015-01-08T05:21:42+02"), "2015-01-08T03:21:42Z");
        assert_eq!(t("2015-01-08 01:00 +02:00"), "2015-01-07T23:00:00Z");
        assert_eq!(t("2024-01-01T01:00:00.25+01:00"), "2024-01-01T00:00:00.25Z");
    }

    #[test]
    fn unix_seconds_keep_working() {
        assert_eq!(t("1420694502"), "2015-01-08T05:21:42Z");
        assert_eq!(t("@1420694502"), "2015-01-08T05:21:42Z");
        assert_eq!(t("1420694502.5"), "2015-01-08T05:21:42.5Z");
        assert_eq!(t("@1420694502.9"), "2015-01-08T05:21:42.9Z");
        assert_eq!(t("@0"), "1970-01-01T00:00:00Z");
        assert_eq!(t("@86400"), "1970-01-02T00:00:00Z");
    }

    #[test]
    fn rejects_garbage_and_says_what_is_accepted() {
        for s in [
            "",
            "yesterday",
            "2015-13-01",
            "2015-02-30",
            "2015-01-08T25:00",
            "2015-01-08T05:21:42+99",
            "2015-01-08X",
            "2015-1-8",
            "@",
            "@1.2.3",
            "@-5",
            "@x",
            "99999999999999999999999",
        ] {
            let e = parse_time(s).expect_err(s);
            assert!(e.to_string().contains("use RFC 3339"), "{s}: {e}");
        }
    }

    #[test]
    fn event_times_keep_fractions_and_offsets() {
        let e = |s: &str| parse_event_time(s).map(rfc3339);
        assert_eq!(
            e("2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            e("2024-01-01T00:00:00.5Z").as_deref(),
            Some("2024-01-01T00:00:00.5Z")
        );
        assert_eq!(
            e("2024-03-01T01:59:59+02:00").as_deref(),
            Some("2024-02-29T23:59:59Z")
        );
        assert_eq!(
            parse_event_time("2024-02-29T23:59:59.25Z").map(|t| t.as_microsecond()),
            Some(1_709_251_199_250_000)
        );
        assert_eq!(parse_event_time("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_event_time("yesterday"), None);
        assert_eq!(parse_event_time(""), None);
    }

    #[test]
    fn civil_days_round_trip() {
        for days in [-800_000, -1, 0, 1, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
    }

    #[test]
    fn rfc3339_is_pinned() {
        let ts = |s, n| Timestamp::new(s, n).unwrap();
        assert_eq!(rfc3339(ts(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(ts(1_704_067_200, 500_000_000)),
            "2024-01-01T00:00:00.5Z"
        );
        assert_eq!(
            rfc3339(ts(1_704_067_200, 1)),
            "2024-01-01T00:00:00.000000001Z"
        );
        assert_eq!(rfc3339(ts(-1, 500_000_000)), "1969-12-31T23:59:59.5Z");
        assert_eq!(rfc3339(ts(0, -500_000_000)), "1969-12-31T23:59:59.5Z");
    }
}
