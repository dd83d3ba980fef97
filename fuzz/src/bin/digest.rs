//! Digest files, through the whole validator. Input: one selector byte, then
//! a digest. Selector bits 0-2: which digest of `fixtures/trail` to replace;
//! bit 3: re-sign it with the fixture's private key (so the checks after the
//! signature run); bit 4: the rest is the stored object itself (gzip), else
//! it is the JSON, gzipped here so mutations get past the inflater.

use std::ops::ControlFlow;
use std::sync::OnceLock;

use trailmill_fuzz::{BUCKET, digest_keys, fixture_store, fixture_trail, gz};
use trailmill_synth::{SigningKey, sign_digest, signing_string};
use trailmill_validate::{
    MemoryStore, Object, ObjectStore, PublicKeys, StoreError, ValidateArgs, ValidateConfig,
    validate,
};

fn resign(json: &[u8]) -> Option<String> {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let der = std::fs::read(fixture_trail().join("synth-signing-key.der")).unwrap();
        SigningKey::from_pkcs1_der(&der).unwrap()
    });
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    let prev = match v.get("previousDigestSignature") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(_) => return None,
    };
    let text = signing_string(
        v.get("digestEndTime")?.as_str()?,
        v.get("digestS3Bucket")?.as_str()?,
        v.get("digestS3Object")?.as_str()?,
        json,
        prev,
    );
    Some(sign_digest(key, &text))
}

/// The fixture bucket with one digest replaced.
struct Overlay<'a> {
    base: &'a MemoryStore,
    key: &'a str,
    object: Object,
}

impl ObjectStore for Overlay<'_> {
    fn get(&self, bucket: &str, key: &str) -> Result<Object, StoreError> {
        if bucket == BUCKET && key == self.key {
            return Ok(self.object.clone());
        }
        self.base.get(bucket, key)
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: &str,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        self.base.list(bucket, prefix, start_after, visit)
    }

    fn list_dirs(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.base.list_dirs(bucket, prefix)
    }

    fn has_full_metadata(&self) -> bool {
        false
    }
}

fn main() {
    // No thread may start before `fuzz!`: AFL forks there, and a child has
    // none of its parent's threads (a rayon pool built here hangs every
    // run). scripts/fuzz-afl.sh sets RAYON_NUM_THREADS=1 instead, as thread
    // hand-offs cost more than validating one small trail.
    let base = fixture_store();
    // Each digest with the configuration that validates its account and region only.
    let digests: Vec<(String, ValidateConfig, PublicKeys)> = digest_keys(base)
        .into_iter()
        .map(|key| {
            let parts: Vec<&str> = key.split('/').collect();
            let args = ValidateArgs {
                source: fixture_trail(),
                all: true,
                start_time: "2024-01-01T00:00:00Z".into(),
                end_time: Some("2024-01-01T03:00:00Z".into()),
                bucket: Some(BUCKET.into()),
                account_id: Some(parts[1].into()),
                region: Some(parts[3].into()),
                verbose: true,
                ..ValidateArgs::default()
            };
            let (cfg, keys) = args.config().unwrap();
            (key, cfg, keys)
        })
        .collect();
    afl::fuzz!(|data: &[u8]| {
        let Some((&sel, rest)) = data.split_first() else {
            return;
        };
        let (key, cfg, keys) = &digests[usize::from(sel & 7) % digests.len()];
        let mut object = base.objects[key].clone();
        if sel & 16 != 0 {
            object.bytes = rest.to_vec();
        } else {
            object.bytes = gz(rest);
            if sel & 8 != 0
                && let Some(s) = resign(rest)
            {
                object.metadata.signature = Some(s);
            }
        }
        let store = Overlay { base, key, object };
        let mut verdicts = 0usize;
        let r = validate(&store, cfg, keys, &mut |ev| {
            if let trailmill_validate::Event::Verdict(_) = ev {
                verdicts += 1;
            }
        });
        // Damaged digests are verdicts, never a failed run.
        assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
        assert!(verdicts > 0);
    });
}
