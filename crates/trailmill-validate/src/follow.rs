//! `validate --follow`: validating trails as CloudTrail delivers them, and
//! alerting on what breaks, once.
//!
//! A [`Follower`] keeps a SQLite state file with, per digest chain (one
//! trail's digests in one account and region), the newest digest it has
//! walked, and per log folder the log files it has seen. Each
//! [`Follower::poll`]:
//!
//! 1. lists each chain's digest folder after the newest digest it walked:
//!    one `ListObjectsV2` with `StartAfter` per chain, never the whole range
//!    again; and each folder's log files after a cursor that looks back two
//!    hours, for late deliveries;
//! 2. walks each chain's new digests with the walker a one-shot `validate`
//!    uses, newest to oldest, down to the digest walked before. That digest
//!    is served from the state, not read again, and the walker checks the
//!    link to it (hash and signature) exactly as a one-shot run does, so
//!    verdicts agree with a one-shot run over the same range;
//! 3. reports log files no digest lists, once the chain's digests have moved
//!    past them and the grace period has passed, and chains whose next
//!    digest is overdue (a stopped trail, or a deleted newest digest), and
//!    again when such a chain resumes;
//! 4. commits the new state and the poll's [`Alert`]s in one transaction.
//!
//! Alerts are recorded as undelivered in that transaction and marked
//! delivered once the caller has written them ([`Follower::delivered`]), so
//! a crash re-delivers at most one poll's alerts, and a caller that can see
//! what it wrote before (an alerts file, by [`Alert::id`]) skips those:
//! after a SIGKILL nothing is lost and nothing is written twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use rayon::prelude::*;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use trailmill_core::key::{FileKind, KeyDate, ObjectKey, day_prefix};

use crate::config::{Selection, ValidateConfig};
use crate::error::{Error, ErrorKind};
use crate::keys::PublicKeys;
use crate::plan::{self, Folder, Listed, TrailPlan};
use crate::store::{Object, ObjectMetadata, ObjectStore, StoreError};
use crate::time::{add_secs, digest_key_time, floor_second};
use crate::verdict::{Event, Problem, Status, Subject, TrailInfo, Verdict};
use crate::walk::{Walker, estimated_key};

/// What `validate --follow` watches, and how patient it is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FollowConfig {
    /// The selection, range start, prefix, bucket and limits, as for a
    /// one-shot run. `end` and `expect_until` are ignored: a monitor runs
    /// up to now.
    pub validate: ValidateConfig,
    /// A log file no digest lists is reported once it is this many seconds
    /// old and the digests have moved past it (default 7200: CloudTrail
    /// delivers late sometimes).
    pub unattested_grace_secs: i64,
    /// A chain is overdue when no digest has arrived this many seconds after
    /// the hour that follows its newest digest's end (default 1800).
    pub overdue_grace_secs: i64,
    /// At most this many digests per chain are walked in one poll (default
    /// 48, two days), so that catching up on a long range keeps memory
    /// bounded; [`PollOutcome::backlog`] says when more are waiting.
    pub max_digests_per_poll: usize,
    /// At most this many log keys per folder are listed in one poll (default 20,000).
    pub max_logs_per_poll: usize,
    /// How often new trails, accounts and regions are looked for, in seconds
    /// (default 3600). Known chains are polled every time.
    pub rediscover_secs: i64,
    /// How many listings run at once (default 32): a poll is one listing per
    /// chain and per log folder, and each waits on the store, not the CPU.
    pub list_concurrency: usize,
}

impl FollowConfig {
    /// A monitor of what `validate` selects, with the default patience.
    pub fn new(validate: ValidateConfig) -> Self {
        FollowConfig {
            validate,
            unattested_grace_secs: 7200,
            overdue_grace_secs: 1800,
            max_digests_per_poll: 48,
            max_logs_per_poll: 20_000,
            rediscover_secs: 3600,
            list_concurrency: 32,
        }
    }

    /// The text the state is bound to: a state made for another selection
    /// would make the monitor skip or misjudge what it was never told about.
    fn binding(&self) -> String {
        let c = &self.validate;
        let selection = match &c.selection {
            Selection::Trail(arn) => format!("trail {}", arn.arn),
            Selection::All => "all".to_string(),
        };
        format!(
            "trailmill-follow/1 {selection} start={} bucket={:?} prefix={:?} org={:?} account={:?} region={:?}",
            c.start.as_second(),
            c.bucket,
            c.s3_prefix,
            c.org_id,
            c.account_id,
            c.region
        )
    }
}

/// What an [`Alert`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// A digest file is missing (deleted), found through the chain's links.
    MissingDigest,
    /// A digest file is invalid (signature, format, key, broken link…).
    InvalidDigest,
    /// A log file a digest lists is missing.
    MissingLog,
    /// A log file's hash differs from what its digest attests, or it cannot be read.
    InvalidLog,
    /// A log file no digest lists, past the grace period.
    UnattestedLog,
    /// No digest has arrived for a chain past its deadline: a stopped trail
    /// or a deleted newest digest.
    ChainOverdue,
    /// A chain that was overdue has a new digest.
    ChainResumed,
}

impl AlertKind {
    /// The snake_case name used in the JSON alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::MissingDigest => "missing_digest",
            AlertKind::InvalidDigest => "invalid_digest",
            AlertKind::MissingLog => "missing_log",
            AlertKind::InvalidLog => "invalid_log",
            AlertKind::UnattestedLog => "unattested_log",
            AlertKind::ChainOverdue => "chain_overdue",
            AlertKind::ChainResumed => "chain_resumed",
        }
    }

    /// The kind of alert an invalid verdict raises, if any (gaps between
    /// chains are not alerts: they are how a trail restarted looks).
    pub fn of(v: &Verdict) -> Option<AlertKind> {
        let Status::Invalid(problem) = &v.status else {
            return None;
        };
        let missing = matches!(
            problem,
            Problem::NotFound { .. } | Problem::MissingInferred { .. }
        );
        Some(match (v.subject, missing) {
            (Subject::Digest | Subject::BackfillDigest, true) => AlertKind::MissingDigest,
            (Subject::Digest | Subject::BackfillDigest, false) => AlertKind::InvalidDigest,
            (Subject::Log, _) if *problem == Problem::Unattested => AlertKind::UnattestedLog,
            (Subject::Log, true) => AlertKind::MissingLog,
            (Subject::Log, false) => AlertKind::InvalidLog,
            (Subject::Chain, _) => AlertKind::ChainOverdue,
            (Subject::Period | Subject::BackfillPeriod, _) => return None,
        })
    }
}

/// One finding of the monitor, raised once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable across restarts: the same finding always has the same id.
    pub id: String,
    /// What it is about.
    pub kind: AlertKind,
    /// The trail's ARN.
    pub trail: String,
    /// The account of the chain.
    pub account: String,
    /// The region of the chain.
    pub region: String,
    /// The bucket of the object.
    pub bucket: String,
    /// The object's key (for chain alerts, the chain's newest digest).
    pub key: String,
    /// The time the finding is about: the digest's end, the log file's
    /// delivery time, or the deadline a chain missed (RFC 3339).
    pub time: String,
    /// Why, in words.
    pub reason: String,
    /// When the monitor found it (RFC 3339).
    pub detected: String,
}

impl Alert {
    fn new(
        kind: AlertKind,
        info: &TrailInfo,
        bucket: &str,
        key: &str,
        time: Timestamp,
        reason: String,
        detected: Timestamp,
    ) -> Alert {
        let mut h = Sha256::new();
        for part in [
            kind.as_str(),
            &info.arn,
            &info.account,
            &info.region,
            bucket,
            key,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        // A chain can fall overdue and resume many times: the deadline tells
        // those occurrences apart, while a file's finding is about the file.
        if matches!(kind, AlertKind::ChainOverdue | AlertKind::ChainResumed) {
            h.update(time.as_second().to_le_bytes());
        }
        Alert {
            id: hex::encode(&h.finalize()[..12]),
            kind,
            trail: info.arn.clone(),
            account: info.account.clone(),
            region: info.region.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            time: rfc3339(time),
            reason,
            detected: rfc3339(detected),
        }
    }

    /// One JSON object, without a newline.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// One line for a human on stderr.
    pub fn human_line(&self) -> String {
        format!(
            "ALERT {} {}/{} s3://{}/{} ({}): {}",
            self.kind.as_str(),
            self.account,
            self.region,
            self.bucket,
            self.key,
            self.time,
            self.reason
        )
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What one poll did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct PollOutcome {
    /// New alerts, recorded undelivered: write them, then call
    /// [`Follower::delivered`].
    pub alerts: Vec<Alert>,
    /// Every event of the poll's walks, per chain (start, verdicts, end).
    pub events: Vec<Event>,
    /// Chains polled.
    pub chains: usize,
    /// Digests walked.
    pub digests: usize,
    /// Log files whose hash was checked.
    pub logs: usize,
    /// Store calls made (list pages are counted once per call).
    pub requests: u64,
    /// More digests or log keys are waiting than one poll takes: poll again
    /// without waiting.
    pub backlog: bool,
}

/// One chain as the state holds it.
struct Chain {
    id: i64,
    info: Arc<TrailInfo>,
    /// The newest digest walked, its end, and its object (served to the
    /// walker instead of reading it again).
    last_key: Option<String>,
    last_end: Option<Timestamp>,
    last_object: Option<Object>,
    /// The start of the oldest digest walked: log files before it are not
    /// this monitor's to judge.
    first_start: Option<Timestamp>,
    overdue: bool,
    /// Changed by this poll: written back at its commit.
    dirty: bool,
}

impl Chain {
    fn folder(&self) -> Folder {
        Folder {
            bucket: self.info.bucket.clone(),
            prefix: self.info.prefix.clone(),
            org_id: self.info.org_id.clone(),
            account: self.info.account.clone(),
            region: self.info.region.clone(),
        }
    }
}

/// The SQLite schema of a follow state. Chains hold their newest digest's
/// bytes so that the next link is checked without reading it again.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chains (
    id INTEGER PRIMARY KEY,
    arn TEXT NOT NULL, bucket TEXT NOT NULL, prefix TEXT, org_id TEXT,
    account TEXT NOT NULL, region TEXT NOT NULL,
    trail_name TEXT NOT NULL, home_region TEXT NOT NULL,
    last_key TEXT, last_end INTEGER, last_bytes BLOB, last_metadata TEXT,
    first_start INTEGER, overdue INTEGER NOT NULL DEFAULT 0,
    UNIQUE (bucket, prefix, org_id, account, region, trail_name, home_region));
CREATE TABLE IF NOT EXISTS folders (folder TEXT PRIMARY KEY, cursor TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
    bucket TEXT NOT NULL, key TEXT NOT NULL, folder TEXT NOT NULL,
    time INTEGER NOT NULL, state INTEGER NOT NULL,
    PRIMARY KEY (bucket, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_pending ON logs (folder, state, time);
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, alert TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0);
";

/// Log file states in the `logs` table.
const LOG_SEEN: i64 = 0;
const LOG_ATTESTED: i64 = 1;
const LOG_REPORTED: i64 = 2;

/// How far back each poll lists log files again, for late deliveries.
const LOG_LOOKBACK_SECS: i64 = 7200;

/// Log files this close to the edges of what the digests cover are not
/// judged: names carry minutes and deliveries straddle digest boundaries
/// (the one-shot run's margin).
const EDGE_MARGIN_SECS: i64 = 600;

/// Watches what a [`FollowConfig`] selects in a store, poll after poll.
pub struct Follower<'a> {
    store: &'a dyn ObjectStore,
    keys: &'a PublicKeys,
    cfg: FollowConfig,
    db: Connection,
    path: std::path::PathBuf,
    chains: Vec<Chain>,
    last_discovery: Option<Timestamp>,
    keep: Option<Vec<u8>>,
    /// Runs the listings: more threads than cores, as they wait on I/O.
    listing: rayon::ThreadPool,
}

fn state_err(path: &Path, what: &str) -> impl FnOnce(rusqlite::Error) -> Error {
    let subject = path.display().to_string();
    let what = what.to_string();
    move |e| Error::new(ErrorKind::State, Some(subject), format!("{what}: {e}"))
}

impl<'a> Follower<'a> {
    /// Opens (or creates) the state at `path` for `cfg`.
    ///
    /// Fails when the state was made for another selection, or when another
    /// monitor holds it.
    pub fn open(
        store: &'a dyn ObjectStore,
        keys: &'a PublicKeys,
        cfg: FollowConfig,
        path: &Path,
    ) -> Result<Self, Error> {
        keys.require_some()?;
        cfg.validate.check(cfg.validate.start)?;
        let db = Connection::open(path).map_err(state_err(path, "cannot open the state"))?;
        // EXCLUSIVE keeps the file locked while the monitor runs: two
        // monitors on one state would alert twice.
        db.execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
        )
        .map_err(state_err(path, "cannot configure the state"))?;
        db.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
            .map_err(state_err(
                path,
                "cannot lock or create the state (is another monitor using it?)",
            ))?;
        let binding = cfg.binding();
        let bound: Option<String> = db
            .query_row("SELECT value FROM meta WHERE name = 'binding'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(state_err(path, "cannot read the state"))?;
        match bound {
            None => {
                db.execute(
                    "INSERT INTO meta (name, value) VALUES ('binding', ?1)",
                    [&binding],
                )
                .map_err(state_err(path, "cannot write the state"))?;
            }
            Some(b) if b == binding => {}
            Some(b) => {
                return Err(Error::new(
                    ErrorKind::State,
                    Some(path.display().to_string()),
                    format!(
                        "this state follows another selection ({b}), not {binding}: give another --state, or delete it to start over"
                    ),
                ));
            }
        }
        let keep: Option<Vec<u8>> = db
            .query_row("SELECT value FROM meta WHERE name = 'kept'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(state_err(path, "cannot read the state"))?;
        let listing = rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.list_concurrency.max(1))
            .thread_name(|i| format!("trailmill-follow-list-{i}"))
            .build()
            .map_err(|e| Error::new(ErrorKind::Io, None, format!("cannot start threads: {e}")))?;
        let mut f = Follower {
            store,
            keys,
            cfg,
            db,
            path: path.to_path_buf(),
            chains: Vec::new(),
            last_discovery: None,
            keep,
            listing,
        };
        f.load_chains()?;
        Ok(f)
    }

    fn load_chains(&mut self) -> Result<(), Error> {
        let start = self.cfg.validate.start;
        let mut stmt = self
            .db
            .prepare(
                "SELECT id, arn, bucket, prefix, org_id, account, region, trail_name, home_region,
                        last_key, last_end, last_bytes, last_metadata, first_start, overdue
                 FROM chains ORDER BY id",
            )
            .map_err(state_err(&self.path, "cannot read the state"))?;
        let rows = stmt
            .query_map([], |r| {
                let id: i64 = r.get(0)?;
                let info = TrailInfo {
                    index: id as usize,
                    arn: r.get(1)?,
                    bucket: r.get(2)?,
                    prefix: r.get(3)?,
                    org_id: r.get(4)?,
                    account: r.get(5)?,
                    region: r.get(6)?,
                    trail_name: r.get(7)?,
                    home_region: r.get(8)?,
                    start,
                    end: start,
                };
                let bytes: Option<Vec<u8>> = r.get(11)?;
                let meta: Option<String> = r.get(12)?;
                Ok(Chain {
                    id,
                    info: Arc::new(info),
                    last_key: r.get(9)?,
                    last_end: r
                        .get::<_, Option<i64>>(10)?
                        .and_then(|s| Timestamp::from_second(s).ok()),
                    last_object: bytes.map(|bytes| Object {
                        bytes,
                        metadata: meta.as_deref().map(metadata_from_json).unwrap_or_default(),
                    }),
                    first_start: r
                        .get::<_, Option<i64>>(13)?
                        .and_then(|s| Timestamp::from_second(s).ok()),
                    overdue: r.get::<_, i64>(14)? != 0,
                    dirty: false,
                })
            })
            .map_err(state_err(&self.path, "cannot read the state"))?;
        let mut chains = Vec::new();
        for c in rows {
            chains.push(c.map_err(state_err(&self.path, "cannot read the state"))?);
        }
        drop(stmt);
        self.chains = chains;
        Ok(())
    }

    /// Alerts recorded by an earlier poll but never marked delivered (the
    /// process stopped in between), oldest first. Deliver them before the
    /// next poll; a caller that can tell what it already wrote skips those.
    pub fn undelivered(&self) -> Result<Vec<Alert>, Error> {
        let mut stmt = self
            .db
            .prepare("SELECT alert FROM alerts WHERE delivered = 0 ORDER BY seq")
            .map_err(state_err(&self.path, "cannot read the state"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(state_err(&self.path, "cannot read the state"))?;
        let mut out = Vec::new();
        for r in rows {
            let text = r.map_err(state_err(&self.path, "cannot read the state"))?;
            if let Ok(a) = serde_json::from_str(&text) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Marks alerts as written.
    pub fn delivered(&mut self, alerts: &[Alert]) -> Result<(), Error> {
        let tx = self
            .db
            .transaction()
            .map_err(state_err(&self.path, "cannot write the state"))?;
        for a in alerts {
            tx.execute("UPDATE alerts SET delivered = 1 WHERE id = ?1", [&a.id])
                .map_err(state_err(&self.path, "cannot write the state"))?;
        }
        tx.commit()
            .map_err(state_err(&self.path, "cannot write the state"))
    }

    /// What the caller's `keep` returned at the last committed poll (see
    /// [`Follower::poll`]), as it was when the state was opened.
    pub fn kept(&self) -> Option<&[u8]> {
        self.keep.as_deref()
    }

    /// The chains being followed.
    pub fn chains(&self) -> usize {
        self.chains.len()
    }

    /// Polls once at `now`: discovers new chains when due, walks new
    /// digests, judges log files and deadlines, and commits.
    ///
    /// `keep` sees the poll's outcome before the commit and returns bytes to
    /// commit with it (or `None` to keep nothing): the caller's own state that
    /// must not run ahead of or behind the monitor's, such as the data of an
    /// HTML report, which [`Follower::kept`] returns after a restart.
    ///
    /// A listing error fails the poll and changes nothing: the next poll
    /// tries again from the same state.
    pub fn poll(
        &mut self,
        now: Timestamp,
        keep: &mut dyn FnMut(&PollOutcome) -> Option<Vec<u8>>,
    ) -> Result<PollOutcome, Error> {
        let result = self.poll_once(now, keep);
        if result.is_err() {
            // The chains in memory may have moved ahead of what was
            // committed: take them from the state again.
            self.load_chains()?;
        }
        result
    }

    fn poll_once(
        &mut self,
        now: Timestamp,
        keep: &mut dyn FnMut(&PollOutcome) -> Option<Vec<u8>>,
    ) -> Result<PollOutcome, Error> {
        let calls = AtomicU64::new(0);
        let counting = PollStore::new(self.store, &calls);
        if self
            .last_discovery
            .is_none_or(|t| now.as_second() - t.as_second() >= self.cfg.rediscover_secs)
        {
            self.discover(&counting, now)?;
            self.last_discovery = Some(now);
        }
        let cfg = &self.cfg;
        let max_digests = cfg.max_digests_per_poll.max(1);

        // 1. New digests per chain, in parallel.
        let chains = &self.chains;
        let listed: Vec<Result<(Vec<Listed>, bool), Error>> = self.listing.install(|| {
            chains
                .par_iter()
                .map(|c| list_new_digests(&counting, c, cfg.validate.start, max_digests))
                .collect()
        });
        let mut new_digests = Vec::with_capacity(listed.len());
        let mut behind = Vec::with_capacity(listed.len());
        for r in listed {
            let (l, more) = r?;
            behind.push(more);
            new_digests.push(l);
        }
        let mut backlog = behind.iter().any(|b| *b);
        // Offline, a digest's signature may only be known from the next
        // digest's link (a mirror made by `aws s3 sync` has no sidecars): the
        // newest such digest is walked only as a witness for the one before
        // it, and judged when its own successor arrives. Its arrival still
        // counts for the deadline.
        let mut arrived: Vec<Option<Timestamp>> = new_digests
            .iter()
            .map(|l| l.last().map(|d| d.time))
            .collect();
        let witnesses: Vec<bool> = if self.store.has_full_metadata() {
            vec![false; self.chains.len()]
        } else {
            self.chains
                .iter()
                .zip(&new_digests)
                .map(|(chain, new)| {
                    new.last().is_some_and(|d| {
                        counting
                            .get(&chain.info.bucket, &d.key)
                            .is_ok_and(|o| o.metadata.signature.is_none())
                    })
                })
                .collect()
        };

        // 2. New log keys per folder, in parallel.
        let mut folders: BTreeMap<String, Folder> = BTreeMap::new();
        for c in &self.chains {
            let f = c.folder();
            folders.entry(folder_id(&f)).or_insert(f);
        }
        let cursors = self.cursors()?;
        let log_lists: Vec<(String, Result<ListedLogs, Error>)> = self.listing.install(|| {
            folders
                .par_iter()
                .map(|(id, f)| {
                    let r = list_new_logs(
                        &counting,
                        f,
                        cursors.get(id).map(String::as_str),
                        cfg.validate.start,
                        now,
                        cfg.max_logs_per_poll.max(1),
                    );
                    (id.clone(), r)
                })
                .collect()
        });

        // 3. Walk the chains with new digests, in parallel.
        let keys = self.keys;
        let walks: Vec<Option<Result<Walked, Error>>> = self
            .chains
            .par_iter()
            .zip(new_digests.par_iter())
            .zip(witnesses.par_iter())
            .map(|((c, new), &witness)| {
                // A witness alone has nothing to vouch for yet.
                if new.len() <= usize::from(witness) {
                    return None;
                }
                Some(walk_chain(
                    &counting,
                    keys,
                    &cfg.validate,
                    c,
                    new,
                    witness,
                    now,
                ))
            })
            .collect();

        // 4. Apply everything in one transaction.
        let mut out = PollOutcome {
            chains: self.chains.len(),
            ..PollOutcome::default()
        };
        let mut alerts: Vec<Alert> = Vec::new();
        let tx = self
            .db
            .transaction()
            .map_err(state_err(&self.path, "cannot write the state"))?;
        let werr = |e: rusqlite::Error| {
            Error::new(
                ErrorKind::State,
                Some(self.path.display().to_string()),
                format!("cannot write the state: {e}"),
            )
        };
        // Folders whose listing has not reached now, with how far it got:
        // nothing after that is judged (or forgotten) yet.
        let mut listed_until: HashMap<String, i64> = HashMap::new();
        for (id, r) in log_lists {
            let (logs, cursor, more) = r?;
            backlog |= more;
            if more {
                let reached = cursor.as_deref().and_then(log_time).unwrap_or(i64::MIN);
                listed_until.insert(id.clone(), reached);
            }
            for (key, time) in logs {
                let bucket = &folders[&id].bucket;
                tx.execute(
                    "INSERT OR IGNORE INTO logs (bucket, key, folder, time, state) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![bucket, key, id, time, LOG_SEEN],
                )
                .map_err(werr)?;
            }
            if let Some(cursor) = cursor {
                tx.execute(
                    "INSERT INTO folders (folder, cursor) VALUES (?1, ?2)
                     ON CONFLICT (folder) DO UPDATE SET cursor = excluded.cursor",
                    params![id, cursor],
                )
                .map_err(werr)?;
            }
        }
        for (chain, walked) in self.chains.iter_mut().zip(walks) {
            let Some(walked) = walked else { continue };
            let walked = walked?;
            let fid = folder_id(&chain.folder());
            chain.dirty = true;
            out.digests += walked.digests;
            // A log file a digest lists is not unattested, even when that
            // digest is itself invalid (it is reported as such), as in a
            // one-shot run.
            for (bucket, key) in &walked.referenced {
                tx.execute(
                    "INSERT INTO logs (bucket, key, folder, time, state) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (bucket, key) DO UPDATE SET state = excluded.state WHERE state = ?6",
                    params![bucket, key, fid, log_time(key).unwrap_or(0), LOG_ATTESTED, LOG_SEEN],
                )
                .map_err(werr)?;
            }
            for ev in &walked.events {
                let Event::Verdict(v) = ev else { continue };
                if v.subject == Subject::Log {
                    out.logs += 1;
                    tx.execute(
                        "INSERT INTO logs (bucket, key, folder, time, state) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (bucket, key) DO UPDATE SET state = excluded.state",
                        params![v.bucket, v.key, fid, log_time(&v.key).unwrap_or(0), LOG_ATTESTED],
                    )
                    .map_err(werr)?;
                }
                if let Some(kind) = AlertKind::of(v) {
                    alerts.push(verdict_alert(kind, &chain.info, v, now));
                }
            }
            if chain.overdue {
                chain.overdue = false;
                alerts.push(Alert::new(
                    AlertKind::ChainResumed,
                    &chain.info,
                    &chain.info.bucket,
                    &walked.newest_key,
                    walked.newest_end,
                    format!(
                        "a digest arrived again, after the one ending {}",
                        chain.last_end.map_or_else(|| "never".into(), rfc3339)
                    ),
                    now,
                ));
            }
            chain.last_key = Some(walked.newest_key);
            chain.last_end = Some(walked.newest_end);
            if walked.newest_object.is_some() {
                chain.last_object = walked.newest_object;
            }
            if chain.first_start.is_none() {
                chain.first_start = walked.oldest_start;
            }
            out.events.extend(walked.events);
        }

        // Log files no digest lists, once the digests have moved past them.
        let mut by_folder: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in self.chains.iter().enumerate() {
            by_folder.entry(folder_id(&c.folder())).or_default().push(i);
        }
        let grace = cfg.unattested_grace_secs;
        for (fid, folder) in &folders {
            let members: Vec<&Chain> = by_folder
                .get(fid)
                .map(|ix| ix.iter().map(|&i| &self.chains[i]).collect())
                .unwrap_or_default();
            let covered_from = members.iter().filter_map(|c| c.first_start).min();
            let covered_to = members.iter().filter_map(|c| c.last_end).max();
            let (Some(from), Some(to)) = (covered_from, covered_to) else {
                continue;
            };
            let lo = from.as_second() + EDGE_MARGIN_SECS;
            let hi = (to.as_second() - EDGE_MARGIN_SECS)
                .min(now.as_second() - grace)
                .min(listed_until.get(fid).copied().unwrap_or(i64::MAX));
            let mut stmt = tx
                .prepare(
                    "SELECT key, time FROM logs WHERE folder = ?1 AND state = ?2 AND time >= ?3 AND time < ?4 ORDER BY key",
                )
                .map_err(werr)?;
            let found: Vec<(String, i64)> = stmt
                .query_map(params![fid, LOG_SEEN, lo, hi], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(werr)?
                .collect::<Result<_, _>>()
                .map_err(werr)?;
            drop(stmt);
            // Everything a day older than the judged span is settled (a log
            // file before the span's start can never be judged): forget it,
            // so that the table holds about a day per folder.
            tx.execute(
                "DELETE FROM logs WHERE folder = ?1 AND time < ?2",
                params![fid, hi - 86_400],
            )
            .map_err(werr)?;
            let Some(owner) = members.first() else {
                continue;
            };
            if !found.is_empty() {
                out.events.push(Event::TrailStarted(owner.info.clone()));
            }
            for (key, _) in found {
                tx.execute(
                    "UPDATE logs SET state = ?1 WHERE bucket = ?2 AND key = ?3",
                    params![LOG_REPORTED, folder.bucket, key],
                )
                .map_err(werr)?;
                let v = Verdict {
                    trail: owner.info.index,
                    subject: Subject::Log,
                    bucket: folder.bucket.clone(),
                    key,
                    status: Status::Invalid(Problem::Unattested),
                    period: None,
                    attested_sha256: None,
                };
                alerts.push(verdict_alert(
                    AlertKind::UnattestedLog,
                    &owner.info,
                    &v,
                    now,
                ));
                out.events.push(Event::Verdict(v));
            }
        }

        // Overdue chains.
        for ((chain, behind), arrived) in self.chains.iter_mut().zip(&behind).zip(&mut arrived) {
            // A chain still catching up is judged once it has caught up.
            let newest = chain.last_end.max(arrived.take());
            let (Some(end), false) = (newest, *behind) else {
                continue;
            };
            let deadline = add_secs(end, 3600 + cfg.overdue_grace_secs);
            if chain.overdue || now <= deadline {
                continue;
            }
            chain.overdue = true;
            chain.dirty = true;
            let key = chain.last_key.clone().unwrap_or_default();
            let v = Verdict {
                trail: chain.info.index,
                subject: Subject::Chain,
                bucket: chain.info.bucket.clone(),
                key: key.clone(),
                status: Status::Invalid(Problem::ChainEndsEarly {
                    newest_end: Some(end),
                    expected_until: deadline,
                }),
                period: Some((end, deadline)),
                attested_sha256: None,
            };
            alerts.push(Alert::new(
                AlertKind::ChainOverdue,
                &chain.info,
                &chain.info.bucket,
                &key,
                deadline,
                format!(
                    "no digest after the one ending {}: the next was due by {} (a stopped trail or a deleted digest)",
                    rfc3339(end),
                    rfc3339(deadline)
                ),
                now,
            ));
            out.events.push(Event::TrailStarted(chain.info.clone()));
            out.events.push(Event::Verdict(v));
        }

        for chain in self.chains.iter_mut().filter(|c| c.dirty) {
            chain.dirty = false;
            tx.execute(
                "UPDATE chains SET last_key = ?2, last_end = ?3, last_bytes = ?4, last_metadata = ?5,
                                   first_start = ?6, overdue = ?7 WHERE id = ?1",
                params![
                    chain.id,
                    chain.last_key,
                    chain.last_end.map(|t| t.as_second()),
                    chain.last_object.as_ref().map(|o| o.bytes.as_slice()),
                    chain.last_object.as_ref().map(|o| metadata_json(&o.metadata)),
                    chain.first_start.map(|t| t.as_second()),
                    i64::from(chain.overdue),
                ],
            )
            .map_err(werr)?;
        }
        for a in &alerts {
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO alerts (id, alert) VALUES (?1, ?2)",
                    params![a.id, a.json_line()],
                )
                .map_err(werr)?;
            if n == 1 {
                out.alerts.push(a.clone());
            }
        }
        out.requests = calls.load(Ordering::Relaxed);
        out.backlog = backlog;
        if let Some(data) = keep(&out) {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('kept', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [data],
            )
            .map_err(werr)?;
        }
        tx.commit().map_err(werr)?;
        Ok(out)
    }

    fn cursors(&self) -> Result<HashMap<String, String>, Error> {
        let mut stmt = self
            .db
            .prepare("SELECT folder, cursor FROM folders")
            .map_err(state_err(&self.path, "cannot read the state"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(state_err(&self.path, "cannot read the state"))?;
        rows.collect::<Result<_, _>>()
            .map_err(state_err(&self.path, "cannot read the state"))
    }

    /// Finds the chains the selection covers: over the whole range the first
    /// time, over the last two hours afterwards (a new trail, account or
    /// region starts delivering; its own listing then starts at the range's
    /// start).
    fn discover(&mut self, store: &dyn ObjectStore, now: Timestamp) -> Result<(), Error> {
        let mut c = self.cfg.validate.clone();
        if !self.chains.is_empty() {
            c.start = add_secs(now, -7200).max(c.start);
        }
        c.end = Some(now);
        c.expect_until = None;
        let plans = plan::plan(store, &c, now)?;
        for fp in plans {
            for t in fp.trails {
                let info = &t.info;
                let known = self.chains.iter().any(|k| {
                    let i = &k.info;
                    (
                        &i.bucket,
                        &i.prefix,
                        &i.org_id,
                        &i.account,
                        &i.region,
                        &i.trail_name,
                        &i.home_region,
                    ) == (
                        &info.bucket,
                        &info.prefix,
                        &info.org_id,
                        &info.account,
                        &info.region,
                        &info.trail_name,
                        &info.home_region,
                    )
                });
                if known {
                    continue;
                }
                self.db
                    .execute(
                        "INSERT OR IGNORE INTO chains (arn, bucket, prefix, org_id, account, region, trail_name, home_region)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            info.arn,
                            info.bucket,
                            info.prefix,
                            info.org_id,
                            info.account,
                            info.region,
                            info.trail_name,
                            info.home_region
                        ],
                    )
                    .map_err(state_err(&self.path, "cannot write the state"))?;
            }
        }
        self.load_chains()
    }
}

/// `s3://BUCKET/` + the folder's log prefix: one id per log folder.
fn folder_id(f: &Folder) -> String {
    format!("s3://{}/{}", f.bucket, f.service_prefix("CloudTrail"))
}

fn metadata_json(m: &ObjectMetadata) -> String {
    serde_json::json!({
        "signature": m.signature,
        "signature_algorithm": m.signature_algorithm,
        "backfill_generation_timestamp": m.backfill_generation_timestamp,
    })
    .to_string()
}

fn metadata_from_json(text: &str) -> ObjectMetadata {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let field = |n: &str| v.get(n).and_then(|x| x.as_str()).map(str::to_string);
    ObjectMetadata {
        signature: field("signature"),
        signature_algorithm: field("signature_algorithm"),
        backfill_generation_timestamp: field("backfill_generation_timestamp"),
    }
}

/// The Unix time in a log file's name.
fn log_time(key: &str) -> Option<i64> {
    ObjectKey::parse(key)
        .ok()
        .map(|k| k.file.time.unix_seconds())
}

fn verdict_alert(kind: AlertKind, info: &TrailInfo, v: &Verdict, now: Timestamp) -> Alert {
    let time = match (v.period, v.subject) {
        (Some((_, end)), _) => end,
        (None, Subject::Log) => log_time(&v.key)
            .and_then(|s| Timestamp::from_second(s).ok())
            .unwrap_or(now),
        (None, _) => digest_key_time(&v.key).unwrap_or(now),
    };
    let reason = v.problem().map(Problem::describe).unwrap_or_default();
    Alert::new(kind, info, &v.bucket, &v.key, time, reason, now)
}

/// The `StartAfter` that lists a log folder from minute `t` on.
fn log_start_after(f: &Folder, t: Timestamp) -> String {
    let date = KeyDate {
        year: t.strftime("%Y").to_string().parse().unwrap_or(1970),
        month: t.strftime("%m").to_string().parse().unwrap_or(1),
        day: t.strftime("%d").to_string().parse().unwrap_or(1),
    };
    let dir = day_prefix(
        f.prefix.as_deref(),
        f.org_id.as_deref(),
        &f.account,
        "CloudTrail",
        &f.region,
        date,
    );
    format!(
        "{dir}{}_CloudTrail_{}_{}",
        f.account,
        f.region,
        t.strftime("%Y%m%dT%H%M")
    )
}

/// Lists a chain's digests after the newest one walked (from the range's
/// start the first time), at most `max` of them; true when more wait.
fn list_new_digests(
    store: &dyn ObjectStore,
    chain: &Chain,
    start: Timestamp,
    max: usize,
) -> Result<(Vec<Listed>, bool), Error> {
    let folder = chain.folder();
    let base = folder.service_prefix("CloudTrail-Digest");
    let start_after = match &chain.last_key {
        Some(k) => k.clone(),
        None => format!("{base}{}", add_secs(start, -60).strftime("%Y/%m/%d")),
    };
    let info = &chain.info;
    let start_s = floor_second(start);
    let mut out = Vec::new();
    let mut more = false;
    let mut visit = |key: &str| -> ControlFlow<()> {
        let Ok(k) = ObjectKey::parse(key) else {
            return ControlFlow::Continue(());
        };
        let FileKind::Digest {
            trail,
            home_region,
            backfill: false,
        } = k.file.kind
        else {
            return ControlFlow::Continue(());
        };
        let same_chain = folder.holds(&k)
            && (trail, home_region) == (info.trail_name.as_str(), info.home_region.as_str());
        let Some(time) = digest_key_time(key) else {
            return ControlFlow::Continue(());
        };
        if !same_chain || time < start_s {
            return ControlFlow::Continue(());
        }
        if out.len() == max {
            more = true;
            return ControlFlow::Break(());
        }
        out.push(Listed {
            key: key.to_string(),
            time,
        });
        ControlFlow::Continue(())
    };
    store
        .list(&folder.bucket, &base, &start_after, &mut visit)
        .map_err(|e| Error::new(ErrorKind::List, Some(base.clone()), e.to_string()))?;
    Ok((out, more))
}

/// Lists a folder's log keys after its cursor, looking back two hours for
/// late deliveries. Returns the keys with their times, the new cursor, and
/// true when more wait.
type ListedLogs = (Vec<(String, i64)>, Option<String>, bool);

fn list_new_logs(
    store: &dyn ObjectStore,
    folder: &Folder,
    cursor: Option<&str>,
    start: Timestamp,
    now: Timestamp,
    max: usize,
) -> Result<ListedLogs, Error> {
    let base = folder.service_prefix("CloudTrail");
    let lookback = log_start_after(folder, add_secs(now, -LOG_LOOKBACK_SECS));
    let first = log_start_after(folder, add_secs(start, -3600));
    let start_after = match cursor {
        Some(c) if c < lookback.as_str() => c.to_string(),
        Some(_) => lookback,
        None => first,
    };
    let mut out = Vec::new();
    let mut last: Option<String> = None;
    let mut more = false;
    let start_s = start.as_second();
    let mut visit = |key: &str| -> ControlFlow<()> {
        if out.len() >= max {
            more = true;
            return ControlFlow::Break(());
        }
        last = Some(key.to_string());
        let Ok(k) = ObjectKey::parse(key) else {
            return ControlFlow::Continue(());
        };
        let ours = matches!(k.file.kind, FileKind::Log { .. }) && folder.holds(&k);
        let time = k.file.time.unix_seconds();
        if ours && time >= start_s {
            out.push((key.to_string(), time));
        }
        ControlFlow::Continue(())
    };
    store
        .list(&folder.bucket, &base, &start_after, &mut visit)
        .map_err(|e| Error::new(ErrorKind::List, Some(base.clone()), e.to_string()))?;
    Ok((out, last, more))
}

/// What walking one chain's new digests gave.
struct Walked {
    events: Vec<Event>,
    /// The log files the digests read list (bucket, key), verified or not.
    referenced: Vec<(String, String)>,
    digests: usize,
    newest_key: String,
    newest_end: Timestamp,
    newest_object: Option<Object>,
    oldest_start: Option<Timestamp>,
}

/// Walks `new` (oldest first) down to the chain's previous digest, which
/// the store serves from the state.
fn walk_chain(
    store: &PollStore<'_>,
    keys: &PublicKeys,
    cfg: &ValidateConfig,
    chain: &Chain,
    new: &[Listed],
    witness: bool,
    now: Timestamp,
) -> Result<Walked, Error> {
    // With a witness (the last of `new`), the walk reads it for the
    // signature it records of its predecessor, but neither judges it nor
    // moves past it.
    let witness_key = witness.then(|| new[new.len() - 1].key.clone());
    let newest = &new[new.len() - 1 - usize::from(witness)];
    let mut info = (*chain.info).clone();
    // The walk stops once a digest starts before `start`: after the oldest
    // new digest (digests cover an hour), whose link to the digest walked
    // before is still checked.
    info.start = match &chain.last_key {
        Some(_) => add_secs(new[0].time, -1800),
        None => cfg.start,
    };
    info.end = now;
    let info = Arc::new(info);
    let pinned = store.walking(
        chain
            .last_key
            .clone()
            .zip(chain.last_object.clone())
            .map(|(k, o)| (chain.info.bucket.clone(), k, o)),
    );
    let plan = TrailPlan {
        info: info.clone(),
        standard: new.to_vec(),
        backfill: Vec::new(),
        newest: Some(newest.time),
    };
    let mut events = Vec::new();
    let mut walker = Walker::new(&pinned, keys, cfg);
    walker.run_trail(&plan, None, &mut |e| {
        let of_witness = matches!(&e, Event::Verdict(v) if Some(&v.key) == witness_key.as_ref());
        if !of_witness {
            events.push(e);
        }
    })?;
    let referenced: Vec<(String, String)> = walker.referenced().iter().cloned().collect();

    // The walk stops at the range's edge, before reporting the digest the
    // oldest new one links to. When the chain had a digest before, that
    // link must lead to it: a digest it names that does not exist was
    // deleted (and, when more time passed, more were).
    let reported: HashSet<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Verdict(v) => Some(v.key.clone()),
            _ => None,
        })
        .collect();
    let mut extra = Vec::new();
    if let Some(last) = &chain.last_key {
        let missing = pinned.not_found.into_inner().unwrap_or_default();
        for key in missing {
            if reported.contains(&key) || key == *last || !key.contains("/CloudTrail-Digest/") {
                continue;
            }
            extra.push(Verdict {
                trail: info.index,
                subject: Subject::Digest,
                bucket: info.bucket.clone(),
                key: key.clone(),
                status: Status::Invalid(Problem::NotFound { detail: None }),
                period: None,
                attested_sha256: None,
            });
            if let (Some(missing_end), Some(last_time)) =
                (digest_key_time(&key), digest_key_time(last))
            {
                let more = ((missing_end.as_second() - last_time.as_second()) as f64 / 3600.0)
                    .round() as i64
                    - 1;
                for i in 1..=more.clamp(0, 1000) {
                    let estimated_end = add_secs(missing_end, -i * 3600);
                    extra.push(Verdict {
                        trail: info.index,
                        subject: Subject::Digest,
                        bucket: info.bucket.clone(),
                        key: estimated_key(&key, estimated_end),
                        status: Status::Invalid(Problem::MissingInferred {
                            estimated_end,
                            after: format!("s3://{}/{last}", info.bucket),
                            before: format!("s3://{}/{key}", info.bucket),
                        }),
                        period: None,
                        attested_sha256: None,
                    });
                }
            }
        }
    }
    if !extra.is_empty() {
        let at = events
            .iter()
            .rposition(|e| matches!(e, Event::TrailFinished { .. }))
            .unwrap_or(events.len());
        events.splice(at..at, extra.into_iter().map(Event::Verdict));
    }
    let mut newest_end = newest.time;
    let mut oldest_start = None;
    for e in &events {
        if let Event::Verdict(v) = e
            && v.subject == Subject::Digest
            && let Some((s, end)) = v.period
        {
            if v.key == newest.key {
                newest_end = end;
            }
            oldest_start = Some(oldest_start.map_or(s, |o: Timestamp| o.min(s)));
        }
    }
    let newest_object = pinned
        .captured
        .into_inner()
        .unwrap_or_default()
        .remove(&newest.key);
    Ok(Walked {
        events,
        referenced,
        digests: new.len() - usize::from(witness),
        newest_key: newest.key.clone(),
        newest_end,
        newest_object,
        oldest_start,
    })
}

/// The store as a poll sees it: every call is counted; while walking a
/// chain, the chain's previous digest is served from the state, and the
/// digests the walk reads (the newest becomes the next poll's previous) and
/// the digest keys it does not find are kept.
struct PollStore<'a> {
    inner: &'a dyn ObjectStore,
    calls: &'a AtomicU64,
    pinned: Option<(String, String, Object)>,
    walking: bool,
    captured: Mutex<HashMap<String, Object>>,
    not_found: Mutex<Vec<String>>,
}

impl<'a> PollStore<'a> {
    fn new(inner: &'a dyn ObjectStore, calls: &'a AtomicU64) -> Self {
        PollStore {
            inner,
            calls,
            pinned: None,
            walking: false,
            captured: Mutex::new(HashMap::new()),
            not_found: Mutex::new(Vec::new()),
        }
    }

    /// The store for walking one chain whose previous digest is `pinned`
    /// (bucket, key, object).
    fn walking(&self, pinned: Option<(String, String, Object)>) -> PollStore<'a> {
        PollStore {
            pinned,
            walking: true,
            ..PollStore::new(self.inner, self.calls)
        }
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl ObjectStore for PollStore<'_> {
    fn get(&self, bucket: &str, key: &str) -> Result<Object, StoreError> {
        if let Some((b, k, o)) = &self.pinned
            && b == bucket
            && k == key
        {
            return Ok(o.clone());
        }
        self.count();
        let r = self.inner.get(bucket, key);
        if self.walking {
            match &r {
                Ok(o) => {
                    if let Ok(mut c) = self.captured.lock() {
                        c.insert(key.to_string(), o.clone());
                    }
                }
                Err(StoreError::NotFound) => {
                    if let Ok(mut n) = self.not_found.lock() {
                        n.push(key.to_string());
                    }
                }
                Err(_) => {}
            }
        }
        r
    }
    fn read_into(&self, bucket: &str, key: &str, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        self.count();
        self.inner.read_into(bucket, key, buf)
    }
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        self.count();
        self.inner.list(bucket, prefix, start_after, visit)
    }
    fn list_dirs(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.count();
        self.inner.list_dirs(bucket, prefix)
    }
    fn prefetch(&self, objects: &[(&str, &str)]) {
        self.inner.prefetch(objects);
    }
    fn has_full_metadata(&self) -> bool {
        self.inner.has_full_metadata()
    }
}
