//! Turning a [`ValidateConfig`] into the chains to walk: listing digest keys
//! and, with `--all`, discovering every trail under the prefix.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use jiff::Timestamp;
use trailmill_core::key::{Extension, FileKind, Location, ObjectKey};

use crate::config::{Selection, TrailArn, ValidateConfig};
use crate::error::{Error, ErrorKind};
use crate::store::{ObjectStore, StoreError};
use crate::time::{add_secs, digest_key_time, floor_second};
use crate::verdict::TrailInfo;

/// A digest key found by listing, with the time its name carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listed {
    pub key: String,
    pub time: Timestamp,
}

/// One account and region folder of one bucket and prefix: the unit whose
/// log files are checked for references.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Folder {
    pub bucket: String,
    pub prefix: Option<String>,
    pub org_id: Option<String>,
    pub account: String,
    pub region: String,
}

impl Folder {
    /// `[prefix/]AWSLogs/[org/]ACCOUNT/SERVICE/REGION/`.
    pub fn service_prefix(&self, service: &str) -> String {
        let mut s = String::new();
        if let Some(p) = &self.prefix {
            s.push_str(p);
            s.push('/');
        }
        s.push_str("AWSLogs/");
        if let Some(o) = &self.org_id {
            s.push_str(o);
            s.push('/');
        }
        s.push_str(&format!("{}/{service}/{}/", self.account, self.region));
        s
    }

    /// True when `key` names a `.json.gz` file of this folder's prefix,
    /// organization, account and region (of any service).
    pub fn holds(&self, key: &ObjectKey<'_>) -> bool {
        key.location
            == Location::AwsLogs {
                prefix: self.prefix.as_deref(),
                org_id: self.org_id.as_deref(),
            }
            && key.file.account == self.account
            && key.file.region == self.region
            && key.file.extension == Extension::JsonGz
    }
}

/// One trail's chain in one region, with its digest keys.
#[derive(Clone, Debug)]
pub(crate) struct TrailPlan {
    pub info: Arc<TrailInfo>,
    /// Regular digests in the CLI's range (`start` to `end` + 1 h), key order.
    pub standard: Vec<Listed>,
    /// Backfill digests in that range, key order.
    pub backfill: Vec<Listed>,
    /// The newest regular digest time listed (up to `expect_until` + 1 h).
    pub newest: Option<Timestamp>,
}

/// The trails that share a folder, validated one after the other.
#[derive(Clone, Debug)]
pub(crate) struct FolderPlan {
    pub folder: Folder,
    pub trails: Vec<TrailPlan>,
}

fn list_err(what: &str, e: StoreError) -> Error {
    Error::new(ErrorKind::List, Some(what.to_string()), e.to_string())
}

/// Digest keys of one folder, grouped by (trail name, home region).
type Grouped = BTreeMap<(String, String), (Vec<Listed>, Vec<Listed>, Option<Timestamp>)>;

/// Lists the digest keys of `folder` from the CLI's marker (`start` minus a
/// minute) to `limit` (inclusive, second precision), keeping those whose time
/// is at least `start`; regular ones up to `range_end` go to the walk list.
fn list_folder(
    store: &dyn ObjectStore,
    folder: &Folder,
    start: Timestamp,
    range_end: Timestamp,
    limit: Timestamp,
    only: Option<(&str, &str)>,
) -> Result<Grouped, Error> {
    let base = folder.service_prefix("CloudTrail-Digest");
    let marker_day = add_secs(start, -60).strftime("%Y/%m/%d").to_string();
    let start_after = format!("{base}{marker_day}");
    let limit_day = limit.strftime("%Y/%m/%d").to_string();
    let (start_s, end_s, limit_s) = (
        floor_second(start),
        floor_second(range_end),
        floor_second(limit),
    );
    let mut out: Grouped = BTreeMap::new();
    let mut visit = |key: &str| -> ControlFlow<()> {
        let rest = &key[base.len().min(key.len())..];
        if rest.get(..10).is_some_and(|day| day > limit_day.as_str()) {
            return ControlFlow::Break(());
        }
        let Ok(k) = ObjectKey::parse(key) else {
            return ControlFlow::Continue(());
        };
        let FileKind::Digest {
            trail,
            home_region,
            backfill,
        } = k.file.kind
        else {
            return ControlFlow::Continue(());
        };
        if !folder.holds(&k) || only.is_some_and(|(t, h)| (t, h) != (trail, home_region)) {
            return ControlFlow::Continue(());
        }
        let Some(time) = digest_key_time(key) else {
            return ControlFlow::Continue(());
        };
        if time < start_s || time > limit_s {
            return ControlFlow::Continue(());
        }
        let entry = out
            .entry((trail.to_string(), home_region.to_string()))
            .or_default();
        let listed = Listed {
            key: key.to_string(),
            time,
        };
        if backfill {
            if time <= end_s {
                entry.1.push(listed);
            }
        } else {
            entry.2 = Some(entry.2.map_or(time, |t: Timestamp| t.max(time)));
            if time <= end_s {
                entry.0.push(listed);
            }
        }
        ControlFlow::Continue(())
    };
    store
        .list(&folder.bucket, &base, &start_after, &mut visit)
        .map_err(|e| list_err(&base, e))?;
    Ok(out)
}

/// Lists one trail's digests in `bucket` for the walk (also used when a chain
/// moves to another bucket). Returns (regular, backfill).
pub(crate) fn list_trail(
    store: &dyn ObjectStore,
    info: &TrailInfo,
    bucket: &str,
    start: Timestamp,
    end: Timestamp,
) -> Result<(Vec<Listed>, Vec<Listed>), Error> {
    let folder = Folder {
        bucket: bucket.to_string(),
        prefix: info.prefix.clone(),
        org_id: info.org_id.clone(),
        account: info.account.clone(),
        region: info.region.clone(),
    };
    let range_end = add_secs(end, 3600);
    let mut g = list_folder(
        store,
        &folder,
        start,
        range_end,
        range_end,
        Some((&info.trail_name, &info.home_region)),
    )?;
    Ok(
        g.remove(&(info.trail_name.clone(), info.home_region.clone()))
            .map(|(s, b, _)| (s, b))
            .unwrap_or_default(),
    )
}

/// Plans the run: the folders and trails to validate, in output order.
pub(crate) fn plan(
    store: &dyn ObjectStore,
    cfg: &ValidateConfig,
    end: Timestamp,
) -> Result<Vec<FolderPlan>, Error> {
    let range_end = add_secs(end, 3600);
    let limit = add_secs(cfg.expect_until.map_or(end, |t| t.max(end)), 3600);
    let bucket_arg = cfg.bucket.clone().unwrap_or_default();
    match &cfg.selection {
        Selection::Trail(arn) => {
            let folder = Folder {
                bucket: bucket_arg,
                prefix: cfg.s3_prefix.clone(),
                org_id: cfg.org_id.clone(),
                account: cfg
                    .account_id
                    .clone()
                    .unwrap_or_else(|| arn.account.clone()),
                region: cfg.region.clone().unwrap_or_else(|| arn.region.clone()),
            };
            let mut g = list_folder(
                store,
                &folder,
                cfg.start,
                range_end,
                limit,
                Some((&arn.name, &arn.region)),
            )?;
            let (standard, backfill, newest) = g
                .remove(&(arn.name.clone(), arn.region.clone()))
                .unwrap_or_default();
            let folder = infer_bucket(store, cfg, folder, &standard, &backfill);
            let info = TrailInfo {
                index: 0,
                arn: arn.arn.clone(),
                bucket: folder.bucket.clone(),
                prefix: folder.prefix.clone(),
                org_id: folder.org_id.clone(),
                account: folder.account.clone(),
                region: folder.region.clone(),
                home_region: arn.region.clone(),
                trail_name: arn.name.clone(),
                start: cfg.start,
                end,
            };
            Ok(vec![FolderPlan {
                folder,
                trails: vec![TrailPlan {
                    info: Arc::new(info),
                    standard,
                    backfill,
                    newest,
                }],
            }])
        }
        Selection::All => {
            let mut folders = Vec::new();
            let base = cfg
                .s3_prefix
                .as_ref()
                .map(|p| format!("{p}/"))
                .unwrap_or_default();
            discover(store, cfg, &bucket_arg, &base, 0, &mut folders)?;
            folders.sort();
            folders.dedup();
            let mut plans = Vec::new();
            let mut index = 0;
            for folder in folders {
                let g = list_folder(store, &folder, cfg.start, range_end, limit, None)?;
                if g.is_empty() {
                    continue;
                }
                let all_standard: Vec<Listed> =
                    g.values().flat_map(|v| v.0.iter().cloned()).collect();
                let all_backfill: Vec<Listed> =
                    g.values().flat_map(|v| v.1.iter().cloned()).collect();
                let folder = infer_bucket(store, cfg, folder, &all_standard, &all_backfill);
                let mut trails = Vec::new();
                for ((name, home), (standard, backfill, newest)) in g {
                    let info = TrailInfo {
                        index,
                        arn: TrailArn::build(&home, &folder.account, &name),
                        bucket: folder.bucket.clone(),
                        prefix: folder.prefix.clone(),
                        org_id: folder.org_id.clone(),
                        account: folder.account.clone(),
                        region: folder.region.clone(),
                        home_region: home,
                        trail_name: name,
                        start: cfg.start,
                        end,
                    };
                    index += 1;
                    trails.push(TrailPlan {
                        info: Arc::new(info),
                        standard,
                        backfill,
                        newest,
                    });
                }
                plans.push(FolderPlan { folder, trails });
            }
            Ok(plans)
        }
    }
}

/// Without `--bucket`, takes the bucket name from the newest digest that
/// records one (a local mirror answers for any name).
fn infer_bucket(
    store: &dyn ObjectStore,
    cfg: &ValidateConfig,
    mut folder: Folder,
    standard: &[Listed],
    backfill: &[Listed],
) -> Folder {
    if cfg.bucket.is_some() {
        return folder;
    }
    let mut buf = Vec::new();
    for l in standard.iter().rev().chain(backfill.iter().rev()).take(8) {
        let Ok(obj) = store.get(&folder.bucket, &l.key) else {
            continue;
        };
        if trailmill_core::gzip::inflate_into(&obj.bytes, &mut buf, cfg.max_digest_bytes).is_err() {
            continue;
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf)
            && let Some(b) = v.get("digestS3Bucket").and_then(|b| b.as_str())
        {
            folder.bucket = b.to_string();
            return folder;
        }
    }
    folder
}

const MAX_PREFIX_DEPTH: usize = 8;

/// Finds the digest folders under `dir` (empty or ending in `/`).
fn discover(
    store: &dyn ObjectStore,
    cfg: &ValidateConfig,
    bucket: &str,
    dir: &str,
    depth: usize,
    out: &mut Vec<Folder>,
) -> Result<(), Error> {
    let dirs = store.list_dirs(bucket, dir).map_err(|e| list_err(dir, e))?;
    for sub in dirs {
        let name = sub[dir.len()..].trim_end_matches('/');
        if name == "AWSLogs" {
            let prefix = dir.strip_suffix('/').map(str::to_string);
            discover_awslogs(store, cfg, bucket, &sub, prefix, out)?;
        } else if depth < MAX_PREFIX_DEPTH {
            discover(store, cfg, bucket, &sub, depth + 1, out)?;
        }
    }
    Ok(())
}

fn discover_awslogs(
    store: &dyn ObjectStore,
    cfg: &ValidateConfig,
    bucket: &str,
    awslogs: &str,
    prefix: Option<String>,
    out: &mut Vec<Folder>,
) -> Result<(), Error> {
    for sub in store
        .list_dirs(bucket, awslogs)
        .map_err(|e| list_err(awslogs, e))?
    {
        let name = sub[awslogs.len()..].trim_end_matches('/').to_string();
        if name.starts_with("o-") {
            if cfg.org_id.as_ref().is_some_and(|o| *o != name) {
                continue;
            }
            for acct in store
                .list_dirs(bucket, &sub)
                .map_err(|e| list_err(&sub, e))?
            {
                let account = acct[sub.len()..].trim_end_matches('/').to_string();
                discover_account(
                    store,
                    cfg,
                    bucket,
                    &acct,
                    &prefix,
                    Some(name.clone()),
                    account,
                    out,
                )?;
            }
        } else if cfg.org_id.is_none() {
            discover_account(store, cfg, bucket, &sub, &prefix, None, name, out)?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn discover_account(
    store: &dyn ObjectStore,
    cfg: &ValidateConfig,
    bucket: &str,
    account_dir: &str,
    prefix: &Option<String>,
    org_id: Option<String>,
    account: String,
    out: &mut Vec<Folder>,
) -> Result<(), Error> {
    if cfg.account_id.as_ref().is_some_and(|a| *a != account) {
        return Ok(());
    }
    let digests = format!("{account_dir}CloudTrail-Digest/");
    for r in store
        .list_dirs(bucket, &digests)
        .map_err(|e| list_err(&digests, e))?
    {
        let region = r[digests.len()..].trim_end_matches('/').to_string();
        if cfg.region.as_ref().is_some_and(|x| *x != region) {
            continue;
        }
        out.push(Folder {
            bucket: bucket.to_string(),
            prefix: prefix.clone(),
            org_id: org_id.clone(),
            account: account.clone(),
            region,
        });
    }
    Ok(())
}
