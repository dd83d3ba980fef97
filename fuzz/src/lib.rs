//! Shared pieces of the fuzz targets: gzip, and the fixture trail in memory.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use trailmill_validate::{Object, ObjectMetadata, ObjectStore, StoreError, check_key};

/// Gzips `data` (fast level: the fuzzer wants executions).
pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Inflates `data`, or `None` when it is not one valid gzip stream.
pub fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// The repository's `fixtures/trail`: a signed synthetic trail.
pub fn fixture_trail() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/trail")
}

/// The bucket the fixture trail's digests name.
pub const BUCKET: &str = "trailmill-synth";

/// A bucket held in memory; signatures are S3 metadata.
#[derive(Clone)]
pub struct MemStore {
    /// Key to object.
    pub objects: BTreeMap<String, Object>,
}

impl MemStore {
    /// The fixture trail, loaded once.
    pub fn fixture() -> &'static MemStore {
        static STORE: OnceLock<MemStore> = OnceLock::new();
        STORE.get_or_init(|| {
            let root = fixture_trail();
            let mut objects = BTreeMap::new();
            let mut stack = vec![root.join("AWSLogs")];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                        continue;
                    }
                    let key = p
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    if key.ends_with(".sig") {
                        continue;
                    }
                    let signature = std::fs::read_to_string(format!("{}.sig", p.display()))
                        .ok()
                        .map(|s| s.trim().to_string());
                    let metadata = ObjectMetadata {
                        signature,
                        ..ObjectMetadata::default()
                    };
                    let bytes = std::fs::read(&p).unwrap();
                    objects.insert(key, Object { bytes, metadata });
                }
            }
            MemStore { objects }
        })
    }

    /// The digest keys, sorted.
    pub fn digests(&self) -> Vec<String> {
        self.objects
            .keys()
            .filter(|k| k.contains("CloudTrail-Digest"))
            .cloned()
            .collect()
    }
}

impl ObjectStore for MemStore {
    fn get(&self, bucket: &str, key: &str) -> Result<Object, StoreError> {
        if bucket != BUCKET {
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
        if bucket != BUCKET {
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
        if bucket != BUCKET {
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

    fn has_full_metadata(&self) -> bool {
        false
    }
}
