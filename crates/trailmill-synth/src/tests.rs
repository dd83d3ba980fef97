use std::collections::{BTreeMap, HashSet};
use std::io::Read as _;

use base64::Engine as _;
use serde_json::Value;
use trailmill_core::key::{Classified, FileKind, ObjectKey};

use super::*;

fn small(seed: u64) -> SynthConfig {
    SynthConfig {
        accounts: 2,
        regions: 2,
        hours: 2,
        logs_per_hour: 3,
        records: 20,
        seed,
        large_file_mib: Some(1),
        ..SynthConfig::default()
    }
}

/// Every file under `root`, by its `/`-separated relative path.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .replace('\\', "/");
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let ra = generate(a.path(), &small(7)).unwrap();
    let rb = generate(b.path(), &small(7)).unwrap();
    assert_eq!(ra, rb);
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(fb[k] == *v, "{k} differs between runs");
    }
    // 2 accounts × 2 regions × 2 hours × 3 logs, plus the large file.
    assert_eq!(ra.log_files, 25);
    assert_eq!(ra.digest_files, 8);
    assert_eq!(fa.len(), 25 + 8 * 2 + 2);
    generate(c.path(), &small(8)).unwrap();
    let fc = files(c.path());
    assert!(
        fc.keys()
            .filter(|k| k.ends_with(".json.gz"))
            .all(|k| !fa.contains_key(k))
    );
}

#[test]
fn refuses_a_non_empty_output_and_bad_configs() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x"), "x").unwrap();
    let err = generate(dir.path(), &SynthConfig::default()).unwrap_err();
    assert!(matches!(err, SynthError::Output { .. }), "{err}");
    assert!(err.to_string().contains("not empty"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    for cfg in [
        SynthConfig {
            org_id: Some("abc".into()),
            ..SynthConfig::default()
        },
        SynthConfig {
            prefix: Some("a//b".into()),
            ..SynthConfig::default()
        },
        SynthConfig {
            prefix: Some("a/".into()),
            ..SynthConfig::default()
        },
        SynthConfig {
            regions: REGIONS.len() + 1,
            ..SynthConfig::default()
        },
        SynthConfig {
            records: 0,
            ..SynthConfig::default()
        },
        SynthConfig {
            start: -1,
            ..SynthConfig::default()
        },
    ] {
        let err = generate(empty.path(), &cfg).unwrap_err();
        assert!(matches!(err, SynthError::Config { .. }), "{cfg:?}: {err}");
    }
}

/// Checks one generated trail thoroughly; returns (events seen, log keys).
fn check_trail(root: &Path, report: &SynthReport, cfg: &SynthConfig) {
    let all = files(root);
    let keys: Value = serde_json::from_slice(&all[KEYS_FILE]).unwrap();
    let entry = &keys["PublicKeyList"][0];
    let public = base64::engine::general_purpose::STANDARD
        .decode(entry["Value"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        entry["Fingerprint"],
        hex::encode(<md5::Md5 as md5::Digest>::digest(&public))
    );
    assert_eq!(entry["Fingerprint"], report.fingerprint.as_str());
    assert!(entry["ValidityStartTime"].as_f64().unwrap() < report.start as f64);
    assert!(entry["ValidityEndTime"].as_f64().unwrap() > report.end as f64);
    let key = SigningKey::from_pkcs1_der(&all[PRIVATE_KEY_FILE]).unwrap();
    assert_eq!(key.public_der(), public);

    let mut event_ids = HashSet::new();
    let mut log_hashes = BTreeMap::new();
    let (mut events, mut uncompressed, mut compressed) = (0u64, 0u64, 0u64);
    let mut digests: BTreeMap<(String, String), Vec<(i64, String)>> = BTreeMap::new();
    for (path, bytes) in &all {
        if path == KEYS_FILE || path == PRIVATE_KEY_FILE || path.ends_with(SIGNATURE_SUFFIX) {
            continue;
        }
        let Classified::Trail(k) = ObjectKey::classify(path) else {
            panic!("{path} is not a CloudTrail key")
        };
        assert_eq!(k.prefix(), cfg.prefix.as_deref(), "{path}");
        assert_eq!(k.org_id(), cfg.org_id.as_deref(), "{path}");
        assert_eq!(k.to_string(), *path);
        match k.file.kind {
            FileKind::Log { unique } => {
                assert_eq!(unique.len(), 16);
                assert!(unique.bytes().all(|b| b.is_ascii_alphanumeric()));
                let body = gunzip(bytes);
                let v: Value = serde_json::from_slice(&body).unwrap();
                let records = v["Records"].as_array().unwrap();
                let t0 = k.file.time.unix_seconds();
                for r in records {
                    assert!(
                        event_ids.insert(r["eventID"].as_str().unwrap().to_owned()),
                        "duplicate eventID in {path}"
                    );
                    assert_eq!(r["awsRegion"], k.file.region);
                    assert_eq!(r["recipientAccountId"], k.file.account);
                    assert_eq!(r["eventType"], "AwsApiCall");
                    assert!(["1.08", "1.09"].contains(&r["eventVersion"].as_str().unwrap()));
                    let t = r["eventTime"].as_str().unwrap();
                    assert!(t.len() == 20 && t.ends_with('Z'), "{t}");
                    // Inside the file's five-minute window (the name has minute precision).
                    assert!(
                        t[..16] >= *time::iso(t0).get(..16).unwrap(),
                        "{t} before {path}"
                    );
                    assert!(*t < *time::iso(t0 + 360), "{t} after {path}");
                }
                events += records.len() as u64;
                uncompressed += body.len() as u64;
                compressed += bytes.len() as u64;
                log_hashes.insert(path.clone(), hex_sha256(&body));
            }
            FileKind::Digest {
                trail,
                home_region,
                backfill,
            } => {
                assert_eq!(
                    (trail, home_region, backfill),
                    (cfg.trail_name.as_str(), report.home_region.as_str(), false)
                );
                let chain = (k.file.account.to_owned(), k.file.region.to_owned());
                digests
                    .entry(chain)
                    .or_default()
                    .push((k.file.time.unix_seconds(), path.clone()));
            }
            FileKind::Insight { .. } => panic!("unexpected Insights file {path}"),
        }
    }
    assert_eq!(events, report.events);
    assert_eq!(event_ids.len() as u64, report.events);
    assert_eq!(
        (uncompressed, compressed),
        (report.uncompressed_bytes, report.compressed_bytes)
    );
    assert_eq!(log_hashes.len(), report.log_files);
    assert_eq!(digests.len(), cfg.accounts * cfg.regions);

    let mut listed = BTreeMap::new();
    let mut digest_count = 0;
    for ((account, region), mut chain) in digests {
        chain.sort();
        assert_eq!(chain.len(), cfg.hours);
        let mut previous: Option<(String, Vec<u8>, String, Value)> = None;
        for (end, path) in chain {
            digest_count += 1;
            let body = gunzip(&all[&path]);
            let d: Value = serde_json::from_slice(&body).unwrap();
            let signature =
                String::from_utf8(all[&format!("{path}{SIGNATURE_SUFFIX}")].clone()).unwrap();
            assert_eq!(d["awsAccountId"], account.as_str());
            assert_eq!(d["digestS3Bucket"], cfg.bucket.as_str());
            assert_eq!(d["digestS3Object"], path.as_str());
            assert_eq!(d["digestEndTime"], time::iso(end).as_str());
            assert_eq!(d["digestSignatureAlgorithm"], "SHA256withRSA");
            assert_eq!(d["digestPublicKeyFingerprint"], report.fingerprint.as_str());
            let end_text = d["digestEndTime"].as_str().unwrap();
            match &previous {
                None => {
                    for f in [
                        "previousDigestS3Bucket",
                        "previousDigestS3Object",
                        "previousDigestHashValue",
                        "previousDigestHashAlgorithm",
                        "previousDigestSignature",
                    ] {
                        assert!(d[f].is_null(), "{path}: {f} of a starting digest");
                    }
                    assert_eq!(d["digestStartTime"], time::iso(report.start).as_str());
                }
                Some((prev_key, prev_body, prev_sig, prev)) => {
                    assert_eq!(d["previousDigestS3Bucket"], cfg.bucket.as_str());
                    assert_eq!(d["previousDigestS3Object"], prev_key.as_str());
                    assert_eq!(d["previousDigestHashValue"], hex_sha256(prev_body).as_str());
                    assert_eq!(d["previousDigestHashAlgorithm"], "SHA-256");
                    assert_eq!(d["previousDigestSignature"], prev_sig.as_str());
                    assert_eq!(d["digestStartTime"], prev["digestEndTime"]);
                }
            }
            let prev_sig = previous.as_ref().map(|p| p.2.as_str());
            let to_sign = signing_string(end_text, &cfg.bucket, &path, &body, prev_sig);
            assert!(
                verify_signature(&public, &to_sign, &signature),
                "{path}: signature does not verify"
            );
            assert_eq!(
                sign_digest(&key, &to_sign),
                signature,
                "signatures are deterministic"
            );
            assert!(!verify_signature(
                &public,
                &format!("{to_sign}x"),
                &signature
            ));
            let logs = d["logFiles"].as_array().unwrap();
            assert!(!logs.is_empty());
            let (mut oldest, mut newest) = (String::from("~"), String::new());
            for l in logs {
                let object = l["s3Object"].as_str().unwrap().to_owned();
                assert_eq!(l["s3Bucket"], cfg.bucket.as_str());
                assert_eq!(l["hashAlgorithm"], "SHA-256");
                assert_eq!(l["hashValue"], log_hashes[&object].as_str(), "{object}");
                oldest = oldest.min(l["oldestEventTime"].as_str().unwrap().to_owned());
                newest = newest.max(l["newestEventTime"].as_str().unwrap().to_owned());
                let lk = ObjectKey::parse(&object).unwrap();
                assert_eq!(
                    (lk.file.account, lk.file.region),
                    (account.as_str(), region.as_str())
                );
                assert!(
                    listed.insert(object, path.clone()).is_none(),
                    "log listed twice"
                );
            }
            assert_eq!(d["oldestEventTime"], oldest.as_str());
            assert_eq!(d["newestEventTime"], newest.as_str());
            previous = Some((path, body, signature, d));
        }
    }
    assert_eq!(digest_count, report.digest_files);
    assert_eq!(
        listed.len(),
        log_hashes.len(),
        "every log file is in exactly one digest"
    );
}

#[test]
fn a_plain_trail_has_unique_events_and_sound_digest_chains() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small(3);
    let report = generate(dir.path(), &cfg).unwrap();
    check_trail(dir.path(), &report, &cfg);
    assert_eq!(
        report.trail_arn,
        format!(
            "arn:aws:cloudtrail:us-east-1:{}:trail/synth-trail",
            report.accounts[0]
        )
    );
    assert_eq!(report.regions, ["us-east-1", "eu-west-1"]);
    assert!(
        report
            .accounts
            .iter()
            .all(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
    );
    let large = report.large_file.as_deref().unwrap();
    let size = gunzip(&fs::read(dir.path().join(large)).unwrap()).len() as u64;
    assert!((1 << 20..(1 << 20) + 8192).contains(&size), "{size}");
    assert!(large.contains(&format!("/{}/CloudTrail/us-east-1/", report.accounts[0])));
}

#[test]
fn an_org_trail_with_a_prefix_and_a_home_region() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        org_id: Some("o-abc123".into()),
        prefix: Some("a/b/c".into()),
        home_region: Some("eu-west-1".into()),
        trail_name: "org_trail".into(),
        large_file_mib: None,
        regions: 3,
        start: DEFAULT_START + 23 * 3600, // digests cross midnight
        ..small(5)
    };
    let report = generate(dir.path(), &cfg).unwrap();
    check_trail(dir.path(), &report, &cfg);
    assert!(
        report
            .trail_arn
            .starts_with("arn:aws:cloudtrail:eu-west-1:")
    );
    assert!(
        fs::read_dir(dir.path().join("a/b/c/AWSLogs/o-abc123"))
            .unwrap()
            .count()
            == 2
    );
}

#[test]
fn events_look_like_cloudtrail_and_compress_like_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        accounts: 1,
        regions: 1,
        hours: 1,
        logs_per_hour: 4,
        records: 500,
        ..SynthConfig::default()
    };
    let report = generate(dir.path(), &cfg).unwrap();
    let average = report.uncompressed_bytes as f64 / report.events as f64;
    let ratio = report.uncompressed_bytes as f64 / report.compressed_bytes as f64;
    assert!(
        (1000.0..1500.0).contains(&average),
        "average event size {average}"
    );
    assert!((5.5..9.0).contains(&ratio), "compression ratio {ratio}");

    let mut names = HashSet::new();
    let mut identities = HashSet::new();
    let (mut data, mut errors, mut shared, mut vpce, mut null_response) = (0, 0, 0, 0, 0);
    for (path, bytes) in files(dir.path()) {
        if !path.contains("/CloudTrail/") {
            continue;
        }
        let v: Value = serde_json::from_slice(&gunzip(&bytes)).unwrap();
        for r in v["Records"].as_array().unwrap() {
            names.insert(format!(
                "{}:{}",
                r["eventSource"].as_str().unwrap(),
                r["eventName"].as_str().unwrap()
            ));
            let kind = r["userIdentity"]["type"].as_str().unwrap().to_owned();
            if kind == "AssumedRole" {
                assert!(r["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"].is_string());
                assert!(
                    r["userIdentity"]["sessionContext"]["attributes"]["creationDate"].is_string()
                );
            }
            if kind == "AWSService" {
                assert!(r["userIdentity"]["invokedBy"].is_string());
            }
            identities.insert(kind);
            let category = r["eventCategory"].as_str().unwrap();
            assert_eq!(
                r["managementEvent"].as_bool().unwrap(),
                category == "Management"
            );
            if category == "Data" {
                data += 1;
                assert!(r["resources"].is_array());
            }
            errors += usize::from(r["errorCode"].is_string());
            shared += usize::from(r["sharedEventID"].is_string());
            vpce += usize::from(r["vpcEndpointId"].is_string());
            null_response += usize::from(r["responseElements"].is_null());
            assert!(r["requestParameters"].is_object() || r["requestParameters"].is_null());
            assert!(r["readOnly"].is_boolean());
            assert!(r["requestID"].is_string());
            let id = r["eventID"].as_str().unwrap();
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "4", "{id} is a version 4 UUID");
        }
    }
    for name in [
        "s3.amazonaws.com:GetObject",
        "sts.amazonaws.com:AssumeRole",
        "kms.amazonaws.com:Decrypt",
        "lambda.amazonaws.com:Invoke",
    ] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    assert_eq!(identities.len(), 3, "{identities:?}");
    let n = report.events as usize;
    assert!(data > n / 5 && data < n / 2, "{data} data events of {n}");
    assert!(errors > 0 && shared > 0 && vpce > 0 && null_response > n / 4);
}

#[test]
fn signing_keys_are_deterministic_and_round_trip_through_der() {
    let a = SigningKey::generate(42).unwrap();
    let b = SigningKey::generate(42).unwrap();
    assert_eq!(a.to_pkcs1_der(), b.to_pkcs1_der());
    let c = SigningKey::from_pkcs1_der(&a.to_pkcs1_der()).unwrap();
    assert_eq!(c.public_der(), a.public_der());
    assert_eq!(c.fingerprint(), a.fingerprint());
    assert_eq!(a.fingerprint().len(), 32);
    let s = signing_string("2024-01-01T01:00:05Z", "b", "k.json.gz", b"{}", None);
    assert_eq!(
        s,
        "2024-01-01T01:00:05Z\nb/k.json.gz\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\nnull"
    );
    let sig = sign_digest(&c, &s);
    assert_eq!(sig.len(), 512);
    assert!(verify_signature(&a.public_der(), &s, &sig));
    assert!(SigningKey::from_pkcs1_der(b"nope").is_err());
}

#[test]
fn unique_uuids_keep_every_bit_of_their_input() {
    let mut rng = rng_for(1, 99);
    let mut seen = HashSet::new();
    for i in 0..20_000u64 {
        // Inputs differing only in the bits that share bytes with the version and variant.
        for x in [i, i << 48, i << 52, i << 56, i << 60] {
            let id = events::unique_uuid(x, &mut rng);
            let again = events::unique_uuid(x, &mut rng);
            assert_eq!(id[..19], again[..19], "same input, same unique part");
            seen.insert(format!("{}{}", &id[..19], &id[20..21]));
        }
    }
    // Distinct inputs never collide in the unique part.
    let distinct: HashSet<u64> = (0..20_000u64)
        .flat_map(|i| [i, i << 48, i << 52, i << 56, i << 60])
        .collect();
    assert_eq!(seen.len(), distinct.len());
}
