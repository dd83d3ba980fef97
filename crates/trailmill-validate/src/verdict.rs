//! Verdicts, the events that carry them, and the per-trail summaries.

use std::sync::Arc;

use jiff::Timestamp;

use crate::time::display_time;

/// What a verdict is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A digest file.
    Digest,
    /// A `_backfill` digest file.
    BackfillDigest,
    /// A log file.
    Log,
    /// A period between two chains of regular digests (a gap).
    Period,
    /// A period between two chains of backfill digests.
    BackfillPeriod,
    /// A whole chain (tail truncation).
    Chain,
}

impl Subject {
    /// `digest`, `backfill_digest`, `log`, `period`, `backfill_period` or `chain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Digest => "digest",
            Subject::BackfillDigest => "backfill_digest",
            Subject::Log => "log",
            Subject::Period => "period",
            Subject::BackfillPeriod => "backfill_period",
            Subject::Chain => "chain",
        }
    }

    /// True for regular and backfill digests.
    pub fn is_digest(self) -> bool {
        matches!(self, Subject::Digest | Subject::BackfillDigest)
    }

    /// True for anything backfill.
    pub fn is_backfill(self) -> bool {
        matches!(self, Subject::BackfillDigest | Subject::BackfillPeriod)
    }
}

/// Why a file is invalid.
///
/// [`Problem::aws_cli_text`] gives the text after `INVALID: ` in the AWS CLI's
/// format; for problems only trailmill detects ([`Problem::cli_detects`] is
/// false) the text is trailmill's own, in the same style.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The object does not exist (or its bucket is not mapped).
    NotFound {
        /// Why, when more is known than "no such key".
        detail: Option<String>,
    },
    /// The key would escape the local mirror's root; it was not read.
    UnsafeKey {
        /// What is wrong with the key.
        reason: String,
    },
    /// The object exists but could not be read.
    ReadError {
        /// The error.
        message: String,
    },
    /// Not gzip, not JSON, a required field missing, or a field of the wrong type.
    InvalidFormat {
        /// What exactly.
        detail: String,
    },
    /// The digest's `digestS3Bucket`/`digestS3Object` are not where it was found.
    Moved,
    /// No public key has the digest's fingerprint.
    PublicKeyNotFound {
        /// The trail's home region, as the CLI names it.
        region: String,
        /// The digest's `digestPublicKeyFingerprint`.
        fingerprint: String,
    },
    /// The public key's bytes are not an RSA public key.
    KeyUnloadable {
        /// The key's fingerprint.
        fingerprint: String,
    },
    /// The signature does not verify.
    SignatureFailed,
    /// A valid PKCS#1 v1.5 signature, but with a hash other than SHA-256.
    /// The AWS CLI accepts it; trailmill does not.
    SignatureNotSha256 {
        /// The hash used (`SHA-1`, `SHA-512`, …).
        hash: String,
    },
    /// Offline, without a sidecar signature and without a verified newer
    /// digest linking to it, the digest's signature is unknown.
    SignatureNotAvailableOffline,
    /// Any other error the CLI reports with its exception text (a signature
    /// that is not hex, a time that does not parse…), with that text.
    Cli {
        /// The text the CLI prints after `INVALID: `.
        message: String,
    },
    /// The listed fingerprint is not the MD5 of the key it lists.
    FingerprintMismatch {
        /// The listed fingerprint.
        fingerprint: String,
        /// The MD5 of the key's DER bytes.
        actual: String,
    },
    /// The key's validity window does not cover the digest.
    KeyNotValid {
        /// The key's fingerprint.
        fingerprint: String,
    },
    /// An algorithm field other than `SHA256withRSA` / `SHA-256`.
    UnsupportedAlgorithm {
        /// The field or metadata name.
        field: String,
        /// Its value.
        value: String,
    },
    /// Bytes follow the end of the gzip stream. For log files the CLI reports
    /// it too; for digests only trailmill does.
    TrailingData,
    /// The digest's `previousDigestHashValue` is not the SHA-256 of the
    /// previous digest, although both signatures verify.
    PreviousHashMismatch {
        /// `s3://bucket/key` of the previous digest.
        previous: String,
    },
    /// The digest's `previousDigestSignature` is not the previous digest's
    /// signature, although both signatures verify.
    PreviousSignatureMismatch {
        /// `s3://bucket/key` of the previous digest.
        previous: String,
    },
    /// A digest inferred to be missing: the chain skips more time than one
    /// missing digest explains. The key is estimated.
    MissingInferred {
        /// The estimated end time of the missing digest.
        estimated_end: Timestamp,
        /// The older digest found after the gap.
        after: String,
        /// The newer, missing digest the chain pointed to.
        before: String,
    },
    /// The log file's SHA-256 differs from the digest's `hashValue`.
    HashMismatch,
    /// The log file's gzip stream ends early (the CLI hashes what it got and
    /// reports a hash mismatch).
    Truncated,
    /// The log file inflates to more than the configured limit.
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A log file under the validated prefixes that no digest lists.
    Unattested,
    /// The chain's newest digest ends before `--expect-until` minus one hour.
    ChainEndsEarly {
        /// The newest digest's end time, if any digest was found.
        newest_end: Option<Timestamp>,
        /// The `--expect-until` time.
        expected_until: Timestamp,
    },
}

impl Problem {
    /// A stable snake_case name, used in JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::NotFound { .. } => "not_found",
            Problem::UnsafeKey { .. } => "unsafe_key",
            Problem::ReadError { .. } => "read_error",
            Problem::InvalidFormat { .. } => "invalid_format",
            Problem::Moved => "moved",
            Problem::PublicKeyNotFound { .. } => "public_key_not_found",
            Problem::KeyUnloadable { .. } => "key_unloadable",
            Problem::SignatureFailed => "signature_failed",
            Problem::SignatureNotSha256 { .. } => "signature_not_sha256",
            Problem::SignatureNotAvailableOffline => "signature_not_available_offline",
            Problem::Cli { .. } => "error",
            Problem::FingerprintMismatch { .. } => "fingerprint_mismatch",
            Problem::KeyNotValid { .. } => "key_not_valid",
            Problem::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Problem::TrailingData => "trailing_data",
            Problem::PreviousHashMismatch { .. } => "previous_hash_mismatch",
            Problem::PreviousSignatureMismatch { .. } => "previous_signature_mismatch",
            Problem::MissingInferred { .. } => "missing_inferred",
            Problem::HashMismatch => "hash_mismatch",
            Problem::Truncated => "truncated",
            Problem::TooLarge { .. } => "too_large",
            Problem::Unattested => "unattested",
            Problem::ChainEndsEarly { .. } => "chain_ends_early",
        }
    }

    /// The text after `INVALID: ` in the AWS CLI's output (for trailmill-only
    /// problems, trailmill's text in the same style).
    pub fn aws_cli_text(&self) -> String {
        match self {
            Problem::NotFound { .. } => "not found".into(),
            Problem::UnsafeKey { reason } => format!("not found (unsafe key: {reason})"),
            Problem::ReadError { message } => format!("could not be read: {message}"),
            Problem::InvalidFormat { .. } => "invalid format".into(),
            Problem::Moved => "has been moved from its original location".into(),
            Problem::PublicKeyNotFound {
                region,
                fingerprint,
            } => {
                format!("public key not found in region {region} for fingerprint {fingerprint}")
            }
            Problem::KeyUnloadable { fingerprint } => {
                format!("Unable to load PKCS #1 key with fingerprint {fingerprint}")
            }
            Problem::SignatureFailed => "signature verification failed".into(),
            Problem::SignatureNotSha256 { hash } => {
                format!(
                    "signature verification failed (signed with {hash}; only SHA-256 is accepted)"
                )
            }
            Problem::SignatureNotAvailableOffline => "signature not available offline".into(),
            Problem::Cli { message } => message.clone(),
            Problem::FingerprintMismatch {
                fingerprint,
                actual,
            } => {
                format!(
                    "public key listed with fingerprint {fingerprint} has MD5 fingerprint {actual}"
                )
            }
            Problem::KeyNotValid { fingerprint } => {
                format!(
                    "public key with fingerprint {fingerprint} was not valid when the digest was signed"
                )
            }
            Problem::UnsupportedAlgorithm { field, value } => {
                format!("unsupported {field} {value}")
            }
            Problem::TrailingData => "unexpected data after end of compressed stream".into(),
            Problem::PreviousHashMismatch { previous } => {
                format!("previous digest hash value does not match {previous}")
            }
            Problem::PreviousSignatureMismatch { previous } => {
                format!("previous digest signature does not match {previous}")
            }
            Problem::MissingInferred {
                estimated_end,
                after,
                before,
            } => format!(
                "not found (inferred: a digest ending about {} is missing between {after} and {before})",
                display_time(*estimated_end)
            ),
            Problem::HashMismatch | Problem::Truncated => "hash value doesn't match".into(),
            Problem::TooLarge { limit } => {
                format!("invalid format (uncompressed size exceeds {limit} bytes)")
            }
            Problem::Unattested => "not referenced by any digest file".into(),
            Problem::ChainEndsEarly {
                newest_end,
                expected_until,
            } => match newest_end {
                Some(t) => format!(
                    "newest digest ends at {}, but digests are expected until {}",
                    display_time(*t),
                    display_time(*expected_until)
                ),
                None => format!(
                    "no digest found, but digests are expected until {}",
                    display_time(*expected_until)
                ),
            },
        }
    }

    /// A longer explanation for human and JSON output (includes details the
    /// CLI text leaves out).
    pub fn describe(&self) -> String {
        match self {
            Problem::NotFound { detail: Some(d) } => format!("not found ({d})"),
            Problem::InvalidFormat { detail } => format!("invalid format: {detail}"),
            Problem::Truncated => "gzip stream ends early".into(),
            Problem::TrailingData => "unexpected data after the end of the gzip stream".into(),
            other => other.aws_cli_text(),
        }
    }

    /// True when `aws cloudtrail validate-logs` reports this problem too (for
    /// the same file, with the same text).
    pub fn cli_detects(&self) -> bool {
        matches!(
            self,
            Problem::NotFound { .. }
                | Problem::InvalidFormat { .. }
                | Problem::Moved
                | Problem::PublicKeyNotFound { .. }
                | Problem::KeyUnloadable { .. }
                | Problem::SignatureFailed
                | Problem::Cli { .. }
                | Problem::HashMismatch
                | Problem::Truncated
        )
    }
}

/// The outcome for one file or period.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// The file is valid.
    Valid,
    /// The file is invalid, for this reason.
    Invalid(Problem),
    /// No log files were delivered in this period (a gap between chains; not
    /// an error, as in the CLI).
    Gap,
}

/// A verdict on one file (or period, or chain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The index of the trail in the run ([`TrailInfo::index`]).
    pub trail: usize,
    /// What kind of thing the verdict is about.
    pub subject: Subject,
    /// The bucket (empty for periods).
    pub bucket: String,
    /// The key (empty for periods; estimated for inferred digests).
    pub key: String,
    /// Valid, invalid (and why), or a gap.
    pub status: Status,
    /// For digests that parsed: `digestStartTime`..`digestEndTime`. For gaps:
    /// the period without digests.
    pub period: Option<(Timestamp, Timestamp)>,
    /// For log files listed by a digest: the `hashValue` (hex SHA-256 of the
    /// uncompressed bytes) that digest attests. With a valid status, the digest's
    /// signature verified and the file had this hash when it was read.
    pub attested_sha256: Option<String>,
}

impl Verdict {
    /// `s3://bucket/key`.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// True when valid.
    pub fn is_valid(&self) -> bool {
        self.status == Status::Valid
    }

    /// The problem, when invalid.
    pub fn problem(&self) -> Option<&Problem> {
        match &self.status {
            Status::Invalid(p) => Some(p),
            _ => None,
        }
    }
}

/// The trail (one chain of digests: account, region, trail name) a part of
/// the run validates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailInfo {
    /// Its index in the run, as in [`Verdict::trail`].
    pub index: usize,
    /// The trail ARN (as given, or built from the digest keys with `--all`).
    pub arn: String,
    /// The bucket the digests are in.
    pub bucket: String,
    /// The S3 key prefix, if any.
    pub prefix: Option<String>,
    /// The organization ID, for an organization trail.
    pub org_id: Option<String>,
    /// The account whose digests are validated.
    pub account: String,
    /// The region whose digests are validated.
    pub region: String,
    /// The trail's home region.
    pub home_region: String,
    /// The trail's name.
    pub trail_name: String,
    /// The requested start.
    pub start: Timestamp,
    /// The requested end.
    pub end: Timestamp,
}

/// Counts for one trail, as the CLI's summary shows them, plus trailmill's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrailSummary {
    /// Valid regular digests.
    pub valid_digests: u64,
    /// Invalid regular digests (including inferred missing ones).
    pub invalid_digests: u64,
    /// Valid backfill digests.
    pub valid_backfill_digests: u64,
    /// Invalid backfill digests.
    pub invalid_backfill_digests: u64,
    /// Valid log files.
    pub valid_logs: u64,
    /// Invalid log files (not counting unattested ones).
    pub invalid_logs: u64,
    /// Log files no digest references.
    pub unattested_logs: u64,
    /// Gaps between chains.
    pub gaps: u64,
    /// Chain problems (`--expect-until`).
    pub chain_problems: u64,
    /// The span the valid digests cover, clamped to the requested range (the
    /// CLI's "Results found for").
    pub found: Option<(Timestamp, Timestamp)>,
}

impl TrailSummary {
    /// True when nothing is invalid.
    pub fn is_valid(&self) -> bool {
        self.invalid_digests == 0
            && self.invalid_backfill_digests == 0
            && self.invalid_logs == 0
            && self.unattested_logs == 0
            && self.chain_problems == 0
    }

    /// True when no digest at all was seen (the CLI's "No digests found").
    pub fn no_digests(&self) -> bool {
        self.valid_digests
            + self.invalid_digests
            + self.valid_backfill_digests
            + self.invalid_backfill_digests
            == 0
    }

    /// Adds a verdict, clamping found times to `start..end` as the CLI does.
    pub fn record(&mut self, v: &Verdict, start: Timestamp, end: Timestamp) {
        let valid = v.is_valid();
        match (&v.status, v.subject) {
            (Status::Gap, _) => self.gaps += 1,
            (_, Subject::Digest) if valid => self.valid_digests += 1,
            (_, Subject::Digest) => self.invalid_digests += 1,
            (_, Subject::BackfillDigest) if valid => self.valid_backfill_digests += 1,
            (_, Subject::BackfillDigest) => self.invalid_backfill_digests += 1,
            (_, Subject::Log) if valid => self.valid_logs += 1,
            (Status::Invalid(Problem::Unattested), Subject::Log) => self.unattested_logs += 1,
            (_, Subject::Log) => self.invalid_logs += 1,
            (_, Subject::Chain) => self.chain_problems += 1,
            (_, Subject::Period | Subject::BackfillPeriod) => {}
        }
        if valid
            && v.subject.is_digest()
            && let Some((s, e)) = v.period
        {
            let s = s.max(start);
            let e = e.min(end);
            self.found = Some(match self.found {
                None => (s, e),
                Some((fs, fe)) => (fs.min(s), fe.max(e)),
            });
        }
    }
}

/// What [`validate`](crate::validate) reports as it goes, in the order the
/// AWS CLI would print it: each trail's start, its verdicts, its end.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Sent first: how much work was found (for a progress bar).
    Planned {
        /// Trails (account, region and trail name) to validate.
        trails: usize,
        /// Digest files listed in the range (regular and backfill).
        digests: usize,
    },
    /// A trail's validation starts.
    TrailStarted(Arc<TrailInfo>),
    /// A verdict.
    Verdict(Verdict),
    /// A trail's validation is complete.
    TrailFinished {
        /// The trail.
        trail: Arc<TrailInfo>,
        /// Its counts.
        summary: TrailSummary,
    },
}

/// The outcome of a run: each trail with its summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The trails, in output order, with their summaries.
    pub trails: Vec<(Arc<TrailInfo>, TrailSummary)>,
}

impl Report {
    /// True when every trail is valid.
    pub fn is_valid(&self) -> bool {
        self.trails.iter().all(|(_, s)| s.is_valid())
    }

    /// The CLI's exit code: 0 when everything is valid, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.is_valid() { 0 } else { 1 }
    }

    /// The counts summed over all trails (`found` spans them all).
    pub fn totals(&self) -> TrailSummary {
        let mut t = TrailSummary::default();
        for (_, s) in &self.trails {
            t.valid_digests += s.valid_digests;
            t.invalid_digests += s.invalid_digests;
            t.valid_backfill_digests += s.valid_backfill_digests;
            t.invalid_backfill_digests += s.invalid_backfill_digests;
            t.valid_logs += s.valid_logs;
            t.invalid_logs += s.invalid_logs;
            t.unattested_logs += s.unattested_logs;
            t.gaps += s.gaps;
            t.chain_problems += s.chain_problems;
            if let Some((a, b)) = s.found {
                t.found = Some(match t.found {
                    None => (a, b),
                    Some((x, y)) => (x.min(a), y.max(b)),
                });
            }
        }
        t
    }
}
