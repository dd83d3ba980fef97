//! Walking a digest chain from newest to oldest, as the AWS CLI does, with
//! trailmill's extra checks layered on top.
//!
//! The traversal is the CLI's, step for step, so that verdicts agree where
//! the CLI is right: take the newest listed digest; after a valid digest
//! follow its `previousDigestS3Bucket`/`Object` link; after a starting digest
//! (no link) report a gap and take the newest listed digest older than it;
//! after a missing or invalid digest take the newest listed digest older than
//! it; stop once a digest starts before the requested start.
//!
//! On top of that, trailmill
//! - checks each link: the previous digest's SHA-256 and signature must be
//!   what the newer digest recorded (when both verify);
//! - infers further deleted digests when a missing digest's neighbour is more
//!   than one period older;
//! - verifies offline without sidecars, taking a digest's signature from the
//!   verified newer digest that links to it;
//! - rejects signatures that are not SHA-256, keys whose fingerprint or
//!   validity window does not match, trailing data after a digest's gzip
//!   stream, and malformed fields the CLI never reads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use rayon::prelude::*;
use serde_json::Value;
use trailmill_core::gzip::{InflateError, inflate_into};
use trailmill_core::key::ObjectKey;

use crate::config::ValidateConfig;
use crate::digest::{Digest, py_str, sha256_hex, signing_string_from_json};
use crate::error::Error;
use crate::hash::{check_log, store_problem};
use crate::keys::{PublicKeys, SignatureCheck, fingerprint, unhexlify, verify_sha256};
use crate::plan::{Folder, Listed, TrailPlan, list_trail};
use crate::store::ObjectStore;
use crate::time::{
    add_secs, digest_key_time, key_time_string, parse_digest_time, parse_instant, secs_between,
};
use crate::verdict::{Event, Problem, Status, Subject, TrailInfo, TrailSummary, Verdict};

/// The fields the CLI requires before it validates a digest.
const REQUIRED: [&str; 6] = [
    "digestPublicKeyFingerprint",
    "digestS3Bucket",
    "digestS3Object",
    "previousDigestSignature",
    "digestEndTime",
    "digestStartTime",
];

/// At most this many digests are inferred missing from one gap.
const MAX_INFERRED: i64 = 1000;

/// A log file to hash.
#[derive(Clone, Debug)]
struct LogJob {
    bucket: String,
    key: String,
    expected: String,
}

enum Slot {
    Ready(Verdict),
    Log(LogJob),
}

/// Emits verdicts in order, hashing queued log files in parallel batches.
pub(crate) struct Output<'a> {
    store: &'a dyn ObjectStore,
    emit: &'a mut dyn FnMut(Event),
    slots: Vec<Slot>,
    pending_logs: usize,
    batch: usize,
    limit: u64,
    info: Arc<TrailInfo>,
    pub summary: TrailSummary,
}

impl<'a> Output<'a> {
    pub fn new(
        store: &'a dyn ObjectStore,
        cfg: &ValidateConfig,
        info: Arc<TrailInfo>,
        emit: &'a mut dyn FnMut(Event),
    ) -> Self {
        emit(Event::TrailStarted(info.clone()));
        Output {
            store,
            emit,
            slots: Vec::new(),
            pending_logs: 0,
            batch: cfg.batch_size,
            limit: cfg.max_log_bytes,
            info,
            summary: TrailSummary::default(),
        }
    }

    fn verdict(&mut self, v: Verdict) {
        if self.slots.is_empty() {
            self.send(v);
        } else {
            self.slots.push(Slot::Ready(v));
        }
    }

    fn log(&mut self, job: LogJob) {
        self.slots.push(Slot::Log(job));
        self.pending_logs += 1;
        if self.pending_logs >= self.batch {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        let (store, limit, trail) = (self.store, self.limit, self.info.index);
        let slots = std::mem::take(&mut self.slots);
        let done: Vec<Verdict> = slots
            .into_par_iter()
            .with_max_len(1)
            .map(|slot| match slot {
                Slot::Ready(v) => v,
                Slot::Log(job) => {
                    let status = check_log(store, &job.bucket, &job.key, &job.expected, limit);
                    Verdict {
                        trail,
                        subject: Subject::Log,
                        bucket: job.bucket,
                        key: job.key,
                        status,
                        period: None,
                        attested_sha256: Some(job.expected),
                    }
                }
            })
            .collect();
        self.pending_logs = 0;
        for v in done {
            self.send(v);
        }
    }

    fn send(&mut self, v: Verdict) {
        self.summary.record(&v, self.info.start, self.info.end);
        (self.emit)(Event::Verdict(v));
    }

    /// Flushes and reports the trail's end.
    pub fn finish(mut self) -> TrailSummary {
        self.flush();
        let summary = self.summary.clone();
        (self.emit)(Event::TrailFinished {
            trail: self.info.clone(),
            summary: summary.clone(),
        });
        summary
    }
}

/// What the verified newer digest says about the digest it links to.
#[derive(Clone, Debug)]
struct NewerLink {
    previous_signature: Option<String>,
    previous_hash: Option<String>,
}

/// A digest that was fetched and parsed (whatever its verdict).
#[derive(Debug)]
struct Parsed {
    value: Value,
    sha256: String,
    sidecar: Option<String>,
}

/// A digest whose signature verified.
#[derive(Debug)]
struct Loaded {
    parsed: Parsed,
    start: Timestamp,
    end: Timestamp,
    log_files: Vec<crate::digest::LogFileRef>,
    previous: Option<(String, String)>,
}

/// The outcome of loading and checking one digest.
#[derive(Debug)]
enum Checked {
    /// The signature verified. `problem` is a trailmill-only finding that
    /// does not break the chain (the CLI would call the digest valid).
    Verified {
        loaded: Box<Loaded>,
        problem: Option<Problem>,
    },
    /// The object does not exist (the CLI's "not found" path).
    Missing(Problem),
    /// Invalid; `parsed` when the JSON could be read.
    Invalid {
        problem: Problem,
        parsed: Option<Box<Parsed>>,
    },
}

/// Walks the chains of one folder and checks its log files for references.
pub(crate) struct Walker<'a> {
    store: &'a dyn ObjectStore,
    keys: &'a PublicKeys,
    cfg: &'a ValidateConfig,
    buf: Vec<u8>,
    /// Log files referenced by any digest that parsed.
    refs: HashSet<(String, String)>,
    /// The span of the digests that parsed.
    coverage: Option<(Timestamp, Timestamp)>,
    /// The signature each parsed digest records for the digest it links to:
    /// offline, the signature of a digest without a sidecar. Where the bytes
    /// come from does not matter: only a signature by the key verifies.
    recorded: HashMap<(String, String), String>,
}

impl<'a> Walker<'a> {
    pub fn new(store: &'a dyn ObjectStore, keys: &'a PublicKeys, cfg: &'a ValidateConfig) -> Self {
        Walker {
            store,
            keys,
            cfg,
            buf: Vec::new(),
            refs: HashSet::new(),
            coverage: None,
            recorded: HashMap::new(),
        }
    }

    /// The log files (bucket, key) that the digests read so far list,
    /// whether or not their signatures verified: what a log file needs to
    /// not be unattested.
    pub fn referenced(&self) -> &HashSet<(String, String)> {
        &self.refs
    }

    /// Validates one trail: its regular chain, then its backfill chain, and
    /// (when `unattested` is given, for the last trail of a folder) the
    /// folder's unattested log files.
    pub fn run_trail(
        &mut self,
        plan: &TrailPlan,
        unattested: Option<&Folder>,
        emit: &mut dyn FnMut(Event),
    ) -> Result<TrailSummary, Error> {
        let info = plan.info.clone();
        let mut out = Output::new(self.store, self.cfg, info.clone(), emit);
        if let Some(until) = self.cfg.expect_until {
            let ok = plan.newest.is_some_and(|n| n >= add_secs(until, -3600));
            if !ok {
                let folder_key = digest_folder(&info);
                out.verdict(Verdict {
                    trail: info.index,
                    subject: Subject::Chain,
                    bucket: info.bucket.clone(),
                    key: folder_key,
                    status: Status::Invalid(Problem::ChainEndsEarly {
                        newest_end: plan.newest,
                        expected_until: until,
                    }),
                    period: None,
                    attested_sha256: None,
                });
            }
        }
        self.walk(&info, plan.standard.clone(), false, &mut out)?;
        self.walk(&info, plan.backfill.clone(), true, &mut out)?;
        if let Some(folder) = unattested
            && self.cfg.check_unattested
        {
            self.unattested(&info, folder, &mut out)?;
        }
        Ok(out.finish())
    }

    fn walk(
        &mut self,
        info: &TrailInfo,
        mut digests: Vec<Listed>,
        backfill: bool,
        out: &mut Output<'_>,
    ) -> Result<(), Error> {
        let subject = if backfill {
            Subject::BackfillDigest
        } else {
            Subject::Digest
        };
        let start = info.start;
        let mut bucket = info.bucket.clone();
        let Some(first) = digests.pop() else {
            return Ok(());
        };
        let mut key = Some(first.key);
        let mut last_start = first.time;
        let mut newer: Option<NewerLink> = None;
        let mut prefetched: Option<(String, String, Checked)> = None;
        let mut typical_period: i64 = 3600;
        let mut visited: HashSet<(String, String)> = HashSet::new();
        while let Some(k) = key.take() {
            if start > last_start {
                break;
            }
            if !visited.insert((bucket.clone(), k.clone())) {
                // Signed links that loop: report once and leave the loop.
                out.verdict(Verdict {
                    trail: info.index,
                    subject,
                    bucket: bucket.clone(),
                    key: k.clone(),
                    status: Status::Invalid(Problem::InvalidFormat {
                        detail: "the chain of previous-digest links loops back to this digest"
                            .into(),
                    }),
                    period: None,
                    attested_sha256: None,
                });
                key = pop_older(&mut digests, last_start).map(|n| n.key);
                newer = None;
                prefetched = None;
                continue;
            }
            let checked = match prefetched.take() {
                Some((b, pk, c)) if b == bucket && pk == k => c,
                _ => self.check(info, &bucket, &k, backfill, newer.as_ref()),
            };
            let came_by_link = newer.take().is_some();
            let verdict = |status: Status, period: Option<(Timestamp, Timestamp)>| Verdict {
                trail: info.index,
                subject,
                bucket: bucket.clone(),
                key: k.clone(),
                status,
                period,
                attested_sha256: None,
            };
            match checked {
                Checked::Verified { loaded, problem } => {
                    last_start = loaded.start;
                    let period = secs_between(loaded.start, loaded.end);
                    if period >= 60 {
                        typical_period = period;
                    }
                    self.note_parsed(&loaded.parsed.value, Some((loaded.start, loaded.end)));
                    // Check the link to the previous digest (and keep it for the next step).
                    let link = NewerLink {
                        previous_signature: loaded
                            .parsed
                            .value
                            .get("previousDigestSignature")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        previous_hash: loaded
                            .parsed
                            .value
                            .get("previousDigestHashValue")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    };
                    let mut link_problem = None;
                    if let Some((pb, pk)) = &loaded.previous {
                        let prev = self.check(info, pb, pk, backfill, Some(&link));
                        if let Checked::Verified { loaded: p, .. } = &prev {
                            link_problem = link_check(&link, pb, pk, p);
                        }
                        prefetched = Some((pb.clone(), pk.clone(), prev));
                    }
                    let status = match problem.or(link_problem) {
                        None => Status::Valid,
                        Some(p) => Status::Invalid(p),
                    };
                    out.verdict(verdict(status, Some((loaded.start, loaded.end))));
                    let logs: Vec<(&str, &str)> = loaded
                        .log_files
                        .iter()
                        .map(|l| (l.s3_bucket.as_str(), l.s3_object.as_str()))
                        .collect();
                    self.store.prefetch(&logs);
                    for log in &loaded.log_files {
                        out.log(LogJob {
                            bucket: log.s3_bucket.clone(),
                            key: log.s3_object.clone(),
                            expected: log.hash_value.clone(),
                        });
                    }
                    match &loaded.previous {
                        None => {
                            let next = pop_older(
                                &mut digests,
                                digest_key_time(&k).unwrap_or(loaded.start),
                            );
                            if let Some(n) = &next {
                                out.verdict(Verdict {
                                    trail: info.index,
                                    subject: if backfill {
                                        Subject::BackfillPeriod
                                    } else {
                                        Subject::Period
                                    },
                                    bucket: String::new(),
                                    key: String::new(),
                                    status: Status::Gap,
                                    period: Some((n.time, last_start)),
                                    attested_sha256: None,
                                });
                            }
                            key = next.map(|n| n.key);
                        }
                        Some((pb, pk)) => {
                            newer = Some(link);
                            key = Some(pk.clone());
                            if *pb != bucket {
                                bucket = pb.clone();
                                let (s, b) =
                                    list_trail(self.store, info, &bucket, start, loaded.end)?;
                                digests = if backfill { b } else { s };
                            }
                        }
                    }
                }
                Checked::Missing(problem) => {
                    out.verdict(verdict(Status::Invalid(problem), None));
                    let missing_end = digest_key_time(&k).unwrap_or(last_start);
                    let next = pop_older(&mut digests, missing_end);
                    if came_by_link && let Some(n) = &next {
                        // One missing digest spans one period; more time than
                        // that means more digests are gone (aws/aws-cli#7054).
                        let extra = (secs_between(n.time, missing_end) as f64
                            / typical_period as f64)
                            .round() as i64
                            - 1;
                        for i in 1..=extra.min(MAX_INFERRED) {
                            let estimated_end = add_secs(missing_end, -i * typical_period);
                            out.verdict(Verdict {
                                trail: info.index,
                                subject,
                                bucket: bucket.clone(),
                                key: estimated_key(&k, estimated_end),
                                status: Status::Invalid(Problem::MissingInferred {
                                    estimated_end,
                                    after: format!("s3://{bucket}/{}", n.key),
                                    before: format!("s3://{bucket}/{k}"),
                                }),
                                period: None,
                                attested_sha256: None,
                            });
                        }
                    }
                    key = next.map(|n| n.key);
                }
                Checked::Invalid { problem, parsed } => {
                    if let Some(p) = &parsed {
                        let period = parse_digest_time(p.value.get("digestStartTime"))
                            .ok()
                            .zip(parse_digest_time(p.value.get("digestEndTime")).ok());
                        self.note_parsed(&p.value, period);
                    }
                    out.verdict(verdict(Status::Invalid(problem), None));
                    let bound = digest_key_time(&k).unwrap_or(last_start);
                    key = pop_older(&mut digests, bound).map(|n| n.key);
                }
            }
        }
        Ok(())
    }

    /// Records the log files a parsed digest references and its period.
    fn note_parsed(&mut self, v: &Value, period: Option<(Timestamp, Timestamp)>) {
        let field = |name: &str| v.get(name).and_then(Value::as_str);
        if let (Some(b), Some(k), Some(sig)) = (
            field("previousDigestS3Bucket"),
            field("previousDigestS3Object"),
            field("previousDigestSignature"),
        ) {
            self.recorded
                .entry((b.to_string(), k.to_string()))
                .or_insert_with(|| sig.to_string());
        }
        if let Some(Value::Array(logs)) = v.get("logFiles") {
            for l in logs {
                if let (Some(b), Some(k)) = (
                    l.get("s3Bucket").and_then(Value::as_str),
                    l.get("s3Object").and_then(Value::as_str),
                ) {
                    self.refs.insert((b.to_string(), k.to_string()));
                }
            }
        }
        if let Some((s, e)) = period {
            self.coverage = Some(match self.coverage {
                None => (s, e),
                Some((a, b)) => (a.min(s), b.max(e)),
            });
        }
    }

    /// Loads a digest and checks it, in the CLI's order, then trailmill's.
    fn check(
        &mut self,
        info: &TrailInfo,
        bucket: &str,
        key: &str,
        backfill: bool,
        newer: Option<&NewerLink>,
    ) -> Checked {
        let invalid = |problem: Problem, parsed: Option<Parsed>| Checked::Invalid {
            problem,
            parsed: parsed.map(Box::new),
        };
        let obj = match self.store.get(bucket, key) {
            Ok(o) => o,
            Err(e) => {
                return match store_problem(e) {
                    p @ (Problem::NotFound { .. } | Problem::UnsafeKey { .. }) => {
                        Checked::Missing(p)
                    }
                    p => invalid(p, None),
                };
            }
        };
        // 1. gzip and JSON. The CLI ignores bytes after the gzip stream; trailmill reports them last.
        let trailing = match inflate_into(&obj.bytes, &mut self.buf, self.cfg.max_digest_bytes) {
            Ok(()) => false,
            Err(InflateError::TrailingData(_)) => true,
            Err(e) => {
                return invalid(
                    Problem::InvalidFormat {
                        detail: e.to_string(),
                    },
                    None,
                );
            }
        };
        let value: Value = match serde_json::from_slice(&self.buf) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return invalid(
                    Problem::InvalidFormat {
                        detail: "not a JSON object".into(),
                    },
                    None,
                );
            }
            Err(e) => {
                return invalid(
                    Problem::InvalidFormat {
                        detail: format!("not JSON: {e}"),
                    },
                    None,
                );
            }
        };
        let parsed = Parsed {
            value,
            sha256: sha256_hex(&self.buf),
            sidecar: obj.metadata.signature.clone(),
        };
        // 2. The signature: metadata (sidecar), else, offline, what the newer
        //    digest recorded as its `previousDigestSignature`.
        let full_metadata = self.store.has_full_metadata();
        let recorded = newer
            .and_then(|n| n.previous_signature.clone())
            .or_else(|| {
                self.recorded
                    .get(&(bucket.to_string(), key.to_string()))
                    .cloned()
            });
        let signature = match (&obj.metadata.signature, recorded) {
            (Some(s), _) if !full_metadata || obj.metadata.signature_algorithm.is_some() => {
                s.clone()
            }
            (None, Some(s)) if !full_metadata => s,
            _ if full_metadata => return invalid(Problem::SignatureFailed, Some(parsed)),
            _ => return invalid(Problem::SignatureNotAvailableOffline, Some(parsed)),
        };
        if backfill && full_metadata && obj.metadata.backfill_generation_timestamp.is_none() {
            return invalid(
                Problem::InvalidFormat {
                    detail: "no backfill-generation-timestamp metadata".into(),
                },
                Some(parsed),
            );
        }
        // 3. Required fields, location, key, signature, times: the CLI's checks.
        let v = &parsed.value;
        if let Some(missing) = REQUIRED.iter().find(|f| v.get(**f).is_none()) {
            return invalid(
                Problem::InvalidFormat {
                    detail: format!("no {missing} field"),
                },
                Some(parsed),
            );
        }
        if v.get("digestS3Bucket").and_then(Value::as_str) != Some(bucket)
            || v.get("digestS3Object").and_then(Value::as_str) != Some(key)
        {
            return invalid(Problem::Moved, Some(parsed));
        }
        let fp_value = &v["digestPublicKeyFingerprint"];
        let fp = py_str(fp_value);
        let Some(public) = fp_value.as_str().and_then(|f| self.keys.get(f)) else {
            return invalid(
                Problem::PublicKeyNotFound {
                    region: info.home_region.clone(),
                    fingerprint: fp,
                },
                Some(parsed),
            );
        };
        let Ok((rsa_key, _)) = public.rsa() else {
            return invalid(Problem::KeyUnloadable { fingerprint: fp }, Some(parsed));
        };
        let sig_bytes = match unhexlify(&signature) {
            Ok(b) => b,
            Err(m) => {
                return invalid(
                    Problem::Cli {
                        message: m.to_string(),
                    },
                    Some(parsed),
                );
            }
        };
        let message = signing_string_from_json(v, &self.buf);
        match verify_sha256(rsa_key, message.as_bytes(), &sig_bytes) {
            SignatureCheck::Valid => {}
            SignatureCheck::OtherHash(h) => {
                return invalid(
                    Problem::SignatureNotSha256 {
                        hash: h.to_string(),
                    },
                    Some(parsed),
                );
            }
            SignatureCheck::Invalid => return invalid(Problem::SignatureFailed, Some(parsed)),
        }
        let end = match parse_digest_time(v.get("digestEndTime")) {
            Ok(t) => t,
            Err(message) => return invalid(Problem::Cli { message }, Some(parsed)),
        };
        let start = match parse_digest_time(v.get("digestStartTime")) {
            Ok(t) => t,
            Err(message) => return invalid(Problem::Cli { message }, Some(parsed)),
        };
        // 4. trailmill's own checks. The key must be the one the fingerprint names…
        if !public.fingerprint_matches() {
            let actual = fingerprint(&public.der);
            return invalid(
                Problem::FingerprintMismatch {
                    fingerprint: fp,
                    actual,
                },
                Some(parsed),
            );
        }
        // …and valid when the digest was signed (a backfill digest is signed when generated).
        let grace = self.cfg.key_validity_grace_secs;
        let key_ok = match (
            backfill,
            obj.metadata
                .backfill_generation_timestamp
                .as_deref()
                .and_then(parse_instant),
        ) {
            (true, Some(generated)) => public.valid_at(generated, grace),
            (true, None) => public
                .validity_end
                .is_none_or(|e| end <= add_secs(e, grace)),
            (false, _) => public.valid_at(end, grace),
        };
        if !key_ok {
            return invalid(Problem::KeyNotValid { fingerprint: fp }, Some(parsed));
        }
        let model = match Digest::from_value(v) {
            Ok(d) => d,
            Err(e) => return invalid(Problem::InvalidFormat { detail: e }, Some(parsed)),
        };
        let previous = match (
            &model.previous_digest_s3_bucket,
            &model.previous_digest_s3_object,
        ) {
            (Some(b), Some(k)) => Some((b.clone(), k.clone())),
            _ => None,
        };
        // Findings below leave the chain intact: the signature vouches for the content.
        let mut problem = None;
        let algorithms = [
            (
                "digestSignatureAlgorithm",
                model.digest_signature_algorithm.as_deref(),
                "SHA256withRSA",
            ),
            (
                "signature-algorithm",
                obj.metadata.signature_algorithm.as_deref(),
                "SHA256withRSA",
            ),
            (
                "previousDigestHashAlgorithm",
                model.previous_digest_hash_algorithm.as_deref(),
                "SHA-256",
            ),
        ];
        for (field, value, want) in algorithms {
            if let Some(value) = value
                && value != want
            {
                problem = Some(Problem::UnsupportedAlgorithm {
                    field: field.into(),
                    value: value.into(),
                });
            }
        }
        if let Some(l) = model
            .log_files
            .iter()
            .find(|l| l.hash_algorithm.as_deref().is_some_and(|a| a != "SHA-256"))
        {
            problem = Some(Problem::UnsupportedAlgorithm {
                field: format!("hashAlgorithm of {}", l.s3_object),
                value: l.hash_algorithm.clone().unwrap_or_default(),
            });
        }
        if trailing {
            problem = Some(Problem::TrailingData);
        }
        let loaded = Loaded {
            parsed,
            start,
            end,
            log_files: model.log_files,
            previous,
        };
        Checked::Verified {
            loaded: Box::new(loaded),
            problem,
        }
    }

    /// Reports log files under the folder, inside the span the digests cover
    /// (less the margin), that no parsed digest references.
    fn unattested(
        &mut self,
        info: &TrailInfo,
        folder: &Folder,
        out: &mut Output<'_>,
    ) -> Result<(), Error> {
        let Some((cov_start, cov_end)) = self.coverage else {
            return Ok(());
        };
        let margin = self.cfg.unattested_margin_secs;
        let from = add_secs(cov_start.max(info.start), margin);
        let to = add_secs(cov_end.min(info.end), -margin);
        if from >= to {
            return Ok(());
        }
        let base = folder.service_prefix("CloudTrail");
        let mut day = from;
        let last_day = to.strftime("%Y/%m/%d").to_string();
        let mut found = Vec::new();
        loop {
            let day_s = day.strftime("%Y/%m/%d").to_string();
            if day_s > last_day {
                break;
            }
            let prefix = format!("{base}{day_s}/");
            self.store
                .list(&folder.bucket, &prefix, "", &mut |k| {
                    found.push(k.to_string());
                    std::ops::ControlFlow::Continue(())
                })
                .map_err(|e| {
                    Error::new(
                        crate::error::ErrorKind::List,
                        Some(prefix.clone()),
                        e.to_string(),
                    )
                })?;
            day = add_secs(day, 86_400);
        }
        for k in found {
            let Ok(parsed) = ObjectKey::parse(&k) else {
                continue;
            };
            if !matches!(parsed.file.kind, trailmill_core::key::FileKind::Log { .. })
                || parsed.file.account != folder.account
                || parsed.file.region != folder.region
            {
                continue;
            }
            let t = parsed.file.time.unix_seconds();
            if t < from.as_second() || t + 60 > to.as_second() {
                continue;
            }
            if !self.refs.contains(&(folder.bucket.clone(), k.clone())) {
                out.verdict(Verdict {
                    trail: info.index,
                    subject: Subject::Log,
                    bucket: folder.bucket.clone(),
                    key: k,
                    status: Status::Invalid(Problem::Unattested),
                    period: None,
                    attested_sha256: None,
                });
            }
        }
        Ok(())
    }
}

/// Checks that the newer digest's record of the previous digest matches it.
fn link_check(link: &NewerLink, bucket: &str, key: &str, prev: &Loaded) -> Option<Problem> {
    let previous = format!("s3://{bucket}/{key}");
    if let Some(h) = &link.previous_hash
        && !h.eq_ignore_ascii_case(&prev.parsed.sha256)
    {
        return Some(Problem::PreviousHashMismatch { previous });
    }
    if let (Some(recorded), Some(actual)) = (&link.previous_signature, &prev.parsed.sidecar)
        && !recorded.eq_ignore_ascii_case(actual)
    {
        return Some(Problem::PreviousSignatureMismatch { previous });
    }
    None
}

/// Pops listed digests until one is strictly older than `before` (the CLI's
/// `_get_last_digest`).
fn pop_older(digests: &mut Vec<Listed>, before: Timestamp) -> Option<Listed> {
    while let Some(d) = digests.pop() {
        if d.time < before {
            return Some(d);
        }
    }
    None
}

/// The key a digest ending at `end` would have, next to `like`, with `~`
/// before the time to mark it as estimated.
pub(crate) fn estimated_key(like: &str, end: Timestamp) -> String {
    if let Ok(k) = ObjectKey::parse(like)
        && let trailmill_core::key::Location::AwsLogs { prefix, org_id } = k.location
    {
        let date = trailmill_core::key::KeyDate {
            year: end.strftime("%Y").to_string().parse().unwrap_or(0),
            month: end.strftime("%m").to_string().parse().unwrap_or(0),
            day: end.strftime("%d").to_string().parse().unwrap_or(0),
        };
        let dir = trailmill_core::key::day_prefix(
            prefix,
            org_id,
            k.file.account,
            "CloudTrail-Digest",
            k.file.region,
            date,
        );
        if let trailmill_core::key::FileKind::Digest {
            trail,
            home_region,
            backfill,
        } = k.file.kind
        {
            let suffix = if backfill { "_backfill" } else { "" };
            return format!(
                "{dir}{}_CloudTrail-Digest_{}_{trail}_{home_region}_~{}{suffix}.json.gz",
                k.file.account,
                k.file.region,
                key_time_string(end)
            );
        }
    }
    format!("{like}~{}", key_time_string(end))
}

/// `[prefix/]AWSLogs/[org/]ACCOUNT/CloudTrail-Digest/REGION/` of a trail.
fn digest_folder(info: &TrailInfo) -> String {
    Folder {
        bucket: info.bucket.clone(),
        prefix: info.prefix.clone(),
        org_id: info.org_id.clone(),
        account: info.account.clone(),
        region: info.region.clone(),
    }
    .service_prefix("CloudTrail-Digest")
}
