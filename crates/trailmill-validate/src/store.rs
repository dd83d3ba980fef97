//! Object access: the [`ObjectStore`] trait and the [`LocalMirror`] implementation.
//!
//! The validator only ever reads objects by bucket and key, lists keys in key
//! order, and lists "directories" (common prefixes). Anything that can do
//! that — a local mirror of a bucket, or S3 (`trailmill_aws::S3Store`) — can
//! be validated. A store is shared by the worker threads, so it must be
//! `Sync`. A store with high latency also implements
//! [`ObjectStore::prefetch`], through which the validator announces what it
//! will read next.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The S3 user metadata CloudTrail attaches to a digest object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMetadata {
    /// `x-amz-meta-signature`: the digest's RSA signature, hex-encoded.
    pub signature: Option<String>,
    /// `x-amz-meta-signature-algorithm`: `SHA256withRSA` for every digest CloudTrail writes.
    pub signature_algorithm: Option<String>,
    /// `x-amz-meta-backfill-generation-timestamp`, on `_backfill` digests.
    pub backfill_generation_timestamp: Option<String>,
}

/// An object's bytes and metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Object {
    /// The object's content, exactly as stored (gzip for CloudTrail files).
    pub bytes: Vec<u8>,
    /// The object's user metadata.
    pub metadata: ObjectMetadata,
}

/// Why an object could not be read or listed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// There is no object with that bucket and key (S3 `NoSuchKey`).
    NotFound,
    /// The key is not a safe relative path (`..`, absolute, empty segments…),
    /// so a local store refuses to map it to a file.
    UnsafeKey(String),
    /// The bucket is not one this store serves.
    UnknownBucket(String),
    /// Any other failure (permissions, I/O, network), with its message.
    Other(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("not found"),
            StoreError::UnsafeKey(why) => write!(f, "unsafe key: {why}"),
            StoreError::UnknownBucket(b) => write!(f, "bucket {b} is not mapped to this store"),
            StoreError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StoreError {}

/// Read access to a bucket-like store of objects.
///
/// Implementations must be thread-safe: the validator fetches and hashes log
/// files from several threads at once.
pub trait ObjectStore: Sync {
    /// Reads an object with its metadata (used for digest files).
    fn get(&self, bucket: &str, key: &str) -> Result<Object, StoreError>;

    /// Reads an object's bytes into `buf` (cleared first), without metadata.
    /// Used for log files, so that each worker thread can reuse one buffer.
    fn read_into(&self, bucket: &str, key: &str, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        let obj = self.get(bucket, key)?;
        buf.clear();
        buf.extend_from_slice(&obj.bytes);
        Ok(())
    }

    /// Calls `visit` with every key in `bucket` that starts with `prefix` and
    /// sorts strictly after `start_after`, in ascending byte order, until
    /// `visit` returns [`ControlFlow::Break`].
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;

    /// The common prefixes one level below `prefix` (which is empty or ends
    /// in `/`), each ending in `/`, sorted: S3's `ListObjectsV2` with
    /// delimiter `/`. Used to discover trails without listing every log file.
    fn list_dirs(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Says that these objects (bucket, key) will be read soon, in this
    /// order, each once. A remote store starts downloading them so that the
    /// reads find them ready; the validator announces each folder's digests
    /// before walking its chains and each digest's log files before hashing
    /// them. The default does nothing (local files need no warning).
    fn prefetch(&self, objects: &[(&str, &str)]) {
        let _ = objects;
    }

    /// True when [`get`](Self::get) returns all of S3's metadata. A local
    /// mirror keeps only the signature (in a sidecar), so it returns false and
    /// the validator does not require `backfill-generation-timestamp`.
    fn has_full_metadata(&self) -> bool {
        true
    }
}

/// Which bucket names a [`LocalMirror`] answers for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BucketMap {
    /// Any bucket name maps to the root (no `--bucket` given).
    Any,
    /// Only these names map to the root; other buckets do not exist.
    Named(Vec<String>),
}

/// A bucket mirrored on the local file system.
///
/// The object with key `K` is the file `ROOT/K`; the signature metadata of a
/// digest `K` is the hex text in the sidecar `ROOT/K.sig` (`.sig` files are
/// not objects and are never listed). Keys are checked before they touch the
/// file system, so keys read from digests can never escape the root: see
/// [`check_key`].
#[derive(Clone, Debug)]
pub struct LocalMirror {
    root: PathBuf,
    buckets: BucketMap,
}

impl LocalMirror {
    /// A mirror rooted at `root` (which must be a directory) that answers for
    /// any bucket name.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let root = root.into();
        let meta = fs::metadata(&root).map_err(|e| Error::io(&root, &e))?;
        if !meta.is_dir() {
            return Err(Error::io(&root, &io::Error::other("not a directory")));
        }
        Ok(LocalMirror {
            root,
            buckets: BucketMap::Any,
        })
    }

    /// Restricts the mirror to the bucket `name` (the CLI's `--bucket`):
    /// objects in other buckets are then reported as not found.
    pub fn with_bucket(mut self, name: impl Into<String>) -> Self {
        match &mut self.buckets {
            BucketMap::Any => self.buckets = BucketMap::Named(vec![name.into()]),
            BucketMap::Named(v) => v.push(name.into()),
        }
        self
    }

    /// The mirror's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bucket names the mirror answers for.
    pub fn buckets(&self) -> &BucketMap {
        &self.buckets
    }

    /// The file that holds object `key` of `bucket`, after checking that the
    /// bucket is served and that the key cannot escape the root.
    pub fn path_of(&self, bucket: &str, key: &str) -> Result<PathBuf, StoreError> {
        if let BucketMap::Named(names) = &self.buckets
            && !names.iter().any(|n| n == bucket)
        {
            return Err(StoreError::UnknownBucket(bucket.to_string()));
        }
        check_key(key).map_err(StoreError::UnsafeKey)?;
        let mut p = self.root.clone();
        p.extend(key.split('/'));
        Ok(p)
    }

    fn serves(&self, bucket: &str) -> bool {
        match &self.buckets {
            BucketMap::Any => true,
            BucketMap::Named(names) => names.iter().any(|n| n == bucket),
        }
    }
}

/// Checks that `key` is a safe relative path below a root: not empty, not
/// absolute, no `.` or `..` segment, no empty segment (`a//b`, trailing `/`),
/// no backslash, colon at the start or NUL. Returns the reason otherwise.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    if key.starts_with('/') {
        return Err("absolute path".into());
    }
    if key.contains('\0') {
        return Err("NUL byte in key".into());
    }
    if key.contains('\\') {
        return Err("backslash in key".into());
    }
    for seg in key.split('/') {
        match seg {
            "" => return Err("empty path segment".into()),
            "." | ".." => return Err(format!("{seg:?} path segment")),
            _ => {}
        }
    }
    // A drive or URL-ish first segment (`C:`, `file:`) is never a CloudTrail key.
    if key.split('/').next().is_some_and(|s| s.contains(':')) {
        return Err("colon in the first path segment".into());
    }
    Ok(())
}

fn io_to_store(e: &io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::NotFound => StoreError::NotFound,
        // A path through a file (`log.json.gz/x`) does not exist either.
        io::ErrorKind::NotADirectory => StoreError::NotFound,
        _ => StoreError::Other(e.to_string()),
    }
}

impl ObjectStore for LocalMirror {
    fn get(&self, bucket: &str, key: &str) -> Result<Object, StoreError> {
        let mut bytes = Vec::new();
        self.read_into(bucket, key, &mut bytes)?;
        let mut sig_path = self.path_of(bucket, key)?.into_os_string();
        sig_path.push(".sig");
        let signature = match fs::read_to_string(&sig_path) {
            Ok(s) => Some(s.trim().to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(StoreError::Other(format!(
                    "{}: {e}",
                    Path::new(&sig_path).display()
                )));
            }
        };
        let signature_algorithm = signature.as_ref().map(|_| "SHA256withRSA".to_string());
        Ok(Object {
            bytes,
            metadata: ObjectMetadata {
                signature,
                signature_algorithm,
                backfill_generation_timestamp: None,
            },
        })
    }

    fn read_into(&self, bucket: &str, key: &str, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        let path = self.path_of(bucket, key)?;
        buf.clear();
        let mut f = fs::File::open(&path).map_err(|e| io_to_store(&e))?;
        let meta = f.metadata().map_err(|e| io_to_store(&e))?;
        if !meta.is_file() {
            return Err(StoreError::NotFound);
        }
        buf.reserve(meta.len() as usize);
        f.read_to_end(buf).map_err(|e| io_to_store(&e))?;
        Ok(())
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        if !self.serves(bucket) {
            return Ok(());
        }
        let base = match prefix.rfind('/') {
            Some(i) => &prefix[..=i],
            None => "",
        };
        if !base.is_empty() && check_key(base.trim_end_matches('/')).is_err() {
            return Ok(());
        }
        let mut keys = Vec::new();
        let mut dir = self.root.clone();
        dir.extend(base.split('/').filter(|s| !s.is_empty()));
        collect(&dir, base, prefix, start_after, &mut keys)?;
        keys.sort_unstable();
        for k in &keys {
            if visit(k).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn list_dirs(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        if !self.serves(bucket) {
            return Ok(Vec::new());
        }
        if !prefix.is_empty()
            && (!prefix.ends_with('/') || check_key(prefix.trim_end_matches('/')).is_err())
        {
            return Ok(Vec::new());
        }
        let mut dir = self.root.clone();
        dir.extend(prefix.split('/').filter(|s| !s.is_empty()));
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(StoreError::Other(format!("{}: {e}", dir.display()))),
        };
        let mut out = BTreeSet::new();
        for entry in rd {
            let entry = entry.map_err(|e| StoreError::Other(format!("{}: {e}", dir.display())))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.insert(format!("{prefix}{name}/"));
            }
        }
        Ok(out.into_iter().collect())
    }

    fn has_full_metadata(&self) -> bool {
        false
    }
}

/// Collects the keys under `dir` (whose key prefix is `dir_key`, empty or
/// ending in `/`) that start with `prefix` and sort after `start_after`.
fn collect(
    dir: &Path,
    dir_key: &str,
    prefix: &str,
    start_after: &str,
    out: &mut Vec<String>,
) -> Result<(), StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(());
        }
        Err(e) => return Err(StoreError::Other(format!("{}: {e}", dir.display()))),
    };
    for entry in rd {
        let entry = entry.map_err(|e| StoreError::Other(format!("{}: {e}", dir.display())))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            let sub = format!("{dir_key}{name}/");
            // Descend only where keys can start with `prefix`…
            if !(sub.starts_with(prefix) || prefix.starts_with(&sub)) {
                continue;
            }
            // …and where some key can sort after `start_after`: every key
            // below `sub` starts with `sub`, so if `start_after` is greater
            // than `sub` without extending it, all of them are smaller.
            if sub.as_str() < start_after && !start_after.starts_with(&sub) {
                continue;
            }
            collect(&entry.path(), &sub, prefix, start_after, out)?;
        } else {
            if name.ends_with(".sig") {
                continue;
            }
            let key = format!("{dir_key}{name}");
            if key.starts_with(prefix) && key.as_str() > start_after && check_key(&key).is_ok() {
                out.push(key);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_keys_that_escape_the_root() {
        for (key, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("../x", "\"..\""),
            ("a/../../x", "\"..\""),
            ("a/./b", "\".\""),
            ("a//b", "empty path segment"),
            ("a/b/", "empty path segment"),
            ("a\\..\\b", "backslash"),
            ("C:/x", "colon"),
            ("a\0b", "NUL"),
        ] {
            let err = check_key(key).unwrap_err();
            assert!(err.contains(why), "{key:?}: {err}");
        }
        assert!(check_key("AWSLogs/1/CloudTrail/us-east-1/2024/01/02/x.json.gz").is_ok());
        assert!(check_key("p..q/x").is_ok(), "dots inside a name are fine");
    }

    #[test]
    fn mirror_reads_lists_and_maps_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for k in [
            "a/b/1.json.gz",
            "a/b/2.json.gz",
            "a/c/3.json.gz",
            "a/b-x/4",
            "z",
        ] {
            let p = root.join(k);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, k).unwrap();
        }
        fs::write(root.join("a/b/2.json.gz.sig"), "abcd\n").unwrap();
        let m = LocalMirror::new(root).unwrap();
        let o = m.get("any", "a/b/2.json.gz").unwrap();
        assert_eq!(o.bytes, b"a/b/2.json.gz");
        assert_eq!(o.metadata.signature.as_deref(), Some("abcd"));
        assert_eq!(
            m.get("any", "a/b/1.json.gz").unwrap().metadata.signature,
            None
        );
        assert_eq!(m.get("any", "a/b/9.json.gz"), Err(StoreError::NotFound));
        assert_eq!(m.get("any", "a/b"), Err(StoreError::NotFound));
        assert!(matches!(
            m.get("any", "../etc/passwd"),
            Err(StoreError::UnsafeKey(_))
        ));

        let mut seen = Vec::new();
        m.list("any", "a/b", "", &mut |k| {
            seen.push(k.to_string());
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(
            seen,
            ["a/b-x/4", "a/b/1.json.gz", "a/b/2.json.gz"],
            "byte order, no sidecars"
        );
        seen.clear();
        m.list("any", "a/", "a/b/1.json.gz", &mut |k| {
            seen.push(k.to_string());
            if k.contains("2.json") {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(seen, ["a/b/2.json.gz"]);
        assert_eq!(m.list_dirs("any", "").unwrap(), ["a/"]);
        assert_eq!(
            m.list_dirs("any", "a/").unwrap(),
            ["a/b-x/", "a/b/", "a/c/"]
        );

        let named = LocalMirror::new(root).unwrap().with_bucket("bkt");
        assert!(named.get("bkt", "z").is_ok());
        assert_eq!(
            named.get("other", "z"),
            Err(StoreError::UnknownBucket("other".into()))
        );
        assert!(named.list_dirs("other", "").unwrap().is_empty());
    }
}

/// One bucket held in memory, for tests, fuzzing and callers that already
/// hold the objects: keys map to objects, and, as with a [`LocalMirror`],
/// only the signature of each object's metadata is known.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    /// The one bucket served; others are unknown.
    pub bucket: String,
    /// Key to object.
    pub objects: std::collections::BTreeMap<String, Object>,
}

impl MemoryStore {
    /// Loads a bucket laid out as a local mirror under `root`: every file is
    /// an object, keyed by its path below `root`, and `KEY.sig` beside it is
    /// the object's signature (not an object of its own).
    pub fn load_mirror(root: &Path, bucket: &str) -> io::Result<MemoryStore> {
        let mut objects = std::collections::BTreeMap::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let Some(key) = path
                    .strip_prefix(root)
                    .ok()
                    .and_then(Path::to_str)
                    .map(|k| k.replace(std::path::MAIN_SEPARATOR, "/"))
                else {
                    continue;
                };
                if key.ends_with(".sig") {
                    continue;
                }
                let mut sig_path = path.clone().into_os_string();
                sig_path.push(".sig");
                let signature = fs::read_to_string(&sig_path)
                    .ok()
                    .map(|s| s.trim().to_string());
                let metadata = ObjectMetadata {
                    signature,
                    ..ObjectMetadata::default()
                };
                let bytes = fs::read(&path)?;
                objects.insert(key, Object { bytes, metadata });
            }
        }
        Ok(MemoryStore {
            bucket: bucket.to_string(),
            objects,
        })
    }
}

impl ObjectStore for MemoryStore {
    fn get(&self, bucket: &str, key: &str) -> Result<Object, StoreError> {
        if bucket != self.bucket {
            return Err(StoreError::UnknownBucket(bucket.to_string()));
        }
        check_key(key).map_err(StoreError::UnsafeKey)?;
        self.objects.get(key).cloned().ok_or(StoreError::NotFound)
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        if bucket != self.bucket {
            return Ok(());
        }
        for k in self.objects.keys() {
            if k.starts_with(prefix) && k.as_str() > start_after && visit(k).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn list_dirs(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        if bucket != self.bucket {
            return Ok(Vec::new());
        }
        let mut dirs: Vec<String> = self
            .objects
            .keys()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter_map(|rest| rest.split_once('/'))
            .map(|(dir, _)| format!("{prefix}{dir}/"))
            .collect();
        dirs.dedup();
        Ok(dirs)
    }

    // Like a local mirror: only the signature is kept.
    fn has_full_metadata(&self) -> bool {
        false
    }
}
