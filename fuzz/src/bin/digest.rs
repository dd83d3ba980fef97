//! Digest files, through the whole validator. Input: one selector byte, then
//! a digest. Selector bits 0-2: which digest of `fixtures/trail` to replace;
//! bit 3: re-sign it with the fixture's private key (so the checks after the
//! signature run); bit 4: the rest is the stored object itself (gzip), else
//! it is the JSON, gzipped here so mutations get past the inflater.

use std::sync::OnceLock;

use trailmill_fuzz::{BUCKET, MemStore, fixture_trail, gz};
use trailmill_synth::{SigningKey, sign_digest, signing_string};
use trailmill_validate::{ValidateArgs, run_validate_in};

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

fn main() {
    let base = MemStore::fixture();
    let digests = base.digests();
    let args = ValidateArgs {
        source: fixture_trail(),
        all: true,
        start_time: "2024-01-01T00:00:00Z".into(),
        end_time: Some("2024-01-01T03:00:00Z".into()),
        bucket: Some(BUCKET.into()),
        verbose: true,
        ..ValidateArgs::default()
    };
    afl::fuzz!(|data: &[u8]| {
        let Some((&sel, rest)) = data.split_first() else {
            return;
        };
        let mut store = base.clone();
        let key = &digests[usize::from(sel & 7) % digests.len()];
        let obj = store.objects.get_mut(key).unwrap();
        if sel & 16 != 0 {
            obj.bytes = rest.to_vec();
        } else {
            obj.bytes = gz(rest);
            if sel & 8 != 0
                && let Some(s) = resign(rest)
            {
                obj.metadata.signature = Some(s);
            }
        }
        let mut verdicts = 0usize;
        let r = run_validate_in(&store, &args, &mut Vec::new(), &mut Vec::new(), &mut |ev| {
            if let trailmill_validate::Event::Verdict(_) = ev {
                verdicts += 1;
            }
        });
        // Damaged digests are verdicts, never a failed run.
        assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
        assert!(verdicts > 0);
    });
}
