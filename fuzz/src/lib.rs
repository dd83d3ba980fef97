//! Shared pieces of the fuzz targets: gzip, and the fixture trail in memory.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use trailmill_validate::MemoryStore;

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

/// The fixture trail as a bucket in memory (signatures as S3 metadata),
/// loaded once.
pub fn fixture_store() -> &'static MemoryStore {
    static STORE: OnceLock<MemoryStore> = OnceLock::new();
    STORE.get_or_init(|| MemoryStore::load_mirror(&fixture_trail(), BUCKET).unwrap())
}

/// The digest keys of `store`, sorted.
pub fn digest_keys(store: &MemoryStore) -> Vec<String> {
    store
        .objects
        .keys()
        .filter(|k| k.contains("CloudTrail-Digest"))
        .cloned()
        .collect()
}
