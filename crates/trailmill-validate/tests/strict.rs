//! Checks only trailmill makes, that the AWS CLI has no counterpart for
//! (so there is nothing to compare with the oracle): key fingerprints and
//! validity windows, links that loop, keys that would escape the mirror,
//! and running without `--bucket`.

use serde_json::Value;
use trailmill_validate::OutputFormat;

mod common;
use common::*;

fn keys_json(t: &Trail) -> Value {
    serde_json::from_slice(&std::fs::read(t.root.join("keys.json")).unwrap()).unwrap()
}

fn write_keys(t: &Trail, v: &Value) {
    std::fs::write(t.root.join("keys.json"), serde_json::to_vec(v).unwrap()).unwrap();
}

#[test]
fn a_listed_fingerprint_must_be_the_keys_md5() {
    let t = Trail::small(40);
    let chain = t.chain(t.account(), t.region());
    // The same key listed under a second, wrong fingerprint that one digest names.
    let mut keys = keys_json(&t);
    let mut alias = keys["PublicKeyList"][0].clone();
    alias["Fingerprint"] = Value::from("f".repeat(32));
    keys["PublicKeyList"].as_array_mut().unwrap().push(alias);
    write_keys(&t, &keys);
    let mut v = t.digest(&chain[2]);
    v["digestPublicKeyFingerprint"] = Value::from("f".repeat(32));
    t.resign(&chain[2], &v);
    t.fix_chain_after(&chain, 2);
    let run = trailmill(&t, &verbose());
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!(
            "\nDigest file\t{}\tINVALID: public key listed with fingerprint {} has MD5 fingerprint {}\n\n",
            t.uri(&chain[2]),
            "f".repeat(32),
            t.report.fingerprint
        )
    );
}

#[test]
fn the_keys_validity_window_must_cover_the_digest() {
    let t = Trail::small(41);
    let mut keys = keys_json(&t);
    // Valid until 03:00 (ISO-8601 this time); with an hour of grace, until 04:00.
    keys["PublicKeyList"][0]["ValidityEndTime"] = Value::from(iso(t.report.start + 3 * 3600));
    write_keys(&t, &keys);
    let run = trailmill(&t, &verbose());
    assert_eq!(run.code, 1);
    let bad: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
    // The digests ending a few seconds after 04:00, 05:00 and 06:00 are not covered.
    assert_eq!(bad.len(), 3, "{}", run.stderr);
    assert!(bad.iter().all(|l| l.ends_with(&format!(
        "INVALID: public key with fingerprint {} was not valid when the digest was signed",
        t.report.fingerprint
    ))));
}

#[test]
fn links_that_loop_are_reported_and_the_walk_ends() {
    let t = Trail::small(42);
    let chain = t.chain(t.account(), t.region());
    let mut v = t.digest(&chain[1]);
    v["previousDigestS3Object"] = Value::from(chain[3].clone());
    t.resign(&chain[1], &v);
    t.fix_chain_after(&chain, 1);
    let run = trailmill(&t, &verbose());
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains(&format!(
        "Digest file\t{}\tINVALID: previous digest hash value does not match {}",
        t.uri(&chain[1]),
        t.uri(&chain[3])
    )));
    assert!(
        run.stderr.contains(&format!(
            "Digest file\t{}\tINVALID: invalid format",
            t.uri(&chain[3])
        )),
        "{}",
        run.stderr
    );
    let (_, report) = trailmill_with(&args(&t, &verbose(), OutputFormat::Json));
    assert_eq!(report.trails[0].1.invalid_digests, 2);
}

#[test]
fn keys_in_digests_never_escape_the_mirror() {
    let t = Trail::small(43);
    let chain = t.chain(t.account(), t.region());
    // A file outside the bucket root that a digest points at.
    let outside = t.root.parent().unwrap().join("secret.json.gz");
    std::fs::write(&outside, gzip(b"{}")).unwrap();
    let mut v = t.digest(&chain[3]);
    v["previousDigestS3Object"] = Value::from("../secret.json.gz");
    v["logFiles"][0]["s3Object"] = Value::from("/etc/passwd");
    t.resign(&chain[3], &v);
    t.fix_chain_after(&chain, 3);
    let run = trailmill(&t, &verbose());
    assert!(run.stderr.contains(&format!(
        "Digest file\t{}\tINVALID: not found (unsafe key: \"..\" path segment)",
        t.uri("../secret.json.gz")
    )));
    assert!(run.stderr.contains(&format!(
        "Log file\t{}\tINVALID: not found (unsafe key: absolute path)",
        t.uri("/etc/passwd")
    )));
}

#[test]
fn the_bucket_name_comes_from_the_digests_without_bucket() {
    let t = Trail::small(44);
    let mut a = args(&t, &verbose(), OutputFormat::AwsCli);
    a.bucket = None;
    let (run, report) = trailmill_with(&a);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report.trails[0].0.bucket, t.report.bucket);
    assert_eq!(run.stdout, trailmill(&t, &verbose()).stdout);
}

#[test]
fn a_wrong_bucket_name_means_moved_digests() {
    let t = Trail::small(45);
    let mut a = args(&t, &Opts::default(), OutputFormat::AwsCli);
    a.bucket = Some("another-bucket".into());
    let (run, _) = trailmill_with(&a);
    assert_eq!(run.code, 1);
    let first = t.chain(t.account(), t.region()).pop().unwrap();
    assert!(run.stderr.starts_with(&format!(
        "Digest file\ts3://another-bucket/{first}\tINVALID: has been moved from its original location\n\n"
    )));
}
