//! CloudTrail log file integrity validation: `trailmill validate`.
//!
//! This crate proves that no CloudTrail log file or digest file was changed,
//! deleted or forged, the way `aws cloudtrail validate-logs` does, and
//! stricter. It does no network I/O and depends on neither AWS, tokio nor
//! clap: objects come through the [`ObjectStore`] trait, implemented today by
//! [`LocalMirror`] (a bucket copied to a directory) and by `trailmill_aws::S3Store`.
//!
//! # How the pieces fit
//!
//! - A [`ValidateConfig`] says what to validate: one trail ([`TrailArn`],
//!   [`Selection::Trail`]) or everything under a prefix ([`Selection::All`]),
//!   a time range, and the CLI's optional flags.
//! - [`PublicKeys`] holds CloudTrail's public keys (the output of
//!   `aws cloudtrail list-public-keys`), by fingerprint.
//! - [`validate`] plans the run (listing digest keys, discovering trails
//!   with `--all`), walks each digest chain newest to oldest exactly as the
//!   CLI does, verifies each digest (model:
//!   [`Digest`], signed text: [`signing_string`], signature:
//!   [`verify_sha256`]), hashes the log files each valid digest lists in
//!   parallel, and reports every finding as a [`Verdict`] inside an [`Event`]
//!   stream, in the order the CLI would print them. It returns a [`Report`]
//!   with one [`TrailSummary`] per trail; [`Report::exit_code`] is the CLI's.
//! - A [`Formatter`] turns events into text: [`AwsCliFormatter`] (the CLI's
//!   output byte for byte), [`JsonFormatter`] (JSON Lines) or
//!   [`HumanFormatter`]. [`run`] wires [`validate`] to a formatter, and
//!   [`run_validate`] goes from the command line's strings ([`ValidateArgs`])
//!   to the exit code's [`Report`], so the CLI command is a thin wrapper.
//! - [`HtmlReport`] turns events into an auditor's page (`--report
//!   FILE.html`): a summary described by [`ReportMeta`], a timeline per chain
//!   (a day per cell, its hours on a click, coloured by status), and every
//!   finding, self-contained and small for a year of a large organization.
//!
//! # Beyond the AWS CLI
//!
//! Verdicts the CLI never gives are marked by [`Problem::cli_detects`] being
//! false: a broken `previousDigestHashValue`/`previousDigestSignature` link
//! between two verified digests, each of several consecutive deleted digests
//! ([`Problem::MissingInferred`]), a chain that ends early
//! ([`ValidateConfig::expect_until`]), log files no digest references
//! ([`Problem::Unattested`]), signatures with a hash other than SHA-256,
//! keys whose fingerprint or validity window does not match, bytes after a
//! digest's gzip stream, and, offline, digests whose signature is not
//! available ([`Problem::SignatureNotAvailableOffline`]).
//!
//! # Example
//!
//! ```no_run
//! use trailmill_validate::*;
//!
//! let store = LocalMirror::new("/data/bucket")?.with_bucket("my-bucket");
//! let keys = PublicKeys::load("/data/keys.json".as_ref())?;
//! let arn = TrailArn::parse("arn:aws:cloudtrail:us-east-1:123456789012:trail/main")?;
//! let mut cfg = ValidateConfig::trail(arn, parse_time("2024-01-01T00:00:00Z")?);
//! cfg.end = Some(parse_time("2024-01-02T00:00:00Z")?);
//! cfg.bucket = Some("my-bucket".into());
//! let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
//! let opts = OutputOptions { format: OutputFormat::AwsCli, verbose: false, color: false };
//! let report = run(&store, &cfg, &keys, &opts, &mut out, &mut err, &mut |_| {})?;
//! std::process::exit(report.exit_code());
//! # Ok::<(), Error>(())
//! ```

mod config;
mod digest;
mod error;
mod follow;
mod format;
mod hash;
mod keys;
mod plan;
mod report;
mod store;
mod time;
mod verdict;
mod walk;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use rayon::prelude::*;

pub use config::{Selection, TrailArn, ValidateConfig, partition_of};
pub use digest::{Digest, LogFileRef, signing_string};
pub use error::{Error, ErrorKind};
pub use follow::{Alert, AlertKind, FollowConfig, Follower, PollOutcome};
pub use format::{
    AwsCliFormatter, Formatter, HumanFormatter, JsonFormatter, OutputFormat, aws_cli_line,
    formatter, verdict_json,
};
pub use hash::{CHUNK, LogHasher, WHOLE_MAX, sha256_of_gzip};
pub use jiff::Timestamp;
pub use keys::{
    KeyEncoding, PublicKey, PublicKeys, SignatureCheck, fingerprint, parse_public_key_der,
    unhexlify, verify_sha256,
};
pub use report::{HtmlReport, ReportMeta};
pub use store::{
    BucketMap, LocalMirror, MemoryStore, Object, ObjectMetadata, ObjectStore, StoreError, check_key,
};
pub use time::{display_time, parse_time};
pub use verdict::{Event, Problem, Report, Status, Subject, TrailInfo, TrailSummary, Verdict};

/// The exit code for a run that could not complete (the AWS CLI's 255).
pub const EXIT_ERROR: i32 = 255;

/// Validates what `cfg` selects in `store` with `keys`, calling `on_event`
/// with each trail's start, each verdict and each trail's end, in the order
/// the AWS CLI would print them (trails in key order).
///
/// Trails (account and region folders) are validated in parallel on rayon's
/// pool, and within a trail the log files of up to
/// [`ValidateConfig::batch_size`] entries are hashed in parallel; `on_event`
/// is always called on the calling thread, in order.
///
/// Fails before any verdict on bad arguments or an empty key set, and stops
/// with an error when listing fails. Invalid files are never errors.
pub fn validate(
    store: &dyn ObjectStore,
    cfg: &ValidateConfig,
    keys: &PublicKeys,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Report, Error> {
    let end = cfg.end_or_now();
    cfg.check(end)?;
    keys.require_some()?;
    let plans = plan::plan(store, cfg, end)?;
    let mut report = Report::default();
    let mut deliver = |ev: Event| {
        if let Event::TrailFinished { trail, summary } = &ev {
            report.trails.push((trail.clone(), summary.clone()));
        }
        on_event(&ev);
    };
    let trails = plans.iter().map(|f| f.trails.len()).sum();
    let digests = plans
        .iter()
        .flat_map(|f| &f.trails)
        .map(|t| t.standard.len() + t.backfill.len())
        .sum();
    deliver(Event::Planned { trails, digests });
    if plans.len() <= 1 {
        for fp in &plans {
            run_folder(store, keys, cfg, fp, &mut deliver)?;
        }
        return Ok(report);
    }

    // Several folders: validate them in parallel, deliver events in order.
    let cancel = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Option<Event>)>();
    let results = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let tx = tx;
            plans
                .par_iter()
                .enumerate()
                .map(|(i, fp)| {
                    if cancel.load(Ordering::Relaxed) {
                        let _ = tx.send((i, None));
                        return Ok(());
                    }
                    let tx = tx.clone();
                    let r = run_folder(store, keys, cfg, fp, &mut |ev| {
                        let _ = tx.send((i, Some(ev)));
                    });
                    if r.is_err() {
                        cancel.store(true, Ordering::Relaxed);
                    }
                    let _ = tx.send((i, None));
                    r
                })
                .collect::<Vec<Result<(), Error>>>()
        });
        let mut pending: Vec<Vec<Event>> = plans.iter().map(|_| Vec::new()).collect();
        let mut done = vec![false; plans.len()];
        let mut next = 0;
        for (i, ev) in rx {
            match ev {
                Some(ev) if i == next => deliver(ev),
                Some(ev) => pending[i].push(ev),
                None => done[i] = true,
            }
            while next < plans.len() && done[next] {
                next += 1;
                if next < plans.len() {
                    for ev in std::mem::take(&mut pending[next]) {
                        deliver(ev);
                    }
                }
            }
        }
        worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    for r in results {
        r?;
    }
    Ok(report)
}

fn run_folder(
    store: &dyn ObjectStore,
    keys: &PublicKeys,
    cfg: &ValidateConfig,
    fp: &plan::FolderPlan,
    emit: &mut dyn FnMut(Event),
) -> Result<(), Error> {
    // Announce the folder's digests in the order the walks read them
    // (newest first, regular chain then backfill chain).
    let digests: Vec<(&str, &str)> = fp
        .trails
        .iter()
        .flat_map(|t| t.standard.iter().rev().chain(t.backfill.iter().rev()))
        .map(|l| (fp.folder.bucket.as_str(), l.key.as_str()))
        .collect();
    store.prefetch(&digests);
    let mut walker = walk::Walker::new(store, keys, cfg);
    let n = fp.trails.len();
    for (i, t) in fp.trails.iter().enumerate() {
        let last = i + 1 == n;
        walker.run_trail(t, last.then_some(&fp.folder), emit)?;
    }
    Ok(())
}

/// How to print a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputOptions {
    /// The format.
    pub format: OutputFormat,
    /// Show valid files too (`--verbose`).
    pub verbose: bool,
    /// ANSI colours (human format; the CLI sets it when stdout is a terminal).
    pub color: bool,
}

/// [`validate`] with output: writes the events in `opts.format` to `stdout`
/// and `stderr`, also passing each event to `progress` (for a progress bar),
/// and returns the report. Output errors stop the run.
pub fn run(
    store: &dyn ObjectStore,
    cfg: &ValidateConfig,
    keys: &PublicKeys,
    opts: &OutputOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    progress: &mut dyn FnMut(&Event),
) -> Result<Report, Error> {
    let mut f = formatter(opts.format, opts.verbose, opts.color, stdout, stderr);
    let mut write_error: Option<std::io::Error> = None;
    let report = validate(store, cfg, keys, &mut |ev| {
        progress(ev);
        if write_error.is_none()
            && let Err(e) = f.event(ev)
        {
            write_error = Some(e);
        }
    })?;
    if let Some(e) = write_error {
        return Err(Error::from(e));
    }
    f.finish(&report)?;
    Ok(report)
}

/// The arguments of `trailmill validate`, as the command line gives them.
///
/// `trailmill validate SOURCE (--trail-arn ARN | --all) --start-time T [--end-time T]
/// [--bucket NAME] [--s3-prefix P] [--org-id o-x] [--account-id ID] [--region R]
/// [--public-keys FILE] [--verbose] [--format aws-cli|json|human] [--expect-until T]`
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidateArgs {
    /// SOURCE: the bucket root directory of a local mirror (for another
    /// store, where `keys.json` is looked for).
    pub source: PathBuf,
    /// `--trail-arn`.
    pub trail_arn: Option<String>,
    /// `--all`.
    pub all: bool,
    /// `--start-time` (any form [`parse_time`] accepts).
    pub start_time: String,
    /// `--end-time` (default now).
    pub end_time: Option<String>,
    /// `--bucket`: the bucket name SOURCE mirrors.
    pub bucket: Option<String>,
    /// `--s3-prefix`.
    pub s3_prefix: Option<String>,
    /// `--org-id`.
    pub org_id: Option<String>,
    /// `--account-id`.
    pub account_id: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--public-keys` (default `SOURCE/keys.json` when that file exists).
    pub public_keys: Option<PathBuf>,
    /// `--verbose`.
    pub verbose: bool,
    /// `--format`.
    pub format: OutputFormat,
    /// `--expect-until`.
    pub expect_until: Option<String>,
    /// Colour the human format (stdout is a terminal).
    pub color: bool,
}

impl ValidateArgs {
    /// Checks and converts the arguments into a local mirror store, a
    /// configuration and keys.
    pub fn resolve(&self) -> Result<(LocalMirror, ValidateConfig, PublicKeys), Error> {
        let (cfg, keys) = self.config()?;
        let mut store = LocalMirror::new(&self.source)?;
        if let Some(b) = &self.bucket {
            store = store.with_bucket(b.clone());
        }
        Ok((store, cfg, keys))
    }

    /// The output options the arguments ask for.
    pub fn output(&self) -> OutputOptions {
        OutputOptions {
            format: self.format,
            verbose: self.verbose,
            color: self.color,
        }
    }

    /// Checks and converts the arguments into a configuration and keys,
    /// for any store (`SOURCE` is only used to find `SOURCE/keys.json`).
    pub fn config(&self) -> Result<(ValidateConfig, PublicKeys), Error> {
        let selection = match (&self.trail_arn, self.all) {
            (Some(arn), false) => Selection::Trail(TrailArn::parse(arn)?),
            (None, true) => Selection::All,
            _ => {
                return Err(Error::arg(
                    "--trail-arn",
                    "give exactly one of --trail-arn and --all",
                ));
            }
        };
        let mut cfg = match selection {
            Selection::Trail(arn) => ValidateConfig::trail(arn, parse_time(&self.start_time)?),
            Selection::All => ValidateConfig::all(parse_time(&self.start_time)?),
        };
        cfg.end = self.end_time.as_deref().map(parse_time).transpose()?;
        cfg.expect_until = self.expect_until.as_deref().map(parse_time).transpose()?;
        cfg.bucket = self.bucket.clone();
        cfg.s3_prefix = self.s3_prefix.clone();
        cfg.org_id = self.org_id.clone();
        cfg.account_id = self.account_id.clone();
        cfg.region = self.region.clone();
        let keys_path = match &self.public_keys {
            Some(p) => p.clone(),
            None => {
                let p = self.source.join("keys.json");
                if !p.is_file() {
                    return Err(Error::arg(
                        "--public-keys",
                        "required offline (no keys.json in SOURCE)",
                    ));
                }
                p
            }
        };
        let keys = PublicKeys::load(&keys_path)?;
        Ok((cfg, keys))
    }
}

/// Everything `trailmill validate` does: resolve the arguments, validate,
/// print in the chosen format. The process exit code is
/// [`Report::exit_code`] on success and [`EXIT_ERROR`] on error.
pub fn run_validate(
    args: &ValidateArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    progress: &mut dyn FnMut(&Event),
) -> Result<Report, Error> {
    let (store, cfg, keys) = args.resolve()?;
    run(
        &store,
        &cfg,
        &keys,
        &args.output(),
        stdout,
        stderr,
        progress,
    )
}

/// [`run_validate`] over another store (such as S3): `args.source` only
/// locates the default `keys.json`.
pub fn run_validate_in(
    store: &dyn ObjectStore,
    args: &ValidateArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    progress: &mut dyn FnMut(&Event),
) -> Result<Report, Error> {
    let (cfg, keys) = args.config()?;
    run(store, &cfg, &keys, &args.output(), stdout, stderr, progress)
}

/// What `trailmill process --verify` may emit: the log files that a digest
/// whose signature and chain verified lists, each with the SHA-256 that digest
/// attests for its uncompressed bytes.
#[derive(Clone, Debug, Default)]
pub struct Attestations {
    /// Object key to attested SHA-256.
    pub verified: std::collections::HashMap<String, [u8; 32]>,
    /// Every verdict that was not valid, for the caller to report.
    pub problems: Vec<Verdict>,
    /// The run's report.
    pub report: Report,
}

/// Validates what `cfg` selects and collects the attested log files (see
/// [`Attestations`]). Log files with a valid verdict were hashed once here;
/// a caller that reads them again checks the hash again, so a file changed
/// in between is still caught.
pub fn attest(
    store: &dyn ObjectStore,
    cfg: &ValidateConfig,
    keys: &PublicKeys,
) -> Result<Attestations, Error> {
    let mut out = Attestations::default();
    let report = validate(store, cfg, keys, &mut |event| {
        if let Event::Verdict(v) = event {
            match (
                &v.status,
                v.subject,
                v.attested_sha256.as_deref().and_then(decode_sha256),
            ) {
                (Status::Valid, Subject::Log, Some(hash)) => {
                    out.verified.insert(v.key.clone(), hash);
                }
                (Status::Valid, _, _) => {}
                _ => out.problems.push(v.clone()),
            }
        }
    })?;
    out.report = report;
    Ok(out)
}

fn decode_sha256(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text).ok()?.try_into().ok()
}
