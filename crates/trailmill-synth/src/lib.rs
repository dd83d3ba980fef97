//! Deterministic synthetic CloudTrail trails, for tests and benchmarks.
//!
//! [`generate`] writes an S3 bucket root directory (the object with key `K` is
//! the file `OUT/K`) holding what a trail with log file validation delivers:
//!
//! - **Log files** under
//!   `[prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz`:
//!   `{"Records":[…]}`, gzip level 6, with realistic management and data events
//!   (about 1.2 KB each, roughly 7:1 compression). Keys are formatted with
//!   [`trailmill_core::key`], so the generator and the parser agree.
//! - **Digest files**, one per account, region and hour, chained per account
//!   and region, under `…/CloudTrail-Digest/…` with the layout and JSON of the
//!   CloudTrail User Guide, each signed (`SHA256withRSA`) with a
//!   [`SigningKey`]. The signature, hex, is in the sidecar `KEY.sig`, which
//!   stands for S3's `x-amz-meta-signature`.
//! - **`keys.json`** at the root: the output of `aws cloudtrail list-public-keys`
//!   for the signing key, and **`synth-signing-key.der`**: the private key
//!   (PKCS#1 DER), so tests can tamper with a digest and re-sign it with
//!   [`signing_string`] and [`sign_digest`].
//!
//! The AWS CLI's `validate-logs` accepts the result (see `tests/oracle.rs`).
//!
//! Everything derives from [`SynthConfig::seed`]: the same configuration gives
//! byte-identical files. Each file draws from its own ChaCha stream (seed plus
//! file index), so files are generated in parallel with rayon in any order,
//! and every `eventID` in a corpus is distinct by construction. One extra large
//! log file ([`SynthConfig::large_file_mib`]) is streamed through the gzip
//! encoder and the SHA-256 hasher at once, so its size does not bound memory.

mod events;
mod json;
mod signing;
mod time;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use trailmill_core::key::{Extension, FileKind, FileName, Location, ObjectKey};

pub use signing::{KEY_BITS, SigningKey, sign_digest, signing_string, verify_signature};

use events::{Account, FileCtx, FileRng, Scratch};

/// The regions a synthetic trail records, in the order [`SynthConfig::regions`] takes them.
pub const REGIONS: &[&str] = &[
    "us-east-1",
    "eu-west-1",
    "us-west-2",
    "ap-southeast-2",
    "eu-central-1",
    "ap-northeast-1",
    "us-east-2",
    "ca-central-1",
    "sa-east-1",
    "ap-south-1",
    "eu-north-1",
    "us-west-1",
    "eu-west-2",
    "ap-southeast-1",
    "ap-northeast-2",
    "eu-west-3",
];

/// The name of the public key list written at the root of the output.
pub const KEYS_FILE: &str = "keys.json";
/// The name of the private key file (PKCS#1 DER) written at the root of the output.
pub const PRIVATE_KEY_FILE: &str = "synth-signing-key.der";
/// The suffix of the sidecar file that holds a digest's signature (hex).
pub const SIGNATURE_SUFFIX: &str = ".sig";

/// 2024-01-01T00:00:00Z, the default [`SynthConfig::start`].
pub const DEFAULT_START: i64 = 1_704_067_200;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthConfig {
    /// How many accounts log to the bucket; their 12-digit IDs derive from the seed.
    pub accounts: usize,
    /// How many regions, taken in order from [`REGIONS`].
    pub regions: usize,
    /// How many hours of logs, from [`SynthConfig::start`]; one digest per hour
    /// for each account and region.
    pub hours: usize,
    /// Log files per account, region and hour.
    pub logs_per_hour: usize,
    /// Events per log file.
    pub records: usize,
    /// The organization ID (`o-…`) of an organization trail: keys then have
    /// the `AWSLogs/o-…/ACCOUNT/` folder.
    pub org_id: Option<String>,
    /// The trail's S3 key prefix, without leading or trailing `/`; may have
    /// several segments (`a/b/c`).
    pub prefix: Option<String>,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Also write one extra log file of about this many MiB uncompressed, for
    /// the first account, region and hour (listed in that hour's digest).
    /// It is streamed, so memory stays bounded whatever its size.
    pub large_file_mib: Option<u64>,
    /// Unix seconds of the start of the first hour.
    pub start: i64,
    /// The bucket name that digests record.
    pub bucket: String,
    /// The trail's name, as in digest file names and the trail ARN.
    pub trail_name: String,
    /// The trail's home region (in digest names and the ARN); `None` means the
    /// first region.
    pub home_region: Option<String>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            accounts: 2,
            regions: 2,
            hours: 3,
            logs_per_hour: 4,
            records: 100,
            org_id: None,
            prefix: None,
            seed: 1,
            large_file_mib: None,
            start: DEFAULT_START,
            bucket: "trailmill-synth".to_owned(),
            trail_name: "synth-trail".to_owned(),
            home_region: None,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthReport {
    /// Log files written (including the large file).
    pub log_files: usize,
    /// Digest files written (each with its `.sig` sidecar).
    pub digest_files: usize,
    /// Events in all log files.
    pub events: u64,
    /// Total uncompressed size of the log files, in bytes.
    pub uncompressed_bytes: u64,
    /// Total size of the log files as written (gzip), in bytes.
    pub compressed_bytes: u64,
    /// `arn:aws:cloudtrail:HOMEREGION:FIRSTACCOUNT:trail/NAME`.
    pub trail_arn: String,
    /// The bucket name the digests record.
    pub bucket: String,
    /// The trail's S3 key prefix, if any.
    pub prefix: Option<String>,
    /// The organization ID, for an organization trail.
    pub org_id: Option<String>,
    /// The trail's home region.
    pub home_region: String,
    /// The account IDs, in generation order (the first owns the trail).
    pub accounts: Vec<String>,
    /// The regions, in generation order.
    pub regions: Vec<String>,
    /// Unix seconds of the start of the first digest period ([`SynthConfig::start`]).
    pub start: i64,
    /// Unix seconds of the latest digest end time.
    pub end: i64,
    /// The signing key's fingerprint (hex MD5 of its PKCS#1 DER public key).
    pub fingerprint: String,
    /// The key of the large log file, when one was requested.
    pub large_file: Option<String>,
}

/// Why a trail could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The configuration is inconsistent or out of range.
    #[error("invalid synth configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The output directory cannot be used.
    #[error("output {path}: {reason}")]
    Output {
        /// The output directory.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`write`, `create directory`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Generating, encoding or decoding the signing key failed.
    #[error("signing key: {reason}")]
    Key {
        /// What failed.
        reason: String,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SynthError + 'a {
    move |source| SynthError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

// RNG streams: one per purpose, then one per file.
const STREAM_ACCOUNTS: u64 = 0;
const STREAM_FILES: u64 = 16;

fn rng_for(seed: u64, stream: u64) -> FileRng {
    let mut rng = FileRng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

fn check(cfg: &SynthConfig) -> Result<(), SynthError> {
    let bad = |reason: String| Err(SynthError::Config { reason });
    if cfg.accounts == 0 || cfg.accounts > 100_000 {
        return bad(format!(
            "accounts must be 1 to 100000, not {}",
            cfg.accounts
        ));
    }
    if cfg.regions == 0 || cfg.regions > REGIONS.len() {
        return bad(format!(
            "regions must be 1 to {}, not {}",
            REGIONS.len(),
            cfg.regions
        ));
    }
    if cfg.hours == 0 || cfg.logs_per_hour == 0 || cfg.records == 0 {
        return bad("hours, logs_per_hour and records must be at least 1".into());
    }
    if cfg.large_file_mib.is_some_and(|m| m > 1 << 20) {
        // Keeps the large file's record numbers within the 32 bits eventIDs reserve.
        return bad("large_file_mib must be at most 1048576 (1 TiB)".into());
    }
    if cfg.records > u32::MAX as usize {
        return bad(format!("records must be at most {}", u32::MAX));
    }
    let files = [cfg.accounts, cfg.regions, cfg.hours, cfg.logs_per_hour]
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .filter(|&n| n < u32::MAX as usize);
    if files.is_none() {
        return bad("too many log files".into());
    }
    let end = i64::try_from(cfg.hours)
        .ok()
        .and_then(|h| h.checked_mul(3600))
        .and_then(|s| cfg.start.checked_add(s));
    if cfg.start < time::MIN_SECS || end.is_none_or(|e| e > time::MAX_SECS - 2 * 86_400) {
        return bad(format!(
            "start {} and {} hours must lie between 1970 and 9999",
            cfg.start, cfg.hours
        ));
    }
    if let Some(org) = &cfg.org_id
        && !(org.len() > 2
            && org.starts_with("o-")
            && org[2..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    {
        return bad(format!(
            "organization ID {org:?} is not o- followed by lower-case letters and digits"
        ));
    }
    if let Some(p) = &cfg.prefix
        && (p.is_empty() || p.split('/').any(str::is_empty))
    {
        return bad(format!(
            "prefix {p:?} has an empty segment (or a leading or trailing '/')"
        ));
    }
    if cfg.bucket.is_empty() || cfg.bucket.contains('/') {
        return bad(format!(
            "bucket {:?} must be non-empty without '/'",
            cfg.bucket
        ));
    }
    if cfg.trail_name.is_empty() || cfg.trail_name.contains('/') {
        return bad(format!(
            "trail name {:?} must be non-empty without '/'",
            cfg.trail_name
        ));
    }
    if let Some(h) = &cfg.home_region
        && (h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
    {
        return bad(format!("home region {h:?} is not a region name"));
    }
    Ok(())
}

/// Distinct 12-digit account IDs (plus one more, a partner account that
/// appears in cross-account calls).
fn account_ids(seed: u64, n: usize) -> (Vec<String>, String) {
    let mut rng = rng_for(seed, STREAM_ACCOUNTS);
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::with_capacity(n + 1);
    while ids.len() <= n {
        let id: u64 = rng.gen_range(100_000_000_000..1_000_000_000_000);
        if seen.insert(id) {
            ids.push(id.to_string());
        }
    }
    let partner = ids.pop().unwrap_or_default();
    (ids, partner)
}

/// One log file to write.
struct LogPlan {
    index: u64,
    account: usize,
    region: usize,
    hour: usize,
    /// Unix seconds of the file name's time (floored to the minute in the name).
    time: i64,
    window_len: i64,
    /// Records for ordinary files; `None` for the large file.
    records: Option<usize>,
    large_bytes: u64,
}

/// A written log file, as a digest lists it.
struct LogOut {
    account: usize,
    region: usize,
    hour: usize,
    key: String,
    sha256: [u8; 32],
    oldest: i64,
    newest: i64,
    events: u64,
    uncompressed: u64,
    compressed: u64,
}

/// Everything the writers share.
struct Run<'a> {
    out: &'a Path,
    cfg: &'a SynthConfig,
    accounts: Vec<Account>,
    regions: Vec<&'static str>,
    home_region: String,
    event_key: u64,
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Run<'_> {
    fn object_key(&self, account: usize, region: usize, kind: FileKind<'_>, secs: i64) -> String {
        let file = FileName {
            account: &self.accounts[account].id,
            region: self.regions[region],
            kind,
            time: time::key_time(secs, kind.is_digest()),
            extension: Extension::JsonGz,
        };
        let location = Location::AwsLogs {
            prefix: self.cfg.prefix.as_deref(),
            org_id: self.cfg.org_id.as_deref(),
        };
        ObjectKey { location, file }.to_string()
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, SynthError> {
        let path = self.out.join(key);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        Ok(path)
    }

    /// Writes one log file (in memory for ordinary files, streamed for the
    /// large one) and returns what its digest lists.
    fn write_log(&self, plan: &LogPlan) -> Result<LogOut, SynthError> {
        let mut rng = rng_for(self.cfg.seed, STREAM_FILES + plan.index);
        let unique = events::unique_suffix(&mut rng);
        let key = self.object_key(
            plan.account,
            plan.region,
            FileKind::Log { unique: &unique },
            plan.time,
        );
        let path = self.path_of(&key)?;
        let ctx = FileCtx {
            account: &self.accounts[plan.account],
            region: self.regions[plan.region],
            window_start: plan.time,
            window_len: plan.window_len,
        };
        let mut scratch = Scratch::default();
        let mut hasher = Sha256::new();
        let (mut oldest, mut newest) = (i64::MAX, i64::MIN);
        let mut events = 0u64;
        let mut uncompressed = 0u64;
        let mut record = |buf: &mut Vec<u8>, rng: &mut FileRng, n: u64| {
            if n > 0 {
                buf.push(b',');
            }
            let unique = events::mix64((plan.index << 32 | n) ^ self.event_key);
            let t = events::write_record(buf, &ctx, rng, unique, &mut scratch);
            oldest = oldest.min(t);
            newest = newest.max(t);
        };
        let compressed;
        match plan.records {
            Some(records) => {
                let mut body = Vec::with_capacity(records * 1400 + 16);
                body.extend_from_slice(b"{\"Records\":[");
                for n in 0..records as u64 {
                    record(&mut body, &mut rng, n);
                }
                body.extend_from_slice(b"]}");
                events = records as u64;
                uncompressed = body.len() as u64;
                hasher.update(&body);
                let mut gz =
                    GzEncoder::new(Vec::with_capacity(body.len() / 5), Compression::new(6));
                let gz = gz
                    .write_all(&body)
                    .and_then(|()| gz.finish())
                    .map_err(io_err("compress", &path))?;
                compressed = gz.len() as u64;
                fs::write(&path, gz).map_err(io_err("write", &path))?;
            }
            None => {
                let file = File::create(&path).map_err(io_err("create", &path))?;
                let sink = Counting {
                    inner: BufWriter::with_capacity(1 << 20, file),
                    written: 0,
                };
                let mut gz = GzEncoder::new(sink, Compression::new(6));
                let mut buf = Vec::with_capacity((1 << 20) + 64 * 1024);
                buf.extend_from_slice(b"{\"Records\":[");
                loop {
                    record(&mut buf, &mut rng, events);
                    events += 1;
                    let done = uncompressed + buf.len() as u64 + 2 >= plan.large_bytes;
                    if done {
                        buf.extend_from_slice(b"]}");
                    }
                    if done || buf.len() >= 1 << 20 {
                        hasher.update(&buf);
                        gz.write_all(&buf).map_err(io_err("write", &path))?;
                        uncompressed += buf.len() as u64;
                        buf.clear();
                    }
                    if done {
                        break;
                    }
                }
                let mut sink = gz.finish().map_err(io_err("write", &path))?;
                sink.flush().map_err(io_err("write", &path))?;
                compressed = sink.written;
            }
        }
        Ok(LogOut {
            account: plan.account,
            region: plan.region,
            hour: plan.hour,
            key,
            sha256: hasher.finalize().into(),
            oldest,
            newest,
            events,
            uncompressed,
            compressed,
        })
    }

    /// Writes the digest chain of one account and region.
    fn write_chain(
        &self,
        account: usize,
        region: usize,
        logs: &[&LogOut],
        key: &SigningKey,
        fingerprint: &str,
    ) -> Result<(usize, i64), SynthError> {
        let cfg = self.cfg;
        // Digests end a few seconds after the hour, the same offset all along the chain.
        let chain = (account * self.regions.len() + region) as u64;
        let offset = 5 + (events::mix64(cfg.seed ^ chain.rotate_left(32) ^ 0xd1e5) % 50) as i64;
        let mut previous: Option<(String, String, String)> = None; // key, hex SHA-256, signature
        let mut start = cfg.start;
        let mut end = cfg.start;
        for hour in 0..cfg.hours {
            end = cfg.start + (hour as i64 + 1) * 3600 + offset;
            let mut listed: Vec<&LogOut> =
                logs.iter().copied().filter(|l| l.hour == hour).collect();
            listed.sort_by(|a, b| a.key.cmp(&b.key));
            let digest_key = self.object_key(
                account,
                region,
                FileKind::Digest {
                    trail: &cfg.trail_name,
                    home_region: &self.home_region,
                    backfill: false,
                },
                end,
            );
            let end_text = time::iso(end);
            let doc = DigestDoc {
                aws_account_id: &self.accounts[account].id,
                digest_start_time: time::iso(start),
                digest_end_time: end_text.clone(),
                digest_s3_bucket: &cfg.bucket,
                digest_s3_object: &digest_key,
                digest_public_key_fingerprint: fingerprint,
                digest_signature_algorithm: "SHA256withRSA",
                newest_event_time: listed.iter().map(|l| l.newest).max().map(time::iso),
                oldest_event_time: listed.iter().map(|l| l.oldest).min().map(time::iso),
                previous_digest_s3_bucket: previous.as_ref().map(|_| cfg.bucket.as_str()),
                previous_digest_s3_object: previous.as_ref().map(|p| p.0.as_str()),
                previous_digest_hash_value: previous.as_ref().map(|p| p.1.as_str()),
                previous_digest_hash_algorithm: previous.as_ref().map(|_| "SHA-256"),
                previous_digest_signature: previous.as_ref().map(|p| p.2.as_str()),
                log_files: listed
                    .iter()
                    .map(|l| DigestLog {
                        s3_bucket: &cfg.bucket,
                        s3_object: &l.key,
                        hash_value: hex::encode(l.sha256),
                        hash_algorithm: "SHA-256",
                        newest_event_time: time::iso(l.newest),
                        oldest_event_time: time::iso(l.oldest),
                    })
                    .collect(),
            };
            let path = self.path_of(&digest_key)?;
            let body = serde_json::to_vec(&doc).map_err(|e| SynthError::Output {
                path: path.clone(),
                reason: format!("cannot encode digest: {e}"),
            })?;
            let to_sign = signing_string(
                &end_text,
                &cfg.bucket,
                &digest_key,
                &body,
                previous.as_ref().map(|p| p.2.as_str()),
            );
            let signature = sign_digest(key, &to_sign);
            let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 2), Compression::new(6));
            let gz = gz
                .write_all(&body)
                .and_then(|()| gz.finish())
                .map_err(io_err("compress", &path))?;
            fs::write(&path, gz).map_err(io_err("write", &path))?;
            let sig_path = self.out.join(format!("{digest_key}{SIGNATURE_SUFFIX}"));
            fs::write(&sig_path, &signature).map_err(io_err("write", &sig_path))?;
            previous = Some((digest_key, hex::encode(Sha256::digest(&body)), signature));
            start = end;
        }
        Ok((cfg.hours, end))
    }
}

/// A digest file's JSON, in the CloudTrail User Guide's field order.
#[derive(Serialize)]
struct DigestDoc<'a> {
    #[serde(rename = "awsAccountId")]
    aws_account_id: &'a str,
    #[serde(rename = "digestStartTime")]
    digest_start_time: String,
    #[serde(rename = "digestEndTime")]
    digest_end_time: String,
    #[serde(rename = "digestS3Bucket")]
    digest_s3_bucket: &'a str,
    #[serde(rename = "digestS3Object")]
    digest_s3_object: &'a str,
    #[serde(rename = "digestPublicKeyFingerprint")]
    digest_public_key_fingerprint: &'a str,
    #[serde(rename = "digestSignatureAlgorithm")]
    digest_signature_algorithm: &'a str,
    #[serde(rename = "newestEventTime")]
    newest_event_time: Option<String>,
    #[serde(rename = "oldestEventTime")]
    oldest_event_time: Option<String>,
    #[serde(rename = "previousDigestS3Bucket")]
    previous_digest_s3_bucket: Option<&'a str>,
    #[serde(rename = "previousDigestS3Object")]
    previous_digest_s3_object: Option<&'a str>,
    #[serde(rename = "previousDigestHashValue")]
    previous_digest_hash_value: Option<&'a str>,
    #[serde(rename = "previousDigestHashAlgorithm")]
    previous_digest_hash_algorithm: Option<&'a str>,
    #[serde(rename = "previousDigestSignature")]
    previous_digest_signature: Option<&'a str>,
    #[serde(rename = "logFiles")]
    log_files: Vec<DigestLog<'a>>,
}

/// One `logFiles` entry of a digest.
#[derive(Serialize)]
struct DigestLog<'a> {
    #[serde(rename = "s3Bucket")]
    s3_bucket: &'a str,
    #[serde(rename = "s3Object")]
    s3_object: &'a str,
    #[serde(rename = "hashValue")]
    hash_value: String,
    #[serde(rename = "hashAlgorithm")]
    hash_algorithm: &'a str,
    #[serde(rename = "newestEventTime")]
    newest_event_time: String,
    #[serde(rename = "oldestEventTime")]
    oldest_event_time: String,
}

/// Writes the trail `cfg` describes into the bucket root directory `out`.
///
/// `out` is created if needed and must be empty: files of an earlier run with
/// another configuration would otherwise mix with this one. Log files are
/// written in parallel (rayon), then the digest chains, `keys.json` and
/// `synth-signing-key.der`. The public key's validity runs from a day before
/// [`SynthConfig::start`] to 30 days after the last digest.
pub fn generate(out: &Path, cfg: &SynthConfig) -> Result<SynthReport, SynthError> {
    check(cfg)?;
    fs::create_dir_all(out).map_err(io_err("create directory", out))?;
    if fs::read_dir(out)
        .map_err(io_err("read directory", out))?
        .next()
        .is_some()
    {
        return Err(SynthError::Output {
            path: out.to_owned(),
            reason: "directory is not empty".into(),
        });
    }

    let (ids, partner) = account_ids(cfg.seed, cfg.accounts);
    let mut cast_rng = rng_for(cfg.seed, STREAM_ACCOUNTS + 1);
    let accounts: Vec<Account> = ids
        .iter()
        .map(|id| Account::new(id.clone(), partner.clone(), &mut cast_rng))
        .collect();
    let regions: Vec<&'static str> = REGIONS[..cfg.regions].to_vec();
    let home_region = cfg
        .home_region
        .clone()
        .unwrap_or_else(|| regions[0].to_owned());
    let run = Run {
        out,
        cfg,
        accounts,
        regions,
        home_region,
        event_key: events::mix64(cfg.seed ^ 0x5eed_e7e1),
    };

    let lph = cfg.logs_per_hour as i64;
    let mut plans =
        Vec::with_capacity(cfg.accounts * cfg.regions * cfg.hours * cfg.logs_per_hour + 1);
    let ordinary = (cfg.accounts * cfg.regions * cfg.hours * cfg.logs_per_hour) as u64;
    if let Some(mib) = cfg.large_file_mib {
        // First, so that the longest task starts at once.
        let mut rng = rng_for(cfg.seed, STREAM_ACCOUNTS + 2);
        let time = cfg.start + rng.gen_range(0..55) * 60;
        plans.push(LogPlan {
            index: ordinary,
            account: 0,
            region: 0,
            hour: 0,
            time,
            window_len: 300,
            records: None,
            large_bytes: mib.saturating_mul(1 << 20).max(16),
        });
    }
    let mut index = 0;
    for account in 0..cfg.accounts {
        for region in 0..cfg.regions {
            for hour in 0..cfg.hours {
                let hour_start = cfg.start + hour as i64 * 3600;
                for j in 0..lph {
                    let time = hour_start + j * 3600 / lph;
                    plans.push(LogPlan {
                        index,
                        account,
                        region,
                        hour,
                        time,
                        window_len: (hour_start + 3600 - time).clamp(1, 300),
                        records: Some(cfg.records),
                        large_bytes: 0,
                    });
                    index += 1;
                }
            }
        }
    }

    let (key, logs) = rayon::join(
        || SigningKey::generate(cfg.seed),
        || {
            plans
                .par_iter()
                .with_max_len(1)
                .map(|p| run.write_log(p))
                .collect::<Result<Vec<_>, _>>()
        },
    );
    let (key, logs) = (key?, logs?);
    let fingerprint = key.fingerprint();

    let mut by_chain: Vec<Vec<&LogOut>> = vec![Vec::new(); cfg.accounts * cfg.regions];
    for l in &logs {
        by_chain[l.account * cfg.regions + l.region].push(l);
    }
    let chains = by_chain
        .par_iter()
        .enumerate()
        .map(|(i, chain)| {
            run.write_chain(i / cfg.regions, i % cfg.regions, chain, &key, &fingerprint)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let end = chains.iter().map(|c| c.1).max().unwrap_or(cfg.start);

    let keys_path = out.join(KEYS_FILE);
    let keys = signing::keys_json(&key, cfg.start - 86_400, end + 30 * 86_400).map_err(|e| {
        SynthError::Output {
            path: keys_path.clone(),
            reason: format!("cannot encode: {e}"),
        }
    })?;
    fs::write(&keys_path, keys).map_err(io_err("write", &keys_path))?;
    let der_path = out.join(PRIVATE_KEY_FILE);
    fs::write(&der_path, key.to_pkcs1_der()).map_err(io_err("write", &der_path))?;

    let first_account = run.accounts[0].id.clone();
    Ok(SynthReport {
        log_files: logs.len(),
        digest_files: chains.iter().map(|c| c.0).sum(),
        events: logs.iter().map(|l| l.events).sum(),
        uncompressed_bytes: logs.iter().map(|l| l.uncompressed).sum(),
        compressed_bytes: logs.iter().map(|l| l.compressed).sum(),
        trail_arn: format!(
            "arn:aws:cloudtrail:{}:{first_account}:trail/{}",
            run.home_region, cfg.trail_name
        ),
        bucket: cfg.bucket.clone(),
        prefix: cfg.prefix.clone(),
        org_id: cfg.org_id.clone(),
        home_region: run.home_region.clone(),
        accounts: run.accounts.iter().map(|a| a.id.clone()).collect(),
        regions: run.regions.iter().map(|r| (*r).to_owned()).collect(),
        start: cfg.start,
        end,
        fingerprint,
        // The large file is planned first, and results keep the plan order.
        large_file: cfg.large_file_mib.and(logs.first().map(|l| l.key.clone())),
    })
}

#[cfg(test)]
mod tests;
