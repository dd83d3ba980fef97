//! The grammar of CloudTrail object keys.
//!
//! CloudTrail delivers three kinds of objects, all under the same layout:
//!
//! ```text
//! [prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz
//! [prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_YYYYMMDDTHHMMSSZ[_backfill].json.gz
//! [prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail-Insight/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail-Insight_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz
//! ```
//!
//! [`ObjectKey::parse`] recognises that layout, and also files that carry a
//! CloudTrail file name in any other directory (an export, or a tree such as
//! `REGION/YYYY/MM/DD/*.json.gz`). Everything else is [`Classified::Other`]
//! with the reason. [`ObjectKey`]'s `Display` writes the key back exactly, so
//! `parse` and `to_string` round-trip.
//!
//! Account IDs are not assumed to be numeric, and prefixes may have any number
//! of segments.

use std::fmt;

/// The time in a file name: minute precision for log and Insights files,
/// second precision for digests.
///
/// Ordered chronologically, so selections compare keys without a date library.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyTime {
    /// Four-digit year.
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day of the month, 1 to 31.
    pub day: u8,
    /// Hour, 0 to 23.
    pub hour: u8,
    /// Minute, 0 to 59.
    pub minute: u8,
    /// Second, 0 to 59; `None` when the file name has minute precision.
    pub second: Option<u8>,
}

impl KeyTime {
    /// The time as seconds since the Unix epoch (UTC).
    pub fn unix_seconds(&self) -> i64 {
        // Plain civil arithmetic, exact for every date the grammar accepts
        // (years 0000 to 9999). A date library's range ends late on
        // 9999-12-30 in some time zones, and a fallback value would have
        // placed such a key in 1970.
        let days = crate::time::days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second.unwrap_or(0))
    }

    /// The `YYYY/MM/DD` folder this time is delivered under.
    pub fn date(&self) -> KeyDate {
        KeyDate {
            year: self.year,
            month: self.month,
            day: self.day,
        }
    }

    fn parse(s: &str, with_seconds: bool) -> Option<Self> {
        // YYYYMMDDTHHmmZ or YYYYMMDDTHHMMSSZ
        let b = s.as_bytes();
        let want = if with_seconds { 16 } else { 14 };
        if b.len() != want || b[8] != b'T' || b[want - 1] != b'Z' {
            return None;
        }
        let year = digits(&b[0..4])? as u16;
        let month = digits(&b[4..6])? as u8;
        let day = digits(&b[6..8])? as u8;
        let hour = digits(&b[9..11])? as u8;
        let minute = digits(&b[11..13])? as u8;
        let second = if with_seconds {
            Some(digits(&b[13..15])? as u8)
        } else {
            None
        };
        let t = KeyTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        };
        t.is_valid().then_some(t)
    }

    fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second.is_none_or(|s| s < 60)
    }
}

impl fmt::Display for KeyTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}{:02}{:02}T{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )?;
        if let Some(s) = self.second {
            write!(f, "{s:02}")?;
        }
        f.write_str("Z")
    }
}

/// A `YYYY/MM/DD` delivery folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyDate {
    /// Four-digit year.
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day of the month.
    pub day: u8,
}

impl fmt::Display for KeyDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
}

/// What a CloudTrail object holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind<'a> {
    /// A log file of management and data events (`CloudTrail`).
    Log {
        /// The random suffix that makes the name unique.
        unique: &'a str,
    },
    /// An Insights file (`CloudTrail-Insight`).
    Insight {
        /// The random suffix that makes the name unique.
        unique: &'a str,
    },
    /// A digest file (`CloudTrail-Digest`): hashes of the log files of one hour.
    Digest {
        /// The trail's name (may contain underscores).
        trail: &'a str,
        /// The region the trail was created in.
        home_region: &'a str,
        /// A digest CloudTrail delivered later to fill a gap (`_backfill`).
        backfill: bool,
    },
}

impl FileKind<'_> {
    /// The service folder and file-name tag: `CloudTrail`, `CloudTrail-Digest` or `CloudTrail-Insight`.
    pub fn folder(&self) -> &'static str {
        match self {
            FileKind::Log { .. } => "CloudTrail",
            FileKind::Insight { .. } => "CloudTrail-Insight",
            FileKind::Digest { .. } => "CloudTrail-Digest",
        }
    }

    /// True for digest files, which are never parsed as events.
    pub fn is_digest(&self) -> bool {
        matches!(self, FileKind::Digest { .. })
    }
}

/// The kind of CloudTrail file a file name claims to be, by its service tag
/// alone (`ACCOUNT_CloudTrail_…`, `_CloudTrail-Digest_`, `_CloudTrail-Insight_`),
/// whether or not the rest of the name follows the grammar.
///
/// Listings use it for keys that [`ObjectKey::parse`] rejects: such a file is
/// almost always a real CloudTrail file with a damaged or unusual name (a
/// minute of `67`, a region CloudTrail does not use yet), and skipping it as
/// "other" would drop its events without a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClaimedKind {
    /// `_CloudTrail_`: a log file.
    Log,
    /// `_CloudTrail-Insight_`: an Insights file.
    Insight,
    /// `_CloudTrail-Digest_`: a digest file.
    Digest,
}

impl ClaimedKind {
    /// The kind `key`'s file name (its part after the last `/`) claims, if any.
    /// Only the second `_`-separated part of a name that ends in `.json.gz` or
    /// `.json` counts, as in the grammar: files beside CloudTrail's, such as a
    /// digest's `.sig` sidecar, claim nothing.
    pub fn of(key: &str) -> Option<ClaimedKind> {
        let name = key.rsplit('/').next().unwrap_or(key);
        if !(name.ends_with(".json.gz") || name.ends_with(".json")) {
            return None;
        }
        let mut parts = name.split('_');
        let _account = parts.next()?;
        match parts.next()? {
            "CloudTrail" => Some(ClaimedKind::Log),
            "CloudTrail-Insight" => Some(ClaimedKind::Insight),
            "CloudTrail-Digest" => Some(ClaimedKind::Digest),
            _ => None,
        }
    }
}

/// How a file name ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extension {
    /// `.json.gz`, as CloudTrail delivers.
    JsonGz,
    /// `.json`, as after `gunzip` or in exports.
    Json,
}

impl Extension {
    fn as_str(self) -> &'static str {
        match self {
            Extension::JsonGz => ".json.gz",
            Extension::Json => ".json",
        }
    }
}

/// A parsed CloudTrail file name: `ACCOUNT_CloudTrail..._REGION_..._TIME...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileName<'a> {
    /// The account the file belongs to.
    pub account: &'a str,
    /// The region the events were recorded in.
    pub region: &'a str,
    /// Log, Insights or digest, with the kind's own parts.
    pub kind: FileKind<'a>,
    /// The delivery time in the name (the digest's end time for digests).
    pub time: KeyTime,
    /// `.json.gz` or `.json`.
    pub extension: Extension,
}

impl<'a> FileName<'a> {
    /// Parses a bare file name, or says why it is not a CloudTrail file name.
    pub fn parse(name: &'a str) -> Result<Self, String> {
        let (stem, extension) = if let Some(s) = name.strip_suffix(".json.gz") {
            (s, Extension::JsonGz)
        } else if let Some(s) = name.strip_suffix(".json") {
            (s, Extension::Json)
        } else {
            return Err("name does not end in .json.gz or .json".into());
        };
        let (account, rest) = stem.split_once('_').ok_or("no '_' in the file name")?;
        if account.is_empty() || account.contains('/') {
            return Err("empty account in the file name".into());
        }
        let (tag, rest) = rest
            .split_once('_')
            .ok_or("no service tag in the file name")?;
        let (region, rest) = rest.split_once('_').ok_or("no region in the file name")?;
        if !is_region(region) {
            return Err(format!("{region:?} is not a region"));
        }
        match tag {
            "CloudTrail" | "CloudTrail-Insight" => {
                let (time, unique) = rest
                    .split_once('_')
                    .ok_or("no unique suffix in the file name")?;
                let time = KeyTime::parse(time, false)
                    .ok_or_else(|| format!("{time:?} is not a YYYYMMDDTHHmmZ time"))?;
                if unique.is_empty() || unique.contains(['/', '_']) {
                    return Err(format!("{unique:?} is not a unique suffix"));
                }
                let kind = if tag == "CloudTrail" {
                    FileKind::Log { unique }
                } else {
                    FileKind::Insight { unique }
                };
                Ok(FileName {
                    account,
                    region,
                    kind,
                    time,
                    extension,
                })
            }
            "CloudTrail-Digest" => {
                let (rest, backfill) = match rest.strip_suffix("_backfill") {
                    Some(r) => (r, true),
                    None => (rest, false),
                };
                let (rest, time) = rest.rsplit_once('_').ok_or("no time in the digest name")?;
                let time = KeyTime::parse(time, true)
                    .ok_or_else(|| format!("{time:?} is not a YYYYMMDDTHHMMSSZ time"))?;
                let (trail, home_region) = rest
                    .rsplit_once('_')
                    .ok_or("no home region in the digest name")?;
                if !is_region(home_region) {
                    return Err(format!("{home_region:?} is not a home region"));
                }
                if trail.is_empty() || trail.contains('/') {
                    return Err("empty trail name in the digest name".into());
                }
                Ok(FileName {
                    account,
                    region,
                    kind: FileKind::Digest {
                        trail,
                        home_region,
                        backfill,
                    },
                    time,
                    extension,
                })
            }
            other => Err(format!(
                "{other:?} is not CloudTrail, CloudTrail-Digest or CloudTrail-Insight"
            )),
        }
    }
}

impl fmt::Display for FileName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}_{}_",
            self.account,
            self.kind.folder(),
            self.region
        )?;
        match self.kind {
            FileKind::Log { unique } | FileKind::Insight { unique } => {
                write!(f, "{}_{unique}", self.time)?
            }
            FileKind::Digest {
                trail,
                home_region,
                backfill,
            } => {
                write!(f, "{trail}_{home_region}_{}", self.time)?;
                if backfill {
                    f.write_str("_backfill")?;
                }
            }
        }
        f.write_str(self.extension.as_str())
    }
}

/// Where a CloudTrail file sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location<'a> {
    /// CloudTrail's own layout: `[prefix/]AWSLogs/[o-ORGID/]ACCOUNT/SERVICE/REGION/YYYY/MM/DD/`.
    /// The account, region, service folder and date agree with the file name.
    AwsLogs {
        /// The trail's S3 key prefix, without the trailing `/`; may hold several segments.
        prefix: Option<&'a str>,
        /// The organization ID (`o-…`) of an organization trail that has the folder.
        org_id: Option<&'a str>,
    },
    /// Any other directory, such as an export or a synced sub-tree.
    Elsewhere {
        /// The directory part of the key up to and including its last `/`;
        /// empty for a bare file name.
        dir: &'a str,
    },
}

/// A key classified as a CloudTrail log, digest or Insights file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey<'a> {
    /// Where the file sits.
    pub location: Location<'a>,
    /// What its name says.
    pub file: FileName<'a>,
}

/// The result of classifying any key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classified<'a> {
    /// A CloudTrail log, digest or Insights file.
    Trail(ObjectKey<'a>),
    /// Anything else, with the reason it is not a CloudTrail file.
    Other {
        /// Why the key is not a CloudTrail file key.
        reason: String,
    },
}

impl<'a> ObjectKey<'a> {
    /// Classifies `key` (an S3 key or a relative path with `/` separators).
    pub fn classify(key: &'a str) -> Classified<'a> {
        match Self::parse(key) {
            Ok(k) => Classified::Trail(k),
            Err(reason) => Classified::Other { reason },
        }
    }

    /// Parses `key`, or says why it is not a CloudTrail file key.
    pub fn parse(key: &'a str) -> Result<Self, String> {
        let name_start = key.rfind('/').map_or(0, |i| i + 1);
        let (dir_with_slash, name) = key.split_at(name_start);
        let file = FileName::parse(name)?;
        let location = match dir_with_slash
            .strip_suffix('/')
            .and_then(|dir| aws_logs_location(dir, &file))
        {
            Some(Ok(loc)) => loc,
            Some(Err(reason)) => return Err(reason),
            None => Location::Elsewhere {
                dir: dir_with_slash,
            },
        };
        Ok(ObjectKey { location, file })
    }

    /// The organization ID, when the key has an `o-…` folder.
    pub fn org_id(&self) -> Option<&'a str> {
        match self.location {
            Location::AwsLogs { org_id, .. } => org_id,
            Location::Elsewhere { .. } => None,
        }
    }

    /// The trail prefix, when the key is in CloudTrail's layout and has one.
    pub fn prefix(&self) -> Option<&'a str> {
        match self.location {
            Location::AwsLogs { prefix, .. } => prefix,
            Location::Elsewhere { .. } => None,
        }
    }

    /// The folder that holds this file's account, region and day, ending in `/`:
    /// `[prefix/]AWSLogs/[o-ORGID/]ACCOUNT/SERVICE/REGION/YYYY/MM/DD/` (or the directory elsewhere).
    pub fn day_folder(&self) -> String {
        match self.location {
            Location::AwsLogs { prefix, org_id } => day_prefix(
                prefix,
                org_id,
                self.file.account,
                self.file.kind.folder(),
                self.file.region,
                self.file.time.date(),
            ),
            Location::Elsewhere { dir } => dir.to_owned(),
        }
    }
}

impl fmt::Display for ObjectKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.day_folder(), self.file)
    }
}

/// The folder for one account, service, region and day:
/// `[prefix/]AWSLogs/[o-ORGID/]ACCOUNT/SERVICE/REGION/YYYY/MM/DD/`.
///
/// Listing planners use it to list exactly one day.
pub fn day_prefix(
    prefix: Option<&str>,
    org_id: Option<&str>,
    account: &str,
    service_folder: &str,
    region: &str,
    date: KeyDate,
) -> String {
    let mut s = String::with_capacity(96);
    if let Some(p) = prefix {
        s.push_str(p);
        s.push('/');
    }
    s.push_str("AWSLogs/");
    if let Some(o) = org_id {
        s.push_str(o);
        s.push('/');
    }
    use fmt::Write;
    let _ = write!(s, "{account}/{service_folder}/{region}/{date}/");
    s
}

/// Recognises `[prefix/]AWSLogs/[o-ORGID/]ACCOUNT/SERVICE/REGION/YYYY/MM/DD` in `dir`.
/// `None` when `dir` is not in that layout at all; an error when it is but
/// disagrees with the file name.
fn aws_logs_location<'a>(
    dir: &'a str,
    file: &FileName<'a>,
) -> Option<Result<Location<'a>, String>> {
    // Split from the right: DD, MM, YYYY, REGION, SERVICE, ACCOUNT, [o-ORG], AWSLogs, prefix...
    let mut parts = dir.rsplitn(7, '/');
    let (dd, mm, yyyy, region, service, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let rest = parts.next()?;
    let (before_org, org_id) = match rest.rsplit_once('/') {
        Some((before, last)) if last.starts_with("o-") => (before, Some(last)),
        Some(_) | None if rest.starts_with("o-") && !rest.contains('/') => ("", Some(rest)),
        _ => (rest, None),
    };
    // `before_org` must be `AWSLogs` or `PREFIX/AWSLogs`.
    let prefix = if before_org == "AWSLogs" {
        None
    } else {
        Some(before_org.strip_suffix("/AWSLogs")?)
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.starts_with('/') || p.contains("//"))
    {
        return Some(Err(format!("empty segment in prefix {p:?}")));
    }
    if org_id == Some("o-") {
        return Some(Err("empty organization ID".into()));
    }
    let date = (
        digits(yyyy.as_bytes()),
        digits(mm.as_bytes()),
        digits(dd.as_bytes()),
    );
    let mismatch = |what: &str, folder: &str, name: &dyn fmt::Display| {
        Some(Err(format!(
            "folder {what} {folder:?} does not match the file name's {name}"
        )))
    };
    if account != file.account {
        return mismatch("account", account, &file.account);
    }
    if service != file.kind.folder() {
        return mismatch("service", service, &file.kind.folder());
    }
    if region != file.region {
        return mismatch("region", region, &file.region);
    }
    let name_date = file.time.date();
    if yyyy.len() != 4
        || mm.len() != 2
        || dd.len() != 2
        || date
            != (
                Some(name_date.year.into()),
                Some(name_date.month.into()),
                Some(name_date.day.into()),
            )
    {
        return mismatch("date", &format!("{yyyy}/{mm}/{dd}"), &name_date);
    }
    Some(Ok(Location::AwsLogs { prefix, org_id }))
}

/// Region names are lower-case letters, digits and dashes (`us-east-1`,
/// `us-gov-west-1`, and anonymised ones such as `ap-isob-east-1r`).
fn is_region(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn days_in_month(year: u16, month: u8) -> u8 {
    jiff::civil::date(year.min(9999) as i16, month as i8, 1).days_in_month() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_times_convert_exactly_over_the_grammars_whole_range() {
        let t = |y, mo, d, h, mi, s| KeyTime {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        };
        assert_eq!(t(1970, 1, 1, 0, 0, None).unix_seconds(), 0);
        assert_eq!(
            t(2024, 2, 29, 23, 59, Some(59)).unix_seconds(),
            1_709_251_199
        );
        assert_eq!(t(1969, 12, 31, 23, 59, Some(59)).unix_seconds(), -1);
        assert_eq!(
            t(9999, 12, 31, 23, 59, None).unix_seconds(),
            253_402_300_740
        );
        assert_eq!(t(0, 1, 1, 0, 0, None).unix_seconds(), -62_167_219_200);
    }

    #[test]
    fn a_name_claims_a_cloudtrail_kind_by_its_service_tag_alone() {
        let cases = [
            (
                "a/111_CloudTrail_us-east-1_20240501T0067Z_x.json.gz",
                Some(ClaimedKind::Log),
            ),
            ("111_CloudTrail-Digest_bad.json", Some(ClaimedKind::Digest)),
            (
                "111_CloudTrail-Insight_x_y.json.gz",
                Some(ClaimedKind::Insight),
            ),
            // A digest's signature sidecar is not a digest.
            (
                "111_CloudTrail-Digest_r_t_r_20240101T010015Z.json.gz.sig",
                None,
            ),
            ("111_Config_us-east-1_ConfigSnapshot_x.json.gz", None),
            ("CloudTrail_111_x.json.gz", None),
            ("no-underscore.json", None),
        ];
        for (key, want) in cases {
            assert_eq!(ClaimedKind::of(key), want, "{key}");
        }
    }
    use proptest::prelude::*;

    #[test]
    fn parses_a_log_key_with_a_multi_segment_prefix_and_org() {
        let key = "a/b/c/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2024/02/29/111122223333_CloudTrail_eu-west-1_20240229T2355Z_AbCd1234.json.gz";
        let k = ObjectKey::parse(key).unwrap();
        assert_eq!(
            k.location,
            Location::AwsLogs {
                prefix: Some("a/b/c"),
                org_id: Some("o-abc123")
            }
        );
        assert_eq!(k.file.account, "111122223333");
        assert_eq!(k.file.kind, FileKind::Log { unique: "AbCd1234" });
        assert_eq!(k.file.time.hour, 23);
        assert_eq!(k.to_string(), key);
    }

    #[test]
    fn parses_an_org_trail_without_the_org_folder_and_without_prefix() {
        let key = "AWSLogs/acct-not-numeric/CloudTrail/us-east-1/2023/07/10/acct-not-numeric_CloudTrail_us-east-1_20230710T1220Z_x.json";
        let k = ObjectKey::parse(key).unwrap();
        assert_eq!(
            k.location,
            Location::AwsLogs {
                prefix: None,
                org_id: None
            }
        );
        assert_eq!(k.file.extension, Extension::Json);
        assert_eq!(k.to_string(), key);
    }

    #[test]
    fn parses_digests_including_backfill_and_trail_names_with_underscores() {
        let key = "p/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/01/02/111122223333_CloudTrail-Digest_us-east-1_my_trail_us-west-2_20240102T030405Z_backfill.json.gz";
        let k = ObjectKey::parse(key).unwrap();
        assert_eq!(
            k.file.kind,
            FileKind::Digest {
                trail: "my_trail",
                home_region: "us-west-2",
                backfill: true
            }
        );
        assert_eq!(k.file.time.second, Some(5));
        assert_eq!(k.to_string(), key);
    }

    #[test]
    fn parses_insights_and_files_outside_awslogs() {
        let key = "us-east-1/2024/01/02/1_CloudTrail-Insight_us-east-1_20240102T0300Z_u.json.gz";
        let k = ObjectKey::parse(key).unwrap();
        assert_eq!(
            k.location,
            Location::Elsewhere {
                dir: "us-east-1/2024/01/02/"
            }
        );
        assert!(matches!(k.file.kind, FileKind::Insight { .. }));
        assert_eq!(k.to_string(), key);
        assert_eq!(
            ObjectKey::parse("1_CloudTrail_us-east-1_20240102T0300Z_u.json")
                .unwrap()
                .to_string(),
            "1_CloudTrail_us-east-1_20240102T0300Z_u.json"
        );
    }

    #[test]
    fn classifies_other_keys_with_a_reason() {
        for (key, why) in [
            (
                "AWSLogs/1/CloudTrail/us-east-1/2024/01/02/readme.txt",
                "does not end",
            ),
            (
                "x/1_CloudTrail_us-east-1_20241302T0300Z_u.json.gz",
                "not a YYYYMMDDTHHmmZ",
            ),
            (
                "AWSLogs/1/CloudTrail/us-east-1/2024/01/03/1_CloudTrail_us-east-1_20240102T0300Z_u.json.gz",
                "date",
            ),
            (
                "AWSLogs/2/CloudTrail/us-east-1/2024/01/02/1_CloudTrail_us-east-1_20240102T0300Z_u.json.gz",
                "account",
            ),
            (
                "1_CloudTrail-Digest_us-east-1_t_us-east-1_20240102T0300Z.json.gz",
                "YYYYMMDDTHHMMSSZ",
            ),
            (
                "1_Config_us-east-1_20240102T0300Z_u.json.gz",
                "is not CloudTrail",
            ),
        ] {
            match ObjectKey::classify(key) {
                Classified::Other { reason } => assert!(reason.contains(why), "{key}: {reason}"),
                Classified::Trail(k) => panic!("{key} parsed as {k:?}"),
            }
        }
    }

    #[test]
    fn key_times_order_and_convert_to_unix_seconds() {
        let t = KeyTime::parse("20230710T1220Z", false).unwrap();
        assert_eq!(t.unix_seconds(), 1_688_991_600);
        assert!(KeyTime::parse("20240229T0000Z", false).is_some());
        assert!(KeyTime::parse("20230229T0000Z", false).is_none());
    }

    fn segment() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9.=-]{1,8}"
    }

    prop_compose! {
        fn arb_key()(
            prefix in proptest::option::of(proptest::collection::vec(segment(), 1..4)),
            org in proptest::option::of("o-[a-z0-9]{4,10}"),
            account in "[0-9a-z-]{1,14}",
            region in "[a-z]{2}-[a-z]{3,9}-[0-9]",
            home in "[a-z]{2}-[a-z]{3,9}-[0-9]",
            (year, month, day) in (1990u16..2100, 1u8..=12, 1u8..=28),
            (hour, minute, second) in (0u8..24, 0u8..60, 0u8..60),
            kind in 0..3u8,
            unique in "[A-Za-z0-9]{1,16}",
            trail in "[A-Za-z0-9._-]{1,10}(_[A-Za-z0-9]{1,5})?",
            backfill: bool,
            gz: bool,
            elsewhere in proptest::option::of("[a-z0-9]{1,5}(/[a-z0-9]{1,5}){0,3}"),
        ) -> String {
            let date = KeyDate { year, month, day };
            let time = KeyTime { year, month, day, hour, minute, second: (kind == 2).then_some(second) };
            let kind = match kind {
                0 => FileKind::Log { unique: &unique },
                1 => FileKind::Insight { unique: &unique },
                _ => FileKind::Digest { trail: &trail, home_region: &home, backfill },
            };
            let extension = if gz { Extension::JsonGz } else { Extension::Json };
            let file = FileName { account: &account, region: &region, kind, time, extension };
            match elsewhere {
                Some(dir) => format!("{dir}/{file}"),
                None => {
                    let prefix = prefix.map(|p| p.join("/"));
                    format!("{}{file}", day_prefix(prefix.as_deref(), org.as_deref(), &account, kind.folder(), &region, date))
                }
            }
        }
    }

    proptest! {
        #[test]
        fn formatting_a_parsed_key_gives_the_key_back(key in arb_key()) {
            let parsed = ObjectKey::parse(&key).map_err(|e| TestCaseError::fail(format!("{key}: {e}")))?;
            prop_assert_eq!(parsed.to_string(), key.clone());
            let again = parsed.to_string();
            prop_assert_eq!(ObjectKey::parse(&again).unwrap(), parsed);
        }

        #[test]
        fn arbitrary_keys_never_panic(key in "\\PC{0,120}") {
            let _ = ObjectKey::classify(&key);
        }

        #[test]
        fn arbitrary_slash_heavy_keys_never_panic(key in "[A-Za-z0-9/_.-]{0,120}") {
            if let Classified::Trail(k) = ObjectKey::classify(&key) {
                prop_assert_eq!(k.to_string(), key);
            }
        }
    }
}
