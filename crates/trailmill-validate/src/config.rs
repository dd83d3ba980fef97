//! What to validate: [`ValidateConfig`] and trail ARNs.

use jiff::Timestamp;

use crate::error::Error;

/// Which digests to validate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// One trail (`--trail-arn`), in one region (`--region`, default the ARN's
    /// region), for one account (`--account-id`, default the ARN's account),
    /// exactly as `aws cloudtrail validate-logs` does.
    Trail(TrailArn),
    /// Every organization, account, region and trail found under the prefix
    /// (`--all`), narrowed by `org_id`, `account_id` and `region` when given.
    All,
}

/// A parsed CloudTrail trail ARN: `arn:PARTITION:cloudtrail:REGION:ACCOUNT:trail/NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailArn {
    /// The ARN as given.
    pub arn: String,
    /// `aws`, `aws-cn`, `aws-us-gov`, …
    pub partition: String,
    /// The trail's home region.
    pub region: String,
    /// The account that owns the trail (12 digits).
    pub account: String,
    /// The trail's name (the text after the last `/`).
    pub name: String,
}

impl TrailArn {
    /// Parses and checks an ARN as the CLI does (`arn:.+:cloudtrail:.+:\d{12}:trail/.+`).
    pub fn parse(arn: &str) -> Result<Self, Error> {
        let bad = || Error::arg("--trail-arn", format!("Invalid trail ARN provided: {arn}"));
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6
            || parts[0] != "arn"
            || parts[1].is_empty()
            || parts[2] != "cloudtrail"
            || parts[3].is_empty()
        {
            return Err(bad());
        }
        let account = parts[4];
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let resource = parts[5];
        if !resource.starts_with("trail/") || resource.len() == "trail/".len() {
            return Err(bad());
        }
        let name = arn.rsplit('/').next().unwrap_or_default();
        if name.is_empty() {
            return Err(bad());
        }
        Ok(TrailArn {
            arn: arn.to_string(),
            partition: parts[1].to_string(),
            region: parts[3].to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }

    /// The ARN CloudTrail would give a trail (partition from the region).
    pub fn build(home_region: &str, account: &str, name: &str) -> String {
        format!(
            "arn:{}:cloudtrail:{home_region}:{account}:trail/{name}",
            partition_of(home_region)
        )
    }
}

/// The AWS partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// Everything a validation run needs besides the store and the keys.
///
/// Build it with [`ValidateConfig::trail`] or [`ValidateConfig::all`], then
/// set the optional fields, which mirror the CLI flags.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidateConfig {
    /// One trail or everything (`--trail-arn` / `--all`).
    pub selection: Selection,
    /// `--start-time`: digests ending at or after this time are validated.
    pub start: Timestamp,
    /// `--end-time`: `None` means now.
    pub end: Option<Timestamp>,
    /// `--bucket`: the bucket name the digests record. `None` takes it from
    /// the newest digest (a local mirror answers for any name then).
    pub bucket: Option<String>,
    /// `--s3-prefix`: the trail's key prefix (trail mode), or the prefix to
    /// search under (`--all`), without a trailing `/`.
    pub s3_prefix: Option<String>,
    /// `--org-id`: the organization ID of an organization trail (`o-…`).
    pub org_id: Option<String>,
    /// `--account-id`: the member account of an organization trail, or the
    /// only account to validate with `--all`.
    pub account_id: Option<String>,
    /// `--region`: the region whose digests are validated (trail mode:
    /// default the ARN's region; `--all`: default every region).
    pub region: Option<String>,
    /// `--expect-until`: report a chain whose newest digest ends more than an
    /// hour before this time (a deleted newest digest, a truncated tail).
    pub expect_until: Option<Timestamp>,
    /// Report log files no digest references (default on).
    pub check_unattested: bool,
    /// Log files within this many seconds of the edges of the span the
    /// digests cover are not checked for references (default 600): log file
    /// names carry minutes and delivery times straddle digest boundaries.
    pub unattested_margin_secs: i64,
    /// Tolerance on both edges of a public key's validity window, in seconds
    /// (default 3600): CloudTrail signs a digest shortly after its end time.
    pub key_validity_grace_secs: i64,
    /// The largest uncompressed log file accepted, in bytes (default 16 GiB).
    pub max_log_bytes: u64,
    /// The largest uncompressed digest file accepted, in bytes (default 1 GiB).
    pub max_digest_bytes: u64,
    /// How many log files are hashed in parallel between two in-order
    /// flushes of verdicts (default 512).
    pub batch_size: usize,
}

impl ValidateConfig {
    /// Validates one trail, as `aws cloudtrail validate-logs --trail-arn` does.
    pub fn trail(arn: TrailArn, start: Timestamp) -> Self {
        Self::new(Selection::Trail(arn), start)
    }

    /// Validates every trail found under the prefix (`--all`).
    pub fn all(start: Timestamp) -> Self {
        Self::new(Selection::All, start)
    }

    fn new(selection: Selection, start: Timestamp) -> Self {
        ValidateConfig {
            selection,
            start,
            end: None,
            bucket: None,
            s3_prefix: None,
            org_id: None,
            account_id: None,
            region: None,
            expect_until: None,
            check_unattested: true,
            unattested_margin_secs: 600,
            key_validity_grace_secs: 3600,
            max_log_bytes: 16 << 30,
            max_digest_bytes: 1 << 30,
            batch_size: 512,
        }
    }

    /// The end of the range: [`ValidateConfig::end`] or now.
    pub fn end_or_now(&self) -> Timestamp {
        self.end.unwrap_or_else(Timestamp::now)
    }

    pub(crate) fn check(&self, end: Timestamp) -> Result<(), Error> {
        if self.start > end {
            return Err(Error::arg(
                "--start-time",
                "Invalid time range specified: start-time must occur before end-time",
            ));
        }
        if let Some(p) = &self.s3_prefix
            && (p.is_empty() || p.starts_with('/') || p.ends_with('/') || p.contains("//"))
        {
            return Err(Error::arg(
                "--s3-prefix",
                format!("{p:?} must not be empty or start or end with '/'"),
            ));
        }
        if let Some(o) = &self.org_id
            && !o.starts_with("o-")
        {
            return Err(Error::arg(
                "--org-id",
                format!("{o:?} does not start with o-"),
            ));
        }
        for (name, v) in [
            ("--account-id", &self.account_id),
            ("--region", &self.region),
            ("--bucket", &self.bucket),
        ] {
            if let Some(v) = v
                && (v.is_empty() || v.contains('/'))
            {
                return Err(Error::arg(
                    name,
                    format!("{v:?} must be non-empty and contain no '/'"),
                ));
            }
        }
        if self.batch_size == 0 {
            return Err(Error::arg("batch_size", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arns_like_the_cli() {
        let a = TrailArn::parse("arn:aws:cloudtrail:us-east-1:123456789012:trail/foo").unwrap();
        assert_eq!(
            (
                a.partition.as_str(),
                a.region.as_str(),
                a.account.as_str(),
                a.name.as_str()
            ),
            ("aws", "us-east-1", "123456789012", "foo")
        );
        for bad in [
            "arn:aws:cloudtrail:us-east-1:12345678901:trail/foo",
            "arn:aws:s3:us-east-1:123456789012:trail/foo",
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/",
            "arn:aws:cloudtrail:us-east-1:123456789012:bucket/foo",
            "foo",
        ] {
            let e = TrailArn::parse(bad).unwrap_err();
            assert_eq!(e.reason(), format!("Invalid trail ARN provided: {bad}"));
        }
        assert_eq!(
            TrailArn::build("cn-north-1", "1", "t"),
            "arn:aws-cn:cloudtrail:cn-north-1:1:trail/t"
        );
    }

    #[test]
    fn rejects_inverted_ranges_and_bad_prefixes() {
        let t0 = Timestamp::from_second(100).unwrap();
        let mut c = ValidateConfig::all(t0);
        assert!(c.check(Timestamp::from_second(50).unwrap()).is_err());
        assert!(c.check(t0).is_ok());
        c.s3_prefix = Some("a/".into());
        assert!(c.check(t0).is_err());
    }
}
