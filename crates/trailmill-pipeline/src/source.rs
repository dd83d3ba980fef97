//! Where log objects come from.
//!
//! A [`Source`] lists objects and reads them. Listing runs on its own thread
//! and streams [`SourceObject`]s to the workers, so processing starts before
//! listing ends; reading runs on the worker that processes the object.
//!
//! [`LocalSource`] reads a directory laid out as a bucket root (what
//! `aws s3 sync s3://bucket DIR` makes), any tree of CloudTrail files, or single
//! files. Files are memory-mapped.

use std::fmt;
use std::fs::File;
use std::ops::{ControlFlow, Deref};
use std::path::{Path, PathBuf};

use trailmill_core::filter::{Selection, Skip};
use trailmill_core::key::{ClaimedKind, Classified, ObjectKey};

/// One object to process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceObject {
    /// The name shown to users: a file path, or `s3://bucket/key`.
    pub name: String,
    /// The object key (for local files, the path below the source root with `/`
    /// separators), which the key grammar parses.
    pub key: String,
    /// Size in bytes, when the listing knows it.
    pub size: Option<u64>,
    /// What identifies this version of the object, when the listing knows it:
    /// the S3 ETag, or a local file's modification time (`mtime:SECS.NANOS`).
    /// The state store uses it to notice an object that changed since it was
    /// processed.
    pub version: Option<String>,
    /// A value the source assigns and gets back untouched in the pipeline's
    /// callbacks, to find its own bookkeeping (the SQS source: which message
    /// the object came from). Zero when unused.
    pub tag: u64,
}

impl SourceObject {
    /// An object with the given display name and key, and nothing else known.
    pub fn new(name: impl Into<String>, key: impl Into<String>) -> Self {
        SourceObject {
            name: name.into(),
            key: key.into(),
            size: None,
            version: None,
            tag: 0,
        }
    }

    /// The parsed key, or why it is not a CloudTrail key.
    pub fn classify(&self) -> Classified<'_> {
        ObjectKey::classify(&self.key)
    }
}

/// The bytes of one object: mapped from a file, or owned.
pub enum ObjectData {
    /// A memory-mapped file.
    Mapped(memmap2::Mmap),
    /// Bytes in memory (small files, downloads).
    Owned(Vec<u8>),
}

impl Deref for ObjectData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ObjectData::Mapped(m) => m,
            ObjectData::Owned(v) => v,
        }
    }
}

/// A failure to list or read, with the object or path it concerns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct SourceError {
    /// The object or directory.
    pub name: String,
    /// What went wrong.
    pub reason: String,
}

impl SourceError {
    /// An error about `name`.
    pub fn new(name: impl fmt::Display, reason: impl fmt::Display) -> Self {
        SourceError {
            name: name.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// What a listing passed over, by reason, and what it could not list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListStats {
    /// Objects listed for processing.
    pub listed: u64,
    /// Digest files (validated by `trailmill validate`, never read as events).
    pub skipped_digests: u64,
    /// Insights files without `--include-insights`.
    pub skipped_insights: u64,
    /// Outside the selection's accounts, regions, organizations, prefix or times.
    pub skipped_unselected: u64,
    /// Selected, but in another shard (`--shard`).
    pub skipped_other_shards: u64,
    /// Files that are not CloudTrail keys in a tree that holds CloudTrail keys,
    /// or not JSON files at all.
    pub skipped_other: u64,
    /// Passed over by the caller's source filter.
    pub skipped_by_filter: u64,
    /// Files named like CloudTrail files (`ACCOUNT_CloudTrail_…`) whose names
    /// do not follow the key grammar, whatever became of them (see
    /// [`ListStats::admit_misnamed`]): those read are also counted in
    /// `listed`, those passed over in their reason's counter.
    pub misnamed: u64,
    /// Directories or files that could not be listed.
    pub errors: Vec<SourceError>,
}

impl ListStats {
    /// Decides what a listing does with the object `name` (key `key`) that the
    /// key grammar rejected for `reason`, and whose file name still claims to
    /// be a CloudTrail file ([`ClaimedKind`]). Such a file is not skipped as
    /// "other", which would drop its events silently:
    /// - a log file is read as an export: `selection`'s prefix, organization
    ///   and shard apply to its key, and its accounts, regions and times to
    ///   its events;
    /// - an Insights file likewise, with [`Selection::include_insights`];
    /// - a digest is never read as events.
    ///
    /// Each one is counted in [`ListStats::misnamed`] and gets a warning that
    /// names the file, the reason and what was done. Returns `None` when the
    /// name claims no CloudTrail kind (the caller's rules for other files
    /// apply), and otherwise whether to read the object.
    pub fn admit_misnamed(
        &mut self,
        name: &str,
        key: &str,
        reason: &str,
        selection: &Selection,
    ) -> Option<bool> {
        let claimed = ClaimedKind::of(key)?;
        self.misnamed += 1;
        let decision = match claimed {
            ClaimedKind::Digest => Err(Skip::Digest),
            ClaimedKind::Insight if !selection.include_insights => Err(Skip::Insight),
            ClaimedKind::Log | ClaimedKind::Insight => selection.check_keyless(key),
        };
        let what = match claimed {
            ClaimedKind::Log => "log file",
            ClaimedKind::Insight => "Insights file",
            ClaimedKind::Digest => "digest file",
        };
        let done = match decision {
            Ok(()) => {
                "read as an export (the selection's accounts, regions and times apply to its events)"
            }
            Err(Skip::Digest) => "not read (digests are never read as events)",
            Err(Skip::Insight) => "not read (Insights files need --include-insights)",
            Err(Skip::NotSelected) => "not read (outside the selection's prefix or organization)",
            Err(Skip::OtherShard) => "left to another shard",
        };
        tracing::warn!(
            file = %name,
            "named like a CloudTrail {what}, but the name does not follow CloudTrail's key grammar ({reason}); {done}"
        );
        match decision {
            Ok(()) => Some(true),
            Err(why) => {
                self.count_skip(why);
                Some(false)
            }
        }
    }

    /// Counts one object passed over for `why`.
    pub fn count_skip(&mut self, why: Skip) {
        match why {
            Skip::Digest => self.skipped_digests += 1,
            Skip::Insight => self.skipped_insights += 1,
            Skip::NotSelected => self.skipped_unselected += 1,
            Skip::OtherShard => self.skipped_other_shards += 1,
        }
    }
}

/// Lists and reads objects.
pub trait Source: Sync {
    /// Streams the objects that `selection` keeps to `emit`, stopping early if
    /// `emit` breaks. Objects and directories that cannot be listed are recorded
    /// in the returned stats; the listing goes on.
    fn list(
        &self,
        selection: &Selection,
        emit: &mut dyn FnMut(SourceObject) -> ControlFlow<()>,
    ) -> ListStats;

    /// Reads one listed object.
    fn read(&self, object: &SourceObject) -> Result<ObjectData, SourceError>;

    /// Says that `object` will be read soon. The pipeline calls it on its
    /// lister thread for each object it queues for the workers, in queue
    /// order, after its source filter, so only objects that will be read are
    /// announced. A source that downloads starts fetching here, so that
    /// [`read`](Self::read), called later from a CPU worker, usually finds the
    /// bytes ready. The default does nothing (local files need no warning).
    fn will_read(&self, object: &SourceObject) {
        let _ = object;
    }
}

/// Files and directory trees on the local disk.
#[derive(Clone, Debug)]
pub struct LocalSource {
    roots: Vec<PathBuf>,
}

/// File-name endings read when a tree holds no CloudTrail keys at all (an export).
const JSON_ENDINGS: &[&str] = &[
    ".json",
    ".json.gz",
    ".jsonl",
    ".jsonl.gz",
    ".ndjson",
    ".ndjson.gz",
];

impl LocalSource {
    /// A source over these files and directories.
    pub fn new(roots: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        LocalSource {
            roots: roots.into_iter().map(Into::into).collect(),
        }
    }

    fn list_root(
        &self,
        root: &Path,
        selection: &Selection,
        emit: &mut dyn FnMut(SourceObject) -> ControlFlow<()>,
        stats: &mut ListStats,
    ) -> ControlFlow<()> {
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) => {
                stats.errors.push(SourceError::new(root.display(), e));
                return ControlFlow::Continue(());
            }
        };
        if meta.is_file() {
            // A file named on its own is always read, whatever its name, unless
            // its key says it is a digest or outside the selection.
            let key = root
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            let object = SourceObject {
                name: root.display().to_string(),
                key,
                size: Some(meta.len()),
                version: mtime_version(&meta),
                tag: 0,
            };
            let checked = match object.classify() {
                Classified::Trail(k) => selection.check(&object.key, &k),
                Classified::Other { reason } => {
                    match stats.admit_misnamed(&object.name, &object.key, &reason, selection) {
                        Some(true) => Ok(()),
                        Some(false) => return ControlFlow::Continue(()),
                        None => selection.check_keyless(&object.key),
                    }
                }
            };
            if let Err(why) = checked {
                stats.count_skip(why);
                return ControlFlow::Continue(());
            }
            stats.listed += 1;
            return emit(object);
        }
        // In a tree that holds CloudTrail keys (a bucket root or a synced
        // sub-tree), only CloudTrail keys are read, so a bucket's other objects
        // (Config snapshots, key lists, …) are not mistaken for logs. A tree with
        // no CloudTrail key at all is an export: every JSON file is read.
        let trail_tree = walk(root).any(|entry| {
            entry.ok().is_some_and(|e| {
                e.file_type().is_file()
                    && matches!(
                        ObjectKey::classify(&relative_key(root, e.path())),
                        Classified::Trail(_)
                    )
            })
        });
        for entry in walk(root) {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e
                        .path()
                        .map_or_else(|| root.display().to_string(), |p| p.display().to_string());
                    stats.errors.push(SourceError::new(path, e));
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let key = relative_key(root, entry.path());
            let meta = entry.metadata().ok();
            let object = SourceObject {
                name: entry.path().display().to_string(),
                key,
                size: meta.as_ref().map(|m| m.len()),
                version: meta.as_ref().and_then(mtime_version),
                tag: 0,
            };
            match object.classify() {
                Classified::Trail(k) => {
                    if let Err(why) = selection.check(&object.key, &k) {
                        stats.count_skip(why);
                        continue;
                    }
                }
                Classified::Other { reason } => {
                    match stats.admit_misnamed(&object.name, &object.key, &reason, selection) {
                        Some(true) => {}
                        Some(false) => continue,
                        None => {
                            let is_json = JSON_ENDINGS.iter().any(|end| object.key.ends_with(end));
                            if trail_tree || !is_json {
                                stats.skipped_other += 1;
                                continue;
                            }
                            if let Err(why) = selection.check_keyless(&object.key) {
                                stats.count_skip(why);
                                continue;
                            }
                        }
                    }
                }
            }
            stats.listed += 1;
            emit(object)?;
        }
        ControlFlow::Continue(())
    }
}

fn walk(root: &Path) -> walkdir::IntoIter {
    walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
}

fn relative_key(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut key = String::new();
    for (i, part) in rel.components().enumerate() {
        if i > 0 {
            key.push('/');
        }
        key.push_str(&part.as_os_str().to_string_lossy());
    }
    key
}

impl Source for LocalSource {
    fn list(
        &self,
        selection: &Selection,
        emit: &mut dyn FnMut(SourceObject) -> ControlFlow<()>,
    ) -> ListStats {
        let mut stats = ListStats::default();
        for root in &self.roots {
            if self.list_root(root, selection, emit, &mut stats).is_break() {
                break;
            }
        }
        stats
    }

    fn read(&self, object: &SourceObject) -> Result<ObjectData, SourceError> {
        // Small files are cheaper to read than to map.
        const MAP_THRESHOLD: u64 = 256 << 10;
        let file = File::open(&object.name).map_err(|e| SourceError::new(&object.name, e))?;
        let len = file
            .metadata()
            .map_err(|e| SourceError::new(&object.name, e))?
            .len();
        if len < MAP_THRESHOLD {
            let mut bytes = Vec::with_capacity(len as usize);
            std::io::Read::read_to_end(&mut &file, &mut bytes)
                .map_err(|e| SourceError::new(&object.name, e))?;
            return Ok(ObjectData::Owned(bytes));
        }
        // SAFETY: the map is read-only and private to this process. If another
        // process truncates the file while it is mapped, reads may fault; that is
        // the accepted trade-off of mapping (as in ripgrep), and CloudTrail files
        // are written once.
        let map =
            unsafe { memmap2::Mmap::map(&file) }.map_err(|e| SourceError::new(&object.name, e))?;
        Ok(ObjectData::Mapped(map))
    }
}

/// A local file's version: its modification time, to the nanosecond.
fn mtime_version(meta: &std::fs::Metadata) -> Option<String> {
    let since_epoch = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "mtime:{}.{:09}",
        since_epoch.as_secs(),
        since_epoch.subsec_nanos()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(source: &LocalSource, selection: &Selection) -> (Vec<String>, ListStats) {
        let mut keys = Vec::new();
        let stats = source.list(selection, &mut |o| {
            keys.push(o.key);
            ControlFlow::Continue(())
        });
        (keys, stats)
    }

    fn touch(root: &Path, key: &str) {
        let p = root.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"{}").unwrap();
    }

    #[test]
    fn a_bucket_root_reads_only_cloudtrail_log_keys() {
        let dir = tempfile::tempdir().unwrap();
        let log = "AWSLogs/1/CloudTrail/us-east-1/2024/01/01/1_CloudTrail_us-east-1_20240101T0000Z_a.json.gz";
        let digest = "AWSLogs/1/CloudTrail-Digest/us-east-1/2024/01/01/1_CloudTrail-Digest_us-east-1_t_us-east-1_20240101T000000Z.json.gz";
        let insight = "AWSLogs/1/CloudTrail-Insight/us-east-1/2024/01/01/1_CloudTrail-Insight_us-east-1_20240101T0000Z_a.json.gz";
        for k in [
            log,
            digest,
            insight,
            "keys.json",
            "AWSLogs/1/Config/x.json.gz",
            "README",
        ] {
            touch(dir.path(), k);
        }
        let (keys, stats) = listed(&LocalSource::new([dir.path()]), &Selection::default());
        assert_eq!(keys, [log]);
        assert_eq!(
            (
                stats.skipped_digests,
                stats.skipped_insights,
                stats.skipped_other
            ),
            (1, 1, 3)
        );
        let (keys, _) = listed(
            &LocalSource::new([dir.path()]),
            &Selection {
                include_insights: true,
                ..Default::default()
            },
        );
        assert_eq!(keys, [log, insight]);
    }

    #[test]
    fn an_export_reads_every_json_file_and_named_files_are_always_read() {
        let dir = tempfile::tempdir().unwrap();
        for k in ["b.json", "a.jsonl", "c.json.gz", "LICENSE"] {
            touch(dir.path(), k);
        }
        let (keys, stats) = listed(&LocalSource::new([dir.path()]), &Selection::default());
        assert_eq!(keys, ["a.jsonl", "b.json", "c.json.gz"]);
        assert_eq!(stats.skipped_other, 1);
        let (keys, _) = listed(
            &LocalSource::new([dir.path().join("LICENSE")]),
            &Selection::default(),
        );
        assert_eq!(keys.len(), 1);
        let (keys, stats) = listed(
            &LocalSource::new([dir.path().join("missing")]),
            &Selection::default(),
        );
        assert!(keys.is_empty());
        assert!(stats.errors[0].to_string().contains("missing"));
    }
}
