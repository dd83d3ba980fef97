//! Property tests: malformed digests, keys and signatures give verdicts (or,
//! for an unusable keys file, an error), never panics.
//!
//! A small signed trail is generated once; each case copies it, damages a
//! digest, its signature or the keys file at random, and validates it.
//! `damaged_digest_content_gives_verdicts` works on an in-memory copy, so it
//! is cheap enough for millions of cases: it damages one digest's JSON
//! (fields, nesting, huge strings, byte flips, truncation), re-signs it at
//! times with the trail's private key so the checks after the signature run
//! too, and wraps it in valid gzip so the damage gets past the inflater.
//!
//! The case counts are modest for CI; `PROPTEST_CASES` overrides them (see
//! `scripts/fuzz-long.sh`). Failing seeds are kept in
//! `fuzz.proptest-regressions` beside this file and replayed first.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::Value;
use trailmill_synth::{
    SigningKey, SynthConfig, SynthReport, generate, sign_digest, signing_string,
};
use trailmill_validate::{
    MemoryStore, OutputFormat, PublicKeys, Status, Subject, Timestamp, ValidateArgs, Verdict,
    check_key, display_time, parse_public_key_der, parse_time, run_validate, run_validate_in,
    unhexlify, verify_sha256,
};

/// `cases` unless `PROPTEST_CASES` is set; regressions persisted beside this
/// file, so the seeds in `fuzz.proptest-regressions` are replayed.
fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )));
    c
}

struct Base {
    _dir: tempfile::TempDir,
    root: PathBuf,
    report: SynthReport,
    digests: Vec<String>,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bucket");
        let cfg = SynthConfig {
            accounts: 1,
            regions: 1,
            hours: 4,
            logs_per_hour: 1,
            records: 1,
            seed: 99,
            ..SynthConfig::default()
        };
        let report = generate(&root, &cfg).unwrap();
        let mut digests = Vec::new();
        walk(&root, &root, &mut |k| {
            if k.contains("CloudTrail-Digest") && k.ends_with(".json.gz") {
                digests.push(k.to_string());
            }
        });
        digests.sort();
        Base {
            _dir: dir,
            root,
            report,
            digests,
        }
    })
}

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(&str)) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, f);
        } else {
            f(&p.strip_prefix(root).unwrap().to_string_lossy());
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    walk(from, from, &mut |k| {
        let dst = to.join(k);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(from.join(k), dst).unwrap();
    });
}

fn gunzip(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b).read_to_end(&mut out).ok()?;
    Some(out)
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        Just(Value::from("../../../../etc/passwd")),
        Just(Value::from("/etc/passwd")),
        Just(Value::from("2024-01-01T00:00:00Z")),
        "[0-9a-f]{0,600}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("s3Bucket".to_string()),
                    Just("s3Object".to_string()),
                    Just("hashValue".to_string()),
                    "[a-zA-Z]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "digestStartTime",
    "digestEndTime",
    "digestS3Bucket",
    "digestS3Object",
    "digestPublicKeyFingerprint",
    "digestSignatureAlgorithm",
    "previousDigestS3Bucket",
    "previousDigestS3Object",
    "previousDigestHashValue",
    "previousDigestHashAlgorithm",
    "previousDigestSignature",
    "logFiles",
    "newestEventTime",
    "awsAccountId",
];

/// One way to damage the trail.
#[derive(Clone, Debug)]
enum Damage {
    FlipBytes(usize, Vec<(usize, u8)>),
    Truncate(usize, usize),
    AppendGarbage(usize, Vec<u8>),
    ReplaceBody(usize, Vec<u8>),
    SetField(usize, usize, Value),
    RemoveField(usize, usize),
    SetLogEntry(usize, Value),
    Signature(usize, Option<String>),
    Keys(Vec<u8>),
    KeysJson(Value),
}

fn arb_damage() -> impl Strategy<Value = Damage> {
    let d = 0..4usize;
    prop_oneof![
        (
            d.clone(),
            proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)
        )
            .prop_map(|(i, v)| Damage::FlipBytes(i, v)),
        (d.clone(), any::<usize>()).prop_map(|(i, n)| Damage::Truncate(i, n)),
        (d.clone(), proptest::collection::vec(any::<u8>(), 1..40))
            .prop_map(|(i, v)| Damage::AppendGarbage(i, v)),
        (d.clone(), proptest::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(i, v)| Damage::ReplaceBody(i, v)),
        (d.clone(), 0..FIELDS.len(), arb_json()).prop_map(|(i, f, v)| Damage::SetField(i, f, v)),
        (d.clone(), 0..FIELDS.len()).prop_map(|(i, f)| Damage::RemoveField(i, f)),
        (d.clone(), arb_json()).prop_map(|(i, v)| Damage::SetLogEntry(i, v)),
        (d, proptest::option::of("[0-9a-fA-Fxz ]{0,600}"))
            .prop_map(|(i, s)| Damage::Signature(i, s)),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Damage::Keys),
        arb_json().prop_map(|v| Damage::KeysJson(serde_json::json!({ "PublicKeyList": [v] }))),
    ]
}

fn apply(root: &Path, digests: &[String], d: &Damage) {
    let path = |i: usize| root.join(&digests[i % digests.len()]);
    let edit_json = |i: usize, f: &dyn Fn(&mut Value)| {
        let p = path(i);
        // An earlier damage may have left nothing to edit.
        let Some(mut v) = gunzip(&std::fs::read(&p).unwrap())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(Value::is_object)
        else {
            return;
        };
        f(&mut v);
        std::fs::write(&p, gzip(&serde_json::to_vec(&v).unwrap())).unwrap();
    };
    match d {
        Damage::FlipBytes(i, flips) => {
            let mut b = std::fs::read(path(*i)).unwrap();
            if b.is_empty() {
                return;
            }
            for (pos, byte) in flips {
                let n = b.len();
                b[pos % n] ^= byte | 1;
            }
            std::fs::write(path(*i), b).unwrap();
        }
        Damage::Truncate(i, n) => {
            let b = std::fs::read(path(*i)).unwrap();
            std::fs::write(path(*i), &b[..n % b.len().max(1)]).unwrap();
        }
        Damage::AppendGarbage(i, g) => {
            let mut b = std::fs::read(path(*i)).unwrap();
            b.extend_from_slice(g);
            std::fs::write(path(*i), b).unwrap();
        }
        Damage::ReplaceBody(i, body) => std::fs::write(path(*i), gzip(body)).unwrap(),
        Damage::SetField(i, f, v) => edit_json(*i, &|j| j[FIELDS[*f]] = v.clone()),
        Damage::RemoveField(i, f) => edit_json(*i, &|j| {
            j.as_object_mut().unwrap().remove(FIELDS[*f]);
        }),
        Damage::SetLogEntry(i, v) => edit_json(*i, &|j| {
            if let Some(a) = j["logFiles"].as_array_mut()
                && let Some(first) = a.first_mut()
            {
                *first = v.clone();
            }
        }),
        Damage::Signature(i, s) => {
            let sig = PathBuf::from(format!("{}.sig", path(*i).display()));
            match s {
                Some(s) => std::fs::write(sig, s).unwrap(),
                None => {
                    let _ = std::fs::remove_file(sig);
                }
            }
        }
        Damage::Keys(b) => std::fs::write(root.join("keys.json"), b).unwrap(),
        Damage::KeysJson(v) => {
            std::fs::write(root.join("keys.json"), serde_json::to_vec(v).unwrap()).unwrap()
        }
    }
}

fn validate(root: &Path, all: bool, format: OutputFormat) -> Result<Vec<Verdict>, String> {
    let b = base();
    let r = &b.report;
    let args = ValidateArgs {
        source: root.to_path_buf(),
        trail_arn: (!all).then(|| r.trail_arn.clone()),
        all,
        start_time: display_time(Timestamp::from_second(r.start).unwrap()),
        end_time: Some(display_time(Timestamp::from_second(r.end).unwrap())),
        bucket: Some(r.bucket.clone()),
        public_keys: Some(root.join("keys.json")),
        verbose: true,
        format,
        ..ValidateArgs::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut verdicts = Vec::new();
    run_validate(&args, &mut out, &mut err, &mut |ev| {
        if let trailmill_validate::Event::Verdict(v) = ev {
            verdicts.push(v.clone());
        }
    })
    .map_err(|e| e.to_string())?;
    Ok(verdicts)
}

/// The base trail in memory: one bucket, signatures as S3 metadata.
fn base_store() -> &'static MemoryStore {
    static STORE: OnceLock<MemoryStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let b = base();
        MemoryStore::load_mirror(&b.root, &b.report.bucket).unwrap()
    })
}

/// The trail's private key, to re-sign damaged digests.
fn signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let der = std::fs::read(base().root.join(trailmill_synth::PRIVATE_KEY_FILE)).unwrap();
        SigningKey::from_pkcs1_der(&der).unwrap()
    })
}

/// A damage to a digest's JSON, before it is gzipped again.
#[derive(Clone, Debug)]
enum Content {
    SetField(usize, Value),
    RemoveField(usize),
    SetLogEntry(usize, Value),
    /// Byte edits of the JSON text: (position, xor) flips, then a cut.
    Bytes(Vec<(usize, u8)>, Option<usize>),
    /// Tokens inserted into the JSON text.
    Insert(usize, &'static str),
}

const DIGEST_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    ",",
    ":",
    "null",
    "\\u0000",
    "\\ud800",
    "1e999",
    "-0",
    "\"logFiles\":null,",
    "\"logFiles\":[{}],",
    "\u{feff}",
    "\u{0}",
];

/// Values that parsers trip on: deep nesting, huge strings, odd numbers.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        arb_json(),
        (1usize..300).prop_map(|d| {
            let mut v = Value::from(1);
            for _ in 0..d {
                v = Value::Array(vec![v]);
            }
            v
        }),
        (1usize..200_000).prop_map(|n| Value::from("a".repeat(n))),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(-1.5e300)),
        Just(serde_json::json!("2024-13-45T25:61:61Z")),
        Just(serde_json::json!("2024-01-01T01:00:00+14:00")),
        Just(serde_json::json!("")),
    ]
}

fn arb_content() -> impl Strategy<Value = Content> {
    prop_oneof![
        (0..FIELDS.len(), hostile_value()).prop_map(|(f, v)| Content::SetField(f, v)),
        (0..FIELDS.len()).prop_map(Content::RemoveField),
        (0..3usize, hostile_value()).prop_map(|(i, v)| Content::SetLogEntry(i, v)),
        (
            proptest::collection::vec((any::<usize>(), 1..=255u8), 0..4),
            proptest::option::of(any::<usize>())
        )
            .prop_map(|(f, c)| Content::Bytes(f, c)),
        (any::<usize>(), proptest::sample::select(DIGEST_TOKENS))
            .prop_map(|(p, t)| Content::Insert(p, t)),
    ]
}

fn damage_content(json: &mut Vec<u8>, c: &Content) {
    let edit = |json: &mut Vec<u8>, f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        if let Ok(Value::Object(mut m)) = serde_json::from_slice::<Value>(json) {
            f(&mut m);
            *json = serde_json::to_vec(&m).unwrap();
        }
    };
    match c {
        Content::SetField(f, v) => edit(json, &|m| {
            m.insert(FIELDS[*f].to_string(), v.clone());
        }),
        Content::RemoveField(f) => edit(json, &|m| {
            m.remove(FIELDS[*f]);
        }),
        Content::SetLogEntry(i, v) => edit(json, &|m| {
            if let Some(Value::Array(a)) = m.get_mut("logFiles") {
                let i = i % (a.len() + 1);
                if i < a.len() {
                    a[i] = v.clone();
                } else {
                    a.push(v.clone());
                }
            }
        }),
        Content::Bytes(flips, cut) => {
            for (p, x) in flips {
                if !json.is_empty() {
                    let n = json.len();
                    json[p % n] ^= x;
                }
            }
            if let Some(c) = cut {
                json.truncate(c % (json.len() + 1));
            }
        }
        Content::Insert(p, t) => {
            let p = p % (json.len() + 1);
            json.splice(p..p, t.bytes());
        }
    }
}

/// Signs `json` as CloudTrail would, when its signed fields are strings.
fn resign(json: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(json).ok()?;
    let prev = match v.get("previousDigestSignature") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return None,
    };
    let text = signing_string(
        v.get("digestEndTime")?.as_str()?,
        v.get("digestS3Bucket")?.as_str()?,
        v.get("digestS3Object")?.as_str()?,
        json,
        prev,
    );
    Some(sign_digest(signing_key(), &text))
}

proptest! {
    #![proptest_config(config(256))]

    /// A digest whose content is damaged (and perhaps re-signed) gets a
    /// verdict, never a panic or a failed run; unless re-signed, any change
    /// to its bytes makes it invalid; undamaged, everything is valid.
    #[test]
    fn damaged_digest_content_gives_verdicts(
        which in 0..4usize,
        damage in proptest::collection::vec(arb_content(), 0..3),
        resigned in proptest::bool::weighted(0.25),
        all: bool,
    ) {
        let b = base();
        let mut store = base_store().clone();
        let key = &b.digests[which];
        let original = gunzip(&store.objects[key].bytes).unwrap();
        let mut json = original.clone();
        for d in &damage {
            damage_content(&mut json, d);
        }
        let signature = if resigned { resign(&json) } else { None };
        let obj = store.objects.get_mut(key).unwrap();
        obj.bytes = gzip(&json);
        let resigned = signature.is_some();
        if let Some(s) = signature {
            obj.metadata.signature = Some(s);
        }
        let r = &b.report;
        let args = ValidateArgs {
            source: b.root.clone(),
            trail_arn: (!all).then(|| r.trail_arn.clone()),
            all,
            start_time: display_time(Timestamp::from_second(r.start).unwrap()),
            end_time: Some(display_time(Timestamp::from_second(r.end).unwrap())),
            bucket: Some(r.bucket.clone()),
            verbose: true,
            ..ValidateArgs::default()
        };
        let mut verdicts = Vec::new();
        let run = run_validate_in(&store, &args, &mut Vec::new(), &mut Vec::new(), &mut |ev| {
            if let trailmill_validate::Event::Verdict(v) = ev {
                verdicts.push(v.clone());
            }
        });
        prop_assert!(run.is_ok(), "{:?}", run.err().map(|e| e.to_string()));
        prop_assert!(verdicts.iter().any(|v| v.subject == Subject::Digest), "{verdicts:?}");
        if json == original {
            prop_assert!(verdicts.iter().all(Verdict::is_valid), "{verdicts:?}");
        } else if !resigned {
            prop_assert!(
                verdicts.iter().any(|v| v.subject == Subject::Digest && &v.key == key && !v.is_valid()),
                "a changed digest without a new signature was not found invalid: {verdicts:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn damaged_trails_give_verdicts_not_panics(damage in proptest::collection::vec(arb_damage(), 1..3), all: bool, fmt in 0..3u8) {
        let b = base();
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&b.root, dir.path());
        for d in &damage {
            apply(dir.path(), &b.digests, d);
        }
        let format = [OutputFormat::AwsCli, OutputFormat::Json, OutputFormat::Human][fmt as usize];
        match validate(dir.path(), all, format) {
            // Only an unusable keys file stops a run.
            Err(e) => prop_assert!(damage.iter().any(|d| matches!(d, Damage::Keys(_) | Damage::KeysJson(_))), "{e}"),
            Ok(verdicts) => {
                let damaged_digest = damage.iter().any(|d| !matches!(d, Damage::Keys(_) | Damage::KeysJson(_)));
                let digests: Vec<&Verdict> = verdicts.iter().filter(|v| v.subject == Subject::Digest).collect();
                // Every listed digest gets a verdict (the chain may also name missing ones).
                prop_assert!(!digests.is_empty(), "{verdicts:?}");
                // Truncated, extended or replaced digests are never valid.
                let destructive = damage.iter().any(|d| matches!(d, Damage::Truncate(..) | Damage::AppendGarbage(..) | Damage::ReplaceBody(..)));
                if damaged_digest && destructive {
                    prop_assert!(verdicts.iter().any(|v| matches!(v.status, Status::Invalid(_))), "{damage:?} left everything valid");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_digest_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), text in "\\PC{0,200}") {
        let _ = trailmill_validate::Digest::parse(&bytes);
        let _ = trailmill_validate::Digest::parse(text.as_bytes());
        let _ = trailmill_validate::sha256_of_gzip(&bytes, 1 << 20, &mut [0u8; 512]);
    }

    #[test]
    fn arbitrary_keys_and_signatures_never_panic(der in proptest::collection::vec(any::<u8>(), 0..300), sig in proptest::collection::vec(any::<u8>(), 0..300), hex_text in "\\PC{0,80}", json in "\\PC{0,200}") {
        let _ = parse_public_key_der(&der);
        let _ = PublicKeys::from_json(json.as_bytes());
        let _ = unhexlify(&hex_text);
        let keys = PublicKeys::load(&base().root.join("keys.json")).unwrap();
        let key = keys.iter().next().unwrap();
        let (rsa, _) = key.rsa().unwrap();
        prop_assert_eq!(verify_sha256(rsa, b"message", &sig), trailmill_validate::SignatureCheck::Invalid);
    }

    #[test]
    fn arbitrary_times_and_keys_never_panic(s in "\\PC{0,40}", k in "[a-z./\\\\:\\x00-]{0,30}") {
        let _ = parse_time(&s);
        if check_key(&k).is_ok() {
            prop_assert!(!k.split('/').any(|seg| seg == ".." || seg == "." || seg.is_empty()));
            prop_assert!(!k.starts_with('/'));
        }
    }
}

#[test]
fn undamaged_base_is_valid() {
    let b = base();
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&b.root, dir.path());
    let verdicts = validate(dir.path(), false, OutputFormat::AwsCli).unwrap();
    assert!(verdicts.iter().all(Verdict::is_valid), "{verdicts:?}");
    assert_eq!(verdicts.len(), 8);
}
