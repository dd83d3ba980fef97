//! The object ledger: which source objects a table already holds.
//!
//! This is how the Iceberg sink stores each object's events exactly once,
//! whoever redoes it: a crash, an SQS redelivery, `--restart`, or two workers
//! racing on one message.
//!
//! # Identity
//!
//! An object is identified by the 128-bit xxh3 of its name (`s3://bucket/key`
//! or its path). The version (ETag, mtime) is left out on purpose: CloudTrail
//! never rewrites a log file, a notification may carry no ETag while a
//! listing does, and a mirror re-copied with new mtimes must not add its
//! events again. A log file whose content changed is an integrity finding
//! for `trailmill validate`, not new data.
//!
//! # Layout
//!
//! Immutable files under `TABLE/metadata/trailmill-ledger/`:
//!
//! - `seg-UUID-DAY.bin`: the sorted ids of the objects one commit added whose
//!   key dates from `DAY` (`YYYY-MM-DD` from the CloudTrail key; `other` for
//!   keys the grammar does not parse), 16 bytes each, little-endian;
//! - `root-UUID.json`: for each day, the segments that hold it
//!   (`{"format":"trailmill-ledger/1","days":{"2024-01-05":["seg-…"]}}`).
//!
//! The table property `trailmill.ledger` names the current root. It is set
//! in the same Iceberg transaction as the append, so the ledger and the data
//! change in one atomic catalog swap, and other engines' commits carry it
//! forward like any property.
//!
//! # Cost
//!
//! A commit reads the root and the segments of the days its objects date
//! from (cached by name, since they never change), and writes one segment per
//! day plus a new root. When a day has more than [`MERGE_AT`] segments, the
//! committing writer merges them into one. So a commit costs what its own days
//! hold, not what the table holds.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use iceberg::io::FileIO;
use serde_json::{Value, json};
use trailmill_pipeline::SourceObject;
use twox_hash::XxHash3_128;

/// The table property that names the ledger's root.
pub const LEDGER_PROPERTY: &str = "trailmill.ledger";

/// A day with more segments than this is merged into one at the next commit
/// that touches it.
pub const MERGE_AT: usize = 8;

/// The root's format tag.
const FORMAT: &str = "trailmill-ledger/1";

/// Segment bytes kept in the cache.
const CACHE_BYTES: usize = 64 << 20;

/// An object's identity in the ledger.
pub type ObjectId = u128;

/// An object as the ledger files it: its id and the day its key dates from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LedgerEntry {
    /// The xxh3-128 of the object's name.
    pub id: ObjectId,
    /// `YYYY-MM-DD` from the CloudTrail key, or `other`.
    pub day: String,
}

impl LedgerEntry {
    /// The entry of `object`.
    pub fn of(object: &SourceObject) -> LedgerEntry {
        let day = match object.classify() {
            trailmill_core::key::Classified::Trail(key) => {
                let d = key.file.time.date();
                format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
            }
            trailmill_core::key::Classified::Other { .. } => "other".to_owned(),
        };
        LedgerEntry {
            id: XxHash3_128::oneshot(object.name.as_bytes()),
            day,
        }
    }
}

/// The ledger as of one table version, with a cache of segments.
#[derive(Debug)]
pub struct Ledger {
    file_io: FileIO,
    dir: String,
    root_path: Option<String>,
    days: BTreeMap<String, Vec<String>>,
    cache: HashMap<String, Arc<Vec<ObjectId>>>,
    cache_order: VecDeque<String>,
    cache_bytes: usize,
}

/// What [`Ledger::stage`] wrote for a commit.
#[derive(Debug)]
pub struct Staged {
    /// The new root, to set as [`LEDGER_PROPERTY`].
    pub root_path: String,
    /// Every file written (to delete if the commit fails).
    pub written: Vec<String>,
}

impl Ledger {
    /// An empty ledger for the table at `table_location`.
    pub fn new(file_io: FileIO, table_location: &str) -> Ledger {
        Ledger {
            file_io,
            dir: format!(
                "{}/metadata/trailmill-ledger",
                table_location.trim_end_matches('/')
            ),
            root_path: None,
            days: BTreeMap::new(),
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            cache_bytes: 0,
        }
    }

    /// The root in use.
    pub fn root_path(&self) -> Option<&str> {
        self.root_path.as_deref()
    }

    /// Moves to the root named by `root_path` (a table's property), reading
    /// it if it changed.
    pub async fn load(&mut self, root_path: Option<&str>) -> Result<(), String> {
        if root_path == self.root_path.as_deref() {
            return Ok(());
        }
        let Some(path) = root_path else {
            self.root_path = None;
            self.days.clear();
            return Ok(());
        };
        let bytes = self.read(path).await?;
        let root: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("ledger root {path} is not JSON: {e}"))?;
        if root.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(format!(
                "ledger root {path} is not in format {FORMAT}; it was written by a newer trailmill"
            ));
        }
        let mut days = BTreeMap::new();
        for (day, segs) in root
            .get("days")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let segs: Vec<String> = segs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
            days.insert(day.clone(), segs);
        }
        self.days = days;
        self.root_path = Some(path.to_owned());
        Ok(())
    }

    /// The entries of `entries` that the ledger holds.
    pub async fn held(&mut self, entries: &[LedgerEntry]) -> Result<Vec<ObjectId>, String> {
        let mut by_day: BTreeMap<&str, Vec<ObjectId>> = BTreeMap::new();
        for e in entries {
            by_day.entry(&e.day).or_default().push(e.id);
        }
        let mut held = Vec::new();
        for (day, ids) in by_day {
            let Some(segs) = self.days.get(day).cloned() else {
                continue;
            };
            for seg in segs {
                let ids_in = self.segment(&seg).await?;
                held.extend(ids.iter().filter(|id| ids_in.binary_search(id).is_ok()));
            }
        }
        held.sort_unstable();
        held.dedup();
        Ok(held)
    }

    /// Writes the segments of `entries` and a new root that adds them
    /// (merging days that reach [`MERGE_AT`] segments); the caller sets the
    /// root in the table in the same commit. `tag` makes the names unique.
    pub async fn stage(&mut self, entries: &[LedgerEntry], tag: &str) -> Result<Staged, String> {
        let mut by_day: BTreeMap<String, Vec<ObjectId>> = BTreeMap::new();
        for e in entries {
            by_day.entry(e.day.clone()).or_default().push(e.id);
        }
        let mut days = self.days.clone();
        let mut written = Vec::new();
        for (day, mut ids) in by_day {
            let old = days.remove(&day).unwrap_or_default();
            let segs = if old.len() + 1 > MERGE_AT {
                for seg in &old {
                    ids.extend(self.segment(seg).await?.iter());
                }
                Vec::new()
            } else {
                old
            };
            ids.sort_unstable();
            ids.dedup();
            let path = format!("{}/seg-{tag}-{}.bin", self.dir, safe(&day));
            let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
            self.write(&path, bytes).await?;
            written.push(path.clone());
            self.remember(path.clone(), Arc::new(ids));
            let mut segs = segs;
            segs.push(path);
            days.insert(day, segs);
        }
        let root = json!({ "format": FORMAT, "days": days });
        let root_path = format!("{}/root-{tag}.json", self.dir);
        self.write(&root_path, root.to_string().into_bytes())
            .await?;
        written.push(root_path.clone());
        Ok(Staged { root_path, written })
    }

    async fn segment(&mut self, path: &str) -> Result<Arc<Vec<ObjectId>>, String> {
        if let Some(s) = self.cache.get(path) {
            return Ok(s.clone());
        }
        let bytes = self.read(path).await?;
        if bytes.len() % 16 != 0 {
            return Err(format!(
                "ledger segment {path} is {} bytes, not a multiple of 16",
                bytes.len()
            ));
        }
        let ids: Vec<ObjectId> = bytes
            .chunks_exact(16)
            .map(|c| u128::from_le_bytes(c.try_into().unwrap_or([0; 16])))
            .collect();
        let ids = Arc::new(ids);
        self.remember(path.to_owned(), ids.clone());
        Ok(ids)
    }

    fn remember(&mut self, path: String, ids: Arc<Vec<ObjectId>>) {
        self.cache_bytes += ids.len() * 16;
        self.cache.insert(path.clone(), ids);
        self.cache_order.push_back(path);
        while self.cache_bytes > CACHE_BYTES
            && let Some(old) = self.cache_order.pop_front()
        {
            if let Some(ids) = self.cache.remove(&old) {
                self.cache_bytes -= ids.len() * 16;
            }
        }
    }

    async fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let input = self
            .file_io
            .new_input(path)
            .map_err(|e| format!("cannot open {path}: {e}"))?;
        input
            .read()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| format!("cannot read {path}: {e}"))
    }

    async fn write(&self, path: &str, bytes: Vec<u8>) -> Result<(), String> {
        let output = self
            .file_io
            .new_output(path)
            .map_err(|e| format!("cannot create {path}: {e}"))?;
        output
            .write(bytes.into())
            .await
            .map_err(|e| format!("cannot write {path}: {e}"))
    }
}

/// A day label as a file-name part.
fn safe(day: &str) -> String {
    day.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> LedgerEntry {
        LedgerEntry::of(&SourceObject::new(name, name.trim_start_matches("s3://b/")))
    }

    #[test]
    fn entries_date_from_the_key() {
        let e = entry(
            "s3://b/AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/05/111122223333_CloudTrail_us-east-1_20240105T0000Z_abc.json.gz",
        );
        assert_eq!(e.day, "2024-01-05");
        assert_eq!(entry("s3://b/notes.txt").day, "other");
        assert_ne!(entry("s3://b/x").id, entry("s3://c/x").id);
    }

    #[test]
    fn staged_entries_are_held_after_reload_and_merged_past_the_limit() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().display().to_string();
        rt.block_on(async {
            let io = FileIO::new_with_fs();
            let mut ledger = Ledger::new(io.clone(), &location);
            let names: Vec<String> = (0..=MERGE_AT)
                .map(|i| format!("s3://b/AWSLogs/1/CloudTrail/r/2024/01/05/1_CloudTrail_r_20240105T0000Z_{i}.json.gz"))
                .collect();
            for (i, name) in names.iter().enumerate() {
                let staged = ledger.stage(&[entry(name)], &format!("t{i}")).await.unwrap();
                let mut fresh = Ledger::new(io.clone(), &location);
                fresh.load(Some(&staged.root_path)).await.unwrap();
                ledger = fresh;
            }
            let all: Vec<LedgerEntry> = names.iter().map(|n| entry(n)).collect();
            let mut want: Vec<ObjectId> = all.iter().map(|e| e.id).collect();
            want.sort_unstable();
            assert_eq!(ledger.held(&all).await.unwrap(), want);
            assert!(ledger.held(&[entry("s3://b/other")]).await.unwrap().is_empty());
            // The ninth commit merged the day into one segment.
            assert_eq!(ledger.days["2024-01-05"].len(), 1);
        });
    }
}
