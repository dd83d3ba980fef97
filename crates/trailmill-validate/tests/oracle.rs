//! trailmill's verdicts against the real `aws cloudtrail validate-logs`.
//!
//! Each scenario generates a trail with `trailmill_synth::generate`, damages it
//! the way the scenario says, and runs both the reference validator
//! (`scripts/aws-validate-logs.py`: the pinned AWS CLI v1's `aws cloudtrail
//! validate-logs`, unchanged, against a private moto server holding the
//! trail) and trailmill with `--format aws-cli`, then
//! compares them file by file — and byte for byte where trailmill agrees.
//!
//! Where trailmill is deliberately stricter the test asserts the exact
//! difference:
//! - a deleted digest also leaves its log files unattested (reported);
//! - of two consecutive deleted digests the CLI reports one, trailmill both
//!   (aws/aws-cli#7054);
//! - a re-signed digest whose `previousDigestHashValue` is wrong passes the
//!   CLI, not trailmill;
//! - a digest signed with SHA-512 passes the CLI, not trailmill;
//! - a deleted newest digest is invisible to the CLI; trailmill sees it with
//!   `--expect-until`;
//! - offline without sidecars the CLI rejects every digest; trailmill
//!   verifies all but the newest through the chain.
//!
//! Environment: `TRAILMILL_ORACLE_PYTHON` overrides the python (default
//! `<workspace>/.venv/oracle/bin/python`), `TRAILMILL_ORACLE_SCRIPT` the
//! harness (default `<workspace>/scripts/aws-validate-logs.py`), and
//! `TRAILMILL_MOTO_PYTHON` the moto server's python; if one is missing the
//! test fails and says to run `scripts/setup-oracle.sh`.
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use trailmill_synth::{SynthConfig, sign_digest};
use trailmill_validate::{OutputFormat, Timestamp, display_time};

mod common;
use common::*;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The oracle's python and script; fails (never skips) when they are missing.
fn oracle_paths() -> (PathBuf, PathBuf) {
    let python = std::env::var_os("TRAILMILL_ORACLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/oracle/bin/python"));
    let script = std::env::var_os("TRAILMILL_ORACLE_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("scripts/aws-validate-logs.py"));
    assert!(
        python.exists(),
        "the reference validator's python {} is missing: run scripts/setup-oracle.sh (or set TRAILMILL_ORACLE_PYTHON)",
        python.display()
    );
    assert!(
        script.exists(),
        "the reference validator {} is missing: run scripts/setup-oracle.sh (or set TRAILMILL_ORACLE_SCRIPT)",
        script.display()
    );
    (python, script)
}

fn oracle(t: &Trail, o: &Opts) -> Run {
    let (python, script) = oracle_paths();
    let r = &t.report;
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg("--root")
        .arg(&t.root)
        .args(["--bucket", &r.bucket, "--trail-arn", &r.trail_arn])
        .arg("--public-keys")
        .arg(t.root.join("keys.json"))
        .args(["--start-time", &iso(r.start), "--end-time", &iso(r.end)]);
    if let Some(a) = &o.account {
        cmd.args(["--account-id", a]);
    }
    if let Some(reg) = &o.region {
        cmd.args(["--region", reg]);
    }
    if let Some(p) = &r.prefix {
        cmd.args(["--s3-prefix", p]);
    }
    if let Some(org) = &r.org_id {
        cmd.args(["--org-id", org]);
    }
    if o.verbose {
        cmd.arg("--verbose");
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Both validators print exactly the same bytes and exit with the same code.
#[track_caller]
fn assert_identical(t: &Trail, o: &Opts) -> Run {
    let (a, b) = (oracle(t, o), trailmill(t, o));
    assert_eq!(
        b.stdout, a.stdout,
        "stdout differs\n--- oracle stderr:\n{}\n--- trailmill stderr:\n{}",
        a.stderr, b.stderr
    );
    assert_eq!(b.stderr, a.stderr, "stderr differs");
    assert_eq!(b.code, a.code, "exit code differs");
    b
}

#[test]
fn valid_trail_is_identical_with_and_without_verbose() {
    let t = Trail::small(11);
    let run = assert_identical(&t, &verbose());
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("\n6/6 digest files valid\n12/12 log files valid\n"),
        "{}",
        run.stdout
    );
    let quiet = assert_identical(&t, &Opts::default());
    assert!(!quiet.stdout.contains("\tvalid"));
}

#[test]
fn tampered_log_is_identical() {
    let t = Trail::small(12);
    let chain = t.chain(t.account(), t.region());
    let log = t.logs_of(&chain[2])[0].clone();
    let mut body = gunzip(&std::fs::read(t.path(&log)).unwrap());
    body.extend_from_slice(b" ");
    std::fs::write(t.path(&log), gzip(&body)).unwrap();
    let run = assert_identical(&t, &verbose());
    assert!(run.stderr.contains(&format!(
        "Log file\t{}\tINVALID: hash value doesn't match",
        t.uri(&log)
    )));
    assert_eq!(run.code, 1);
    assert_identical(&t, &Opts::default());
}

#[test]
fn tampered_digest_with_its_signature_kept_is_identical() {
    let t = Trail::small(13);
    let chain = t.chain(t.account(), t.region());
    let mut v = t.digest(&chain[3]);
    v["logFiles"][0]["hashValue"] = Value::from("00".repeat(32));
    t.write_unsigned(&chain[3], &v);
    let run = assert_identical(&t, &verbose());
    assert!(run.stderr.contains(&format!(
        "Digest file\t{}\tINVALID: signature verification failed",
        t.uri(&chain[3])
    )));
}

#[test]
fn deleted_middle_digest_agrees_and_its_logs_are_unattested() {
    let t = Trail::small(14);
    let chain = t.chain(t.account(), t.region());
    let orphans = t.logs_of(&chain[3]);
    std::fs::remove_file(t.path(&chain[3])).unwrap();
    std::fs::remove_file(t.path(&format!("{}.sig", chain[3]))).unwrap();
    let (a, b) = (oracle(&t, &verbose()), trailmill(&t, &verbose()));
    let not_found = format!("Digest file\t{}\tINVALID: not found", t.uri(&chain[3]));
    assert!(a.stderr.contains(&not_found) && b.stderr.contains(&not_found));
    // stdout differs only by the summary line for them (and so by the blank
    // line the CLI writes before its summary when the last line was on stdout).
    assert!(minus(&a.stdout, &b.stdout).is_empty());
    assert_eq!(
        minus(&b.stdout, &a.stdout),
        ["2 log files not referenced by any digest file"]
    );
    // Stricter: the deleted digest's log files are still there, vouched for by nothing.
    let extra: Vec<String> = orphans
        .iter()
        .map(|k| {
            format!(
                "Log file\t{}\tINVALID: not referenced by any digest file",
                t.uri(k)
            )
        })
        .collect();
    assert_eq!(minus(&b.stderr, &a.stderr), extra);
    assert!(minus(&a.stderr, &b.stderr).is_empty());
    assert_eq!((a.code, b.code), (1, 1));
}

#[test]
fn two_consecutive_deleted_digests_are_both_reported() {
    let t = Trail::small(15);
    let chain = t.chain(t.account(), t.region());
    let mut orphans = t.logs_of(&chain[2]);
    orphans.extend(t.logs_of(&chain[3]));
    orphans.sort();
    for k in [&chain[2], &chain[3]] {
        std::fs::remove_file(t.path(k)).unwrap();
        std::fs::remove_file(t.path(&format!("{k}.sig"))).unwrap();
    }
    let (a, b) = (oracle(&t, &verbose()), trailmill(&t, &verbose()));
    // The CLI reports the newer one only (aws/aws-cli#7054)…
    let newer = format!("Digest file\t{}\tINVALID: not found", t.uri(&chain[3]));
    assert!(
        a.stderr.contains(&newer) && !a.stderr.contains(&t.uri(&chain[2])),
        "{}",
        a.stderr
    );
    assert!(
        a.stdout
            .contains("4/5 digest files valid, 1/5 digest files INVALID")
    );
    // …trailmill reports both: the older one inferred from the gap, its key estimated.
    let extra = minus(&b.stderr, &a.stderr);
    let inferred: Vec<&String> = extra
        .iter()
        .filter(|l| l.starts_with("Digest file"))
        .collect();
    assert_eq!(inferred.len(), 1, "{extra:?}");
    let estimated = chain[2].replace(&format!("_{}", &chain[2][chain[2].len() - 24..]), "");
    assert!(
        inferred[0].contains(&format!("{estimated}_~")),
        "{} vs {estimated}",
        inferred[0]
    );
    assert!(inferred[0].ends_with(&format!(
            "INVALID: not found (inferred: a digest ending about {} is missing between {} and {})",
            display_time(
                trailmill_validate::parse_time(&chain[2][chain[2].len() - 24..chain[2].len() - 8])
                    .unwrap()
            ),
            t.uri(&chain[1]),
            t.uri(&chain[3])
        )));
    let mut unattested: Vec<String> = extra
        .iter()
        .filter(|l| l.ends_with("not referenced by any digest file"))
        .cloned()
        .collect();
    unattested.sort();
    let want: Vec<String> = orphans
        .iter()
        .map(|k| {
            format!(
                "Log file\t{}\tINVALID: not referenced by any digest file",
                t.uri(k)
            )
        })
        .collect();
    assert_eq!(unattested, want);
    assert_eq!(extra.len(), 1 + want.len());
    assert!(
        b.stdout
            .contains("4/6 digest files valid, 2/6 digest files INVALID"),
        "{}",
        b.stdout
    );
}

#[test]
fn deleted_log_is_identical() {
    let t = Trail::small(16);
    let chain = t.chain(t.account(), t.region());
    let log = t.logs_of(&chain[4])[1].clone();
    std::fs::remove_file(t.path(&log)).unwrap();
    let run = assert_identical(&t, &verbose());
    assert!(
        run.stderr
            .contains(&format!("Log file\t{}\tINVALID: not found", t.uri(&log)))
    );
}

#[test]
fn gzip_member_appended_to_a_log_is_identical() {
    let t = Trail::small(17);
    let chain = t.chain(t.account(), t.region());
    let log = t.logs_of(&chain[1])[0].clone();
    let mut bytes = std::fs::read(t.path(&log)).unwrap();
    bytes.extend(gzip(br#"{"Records":[{"eventName":"Smuggled"}]}"#));
    std::fs::write(t.path(&log), bytes).unwrap();
    let run = assert_identical(&t, &verbose());
    assert!(run.stderr.contains(&format!(
        "Log file\t{}\tINVALID: unexpected data after end of compressed stream",
        t.uri(&log)
    )));
}

#[test]
fn unknown_fingerprint_is_identical() {
    let t = Trail::small(18);
    let chain = t.chain(t.account(), t.region());
    let mut v = t.digest(&chain[2]);
    v["digestPublicKeyFingerprint"] = Value::from("0123456789abcdef0123456789abcdef");
    t.resign(&chain[2], &v);
    t.fix_chain_after(&chain, 2);
    let run = assert_identical(&t, &verbose());
    assert!(run.stderr.contains(&format!(
        "Digest file\t{}\tINVALID: public key not found in region {} for fingerprint 0123456789abcdef0123456789abcdef",
        t.uri(&chain[2]),
        t.report.home_region
    )));
}

#[test]
fn moved_digest_is_identical() {
    let t = Trail::small(19);
    let chain = t.chain(t.account(), t.region());
    // Move the fourth digest to a key ten seconds earlier (same folder).
    let k = &chain[3];
    let time = &k[k.len() - 24..k.len() - 8];
    let earlier =
        Timestamp::from_second(trailmill_validate::parse_time(time).unwrap().as_second() - 10)
            .unwrap();
    let moved = k.replace(time, &earlier.strftime("%Y%m%dT%H%M%SZ").to_string());
    std::fs::rename(t.path(k), t.path(&moved)).unwrap();
    std::fs::rename(t.path(&format!("{k}.sig")), t.path(&format!("{moved}.sig"))).unwrap();
    let run = assert_identical(&t, &verbose());
    assert!(
        run.stderr
            .contains(&format!("Digest file\t{}\tINVALID: not found", t.uri(k)))
    );
    assert!(run.stderr.contains(&format!(
        "Digest file\t{}\tINVALID: has been moved from its original location",
        t.uri(&moved)
    )));
}

#[test]
fn org_trail_with_a_multi_segment_prefix_is_identical() {
    let t = Trail::new(SynthConfig {
        accounts: 2,
        regions: 2,
        hours: 3,
        logs_per_hour: 2,
        records: 2,
        seed: 20,
        org_id: Some("o-abc123xyz".into()),
        prefix: Some("org/logs/trails".into()),
        ..SynthConfig::default()
    });
    let member = t.report.accounts[1].clone();
    let region = t.report.regions[1].clone();
    let o = Opts {
        account: Some(member),
        region: Some(region),
        verbose: true,
        ..Opts::default()
    };
    let run = assert_identical(&t, &o);
    assert!(
        run.stdout.contains("3/3 digest files valid"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("/org/logs/trails/AWSLogs/o-abc123xyz/"));
}

#[test]
fn restarted_chain_is_identical() {
    let t = Trail::small(21);
    let chain = t.chain(t.account(), t.region());
    let mut v = t.digest(&chain[3]);
    for f in [
        "previousDigestS3Bucket",
        "previousDigestS3Object",
        "previousDigestHashValue",
        "previousDigestHashAlgorithm",
        "previousDigestSignature",
    ] {
        v[f] = Value::Null;
    }
    t.resign(&chain[3], &v);
    t.fix_chain_after(&chain, 3);
    let run = assert_identical(&t, &verbose());
    assert!(
        run.stderr
            .starts_with("\nNo log files were delivered by CloudTrail between "),
        "{}",
        run.stderr
    );
    assert_eq!(run.code, 0);
}

#[test]
fn empty_digest_is_identical() {
    let t = Trail::small(22);
    let chain = t.chain(t.account(), t.region());
    for log in t.logs_of(&chain[2]) {
        std::fs::remove_file(t.path(&log)).unwrap();
    }
    let mut v = t.digest(&chain[2]);
    v["logFiles"] = Value::Array(Vec::new());
    v["newestEventTime"] = Value::Null;
    v["oldestEventTime"] = Value::Null;
    t.resign(&chain[2], &v);
    t.fix_chain_after(&chain, 2);
    let run = assert_identical(&t, &verbose());
    assert!(
        run.stdout
            .contains("6/6 digest files valid\n10/10 log files valid"),
        "{}",
        run.stdout
    );
}

#[test]
fn wrong_previous_hash_link_passes_the_cli_but_not_trailmill() {
    let t = Trail::small(23);
    let chain = t.chain(t.account(), t.region());
    let mut v = t.digest(&chain[3]);
    v["previousDigestHashValue"] = Value::from("ab".repeat(32));
    t.resign(&chain[3], &v);
    t.fix_chain_after(&chain, 3);
    let (a, b) = (oracle(&t, &verbose()), trailmill(&t, &verbose()));
    assert_eq!(a.code, 0, "the CLI never checks previousDigestHashValue");
    assert_eq!(b.code, 1);
    let valid = format!("Digest file\t{}\tvalid", t.uri(&chain[3]));
    let invalid = format!(
        "Digest file\t{}\tINVALID: previous digest hash value does not match {}",
        t.uri(&chain[3]),
        t.uri(&chain[2])
    );
    assert_eq!(
        minus(&a.stdout, &b.stdout),
        [valid, "6/6 digest files valid".to_string()]
    );
    assert_eq!(
        minus(&b.stdout, &a.stdout),
        ["5/6 digest files valid, 1/6 digest files INVALID"]
    );
    assert_eq!(b.stderr, format!("\n{invalid}\n\n"));
    // Everything else, the order of the lines included, is the CLI's.
    assert_eq!(a.verdicts().len(), b.verdicts().len());
}

#[test]
fn sha512_signature_passes_the_cli_but_not_trailmill() {
    let t = Trail::small(24);
    let chain = t.chain(t.account(), t.region());
    let v = t.digest(&chain[2]);
    t.resign_sha512(&chain[2], &v);
    t.fix_chain_after(&chain, 2);
    let (a, b) = (oracle(&t, &verbose()), trailmill(&t, &verbose()));
    assert_eq!(
        a.code, 0,
        "the CLI accepts PKCS#1 v1.5 signatures with SHA-512:\n{}{}",
        a.stdout, a.stderr
    );
    assert_eq!(b.code, 1);
    let (fa, fb) = (a.by_file(), b.by_file());
    let d = format!("Digest file {}", t.uri(&chain[2]));
    assert_eq!(fa[&d], "valid");
    assert_eq!(
        fb[&d],
        "INVALID: signature verification failed (signed with SHA-512; only SHA-256 is accepted)"
    );
    // trailmill does not hash the logs of a digest it cannot trust; all else agrees.
    let skipped: Vec<String> = t
        .logs_of(&chain[2])
        .iter()
        .map(|k| format!("Log file {}", t.uri(k)))
        .collect();
    for (file, status) in &fa {
        if *file == d {
            continue;
        }
        if skipped.contains(file) {
            assert!(!fb.contains_key(file));
        } else {
            assert_eq!(fb.get(file), Some(status), "{file}");
        }
    }
}

#[test]
fn deleted_newest_digest_needs_expect_until() {
    let t = Trail::small(25);
    let chain = t.chain(t.account(), t.region());
    let newest = chain.last().unwrap();
    std::fs::remove_file(t.path(newest)).unwrap();
    std::fs::remove_file(t.path(&format!("{newest}.sig"))).unwrap();
    // Without --expect-until neither validator can tell.
    let run = assert_identical(&t, &verbose());
    assert_eq!(run.code, 0);
    // The newest remaining digest ends an hour before the deleted one, so more
    // than an hour before a time just after the deleted one's end.
    let expected_until = iso(t.report.end + 300);
    let until = Opts {
        expect_until: Some(expected_until.clone()),
        ..verbose()
    };
    let b = trailmill(&t, &until);
    assert_eq!(b.code, 1);
    let penultimate_end = t.digest(&chain[chain.len() - 2])["digestEndTime"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        b.stderr.contains(&format!(
            "Digest chain\ts3://{}/AWSLogs/{}/CloudTrail-Digest/{}/\tINVALID: newest digest ends at {penultimate_end}, but digests are expected until {}",
            t.report.bucket,
            t.account(),
            t.region(),
            expected_until
        )),
        "{}",
        b.stderr
    );
}

#[test]
fn offline_without_sidecars_verifies_through_the_chain() {
    let t = Trail::small(26);
    let chain = t.chain(t.account(), t.region());
    for k in &chain {
        std::fs::remove_file(t.path(&format!("{k}.sig"))).unwrap();
    }
    // The CLI, without metadata, rejects every digest.
    let a = oracle(&t, &verbose());
    assert!(
        a.stdout
            .contains("0/6 digest files valid, 6/6 digest files INVALID"),
        "{}",
        a.stdout
    );
    // trailmill verifies each digest with the signature its verified newer
    // neighbour recorded; only the newest cannot be verified offline.
    let b = trailmill(&t, &verbose());
    assert_eq!(b.code, 1);
    let newest = chain.last().unwrap();
    assert_eq!(
        b.stderr,
        format!(
            "Digest file\t{}\tINVALID: signature not available offline\n\n",
            t.uri(newest)
        )
    );
    assert!(
        b.stdout
            .contains("5/6 digest files valid, 1/6 digest files INVALID\n10/10 log files valid"),
        "{}",
        b.stdout
    );
    // With only the newest digest's sidecar, everything verifies.
    let sig = {
        let v = t.digest(newest);
        let body = t.digest_body(newest);
        sign_digest(&t.key, &t.string_to_sign(newest, &v, &body))
    };
    std::fs::write(t.path(&format!("{newest}.sig")), sig).unwrap();
    let b = trailmill(&t, &verbose());
    assert_eq!(b.code, 0, "{}{}", b.stdout, b.stderr);
    assert!(
        b.stdout
            .contains("6/6 digest files valid\n12/12 log files valid")
    );
}

#[test]
fn all_discovers_every_account_and_region_and_agrees_per_chain() {
    let t = Trail::new(SynthConfig {
        accounts: 2,
        regions: 2,
        hours: 3,
        logs_per_hour: 2,
        records: 2,
        seed: 27,
        ..SynthConfig::default()
    });
    // Damage one chain so that the run is invalid.
    let (acct, region) = (t.report.accounts[1].clone(), t.report.regions[1].clone());
    let chain = t.chain(&acct, &region);
    let log = t.logs_of(&chain[1])[0].clone();
    std::fs::remove_file(t.path(&log)).unwrap();

    let mut a = args(&t, &verbose(), OutputFormat::AwsCli);
    a.trail_arn = None;
    a.all = true;
    let (run, report) = trailmill_with(&a);
    assert_eq!(report.trails.len(), 4);
    assert_eq!(run.code, 1);
    // Each chain's lines are the CLI's for that account and region.
    let mut oracle_lines = Vec::new();
    for account in &t.report.accounts {
        for region in &t.report.regions {
            let o = Opts {
                account: Some(account.clone()),
                region: Some(region.clone()),
                verbose: true,
                ..Opts::default()
            };
            oracle_lines.extend(oracle(&t, &o).verdicts());
        }
    }
    let mut ours = run.verdicts();
    ours.sort();
    oracle_lines.sort();
    assert_eq!(ours, oracle_lines);

    // JSON: one object per file plus summaries and a total.
    let mut j = a.clone();
    j.format = OutputFormat::Json;
    let (run, _) = trailmill_with(&j);
    let objs: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let files = objs.iter().filter(|o| o["type"] == "file").count();
    assert_eq!(files, 4 * 3 + 4 * 3 * 2);
    let bad: Vec<&Value> = objs.iter().filter(|o| o["status"] == "invalid").collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["problem"], "not_found");
    assert_eq!(bad[0]["key"], log.as_str());
    let total = objs.last().unwrap();
    assert_eq!(
        (
            total["type"].as_str(),
            total["exit_code"].as_i64(),
            total["trails"].as_i64()
        ),
        (Some("total"), Some(1), Some(4))
    );

    // Human: concise, names the problem.
    let mut h = a;
    h.format = OutputFormat::Human;
    h.verbose = false;
    let (run, _) = trailmill_with(&h);
    assert!(
        run.stdout
            .contains(&format!("✗ log      {}  not found", t.uri(&log))),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("INVALID: 4 trails"), "{}", run.stdout);
}

#[test]
fn data_after_a_digest_gzip_stream_passes_the_cli_but_not_trailmill() {
    let t = Trail::small(28);
    let chain = t.chain(t.account(), t.region());
    let mut bytes = std::fs::read(t.path(&chain[2])).unwrap();
    bytes.extend(gzip(b"{\"logFiles\":[]}"));
    std::fs::write(t.path(&chain[2]), bytes).unwrap();
    let (a, b) = (oracle(&t, &verbose()), trailmill(&t, &verbose()));
    assert_eq!(
        a.code, 0,
        "the CLI ignores bytes after a digest's gzip stream"
    );
    let d = format!("Digest file {}", t.uri(&chain[2]));
    let (fa, fb) = (a.by_file(), b.by_file());
    assert_eq!(fa[&d], "valid");
    assert_eq!(
        fb[&d],
        "INVALID: unexpected data after end of compressed stream"
    );
    // The signature still vouches for the content: the chain and logs are checked as usual.
    assert_eq!(fa.len(), fb.len());
    assert_eq!(
        fa.iter().filter(|(f, s)| **f != d && fb[*f] != **s).count(),
        0
    );
    assert_eq!(b.code, 1);
}

#[test]
fn backfill_digest_is_verified_offline_where_the_cli_needs_its_metadata() {
    let t = Trail::small(29);
    let chain = t.chain(t.account(), t.region());
    // A backfill digest for the third hour: a starting digest of its own chain.
    let key = chain[2].replace(".json.gz", "_backfill.json.gz");
    let mut v = t.digest(&chain[2]);
    v["digestS3Object"] = Value::from(key.clone());
    for f in [
        "previousDigestS3Bucket",
        "previousDigestS3Object",
        "previousDigestHashValue",
        "previousDigestHashAlgorithm",
        "previousDigestSignature",
    ] {
        v[f] = Value::Null;
    }
    t.resign(&key, &v);
    let (a, b) = (oracle(&t, &verbose()), trailmill(&t, &verbose()));
    // The CLI requires the backfill-generation-timestamp metadata, which a
    // local mirror cannot carry; trailmill verifies the signature instead.
    assert!(
        a.stderr.contains(&format!(
            "(backfill) Digest file\t{}\tINVALID: invalid format",
            t.uri(&key)
        )),
        "{}",
        a.stderr
    );
    assert!(
        b.stdout
            .contains(&format!("(backfill) Digest file\t{}\tvalid", t.uri(&key))),
        "{}",
        b.stdout
    );
    assert!(
        b.stdout.contains(
            "\n6/6 digest files valid\n1/1 backfill digest files valid\n14/14 log files valid\n"
        ),
        "{}",
        b.stdout
    );
    assert_eq!((a.code, b.code), (1, 0));
    // Everything else is identical.
    assert_eq!(
        minus(&a.verdicts().join("\n"), &b.verdicts().join("\n")).len(),
        1
    );
}

#[test]
fn forged_log_file_is_unattested() {
    let t = Trail::small(30);
    let chain = t.chain(t.account(), t.region());
    let real = t.logs_of(&chain[3])[0].clone();
    let forged = real.replace(&real[real.len() - 24..real.len() - 8], "ForgedForgedFrgd");
    std::fs::copy(t.path(&real), t.path(&forged)).unwrap();
    let (a, b) = (oracle(&t, &verbose()), trailmill(&t, &verbose()));
    assert_eq!(a.code, 0, "the CLI only reads what digests list");
    assert_eq!(b.code, 1);
    assert_eq!(
        minus(&b.stderr, &a.stderr),
        [format!(
            "Log file\t{}\tINVALID: not referenced by any digest file",
            t.uri(&forged)
        )]
    );
    assert_eq!(
        minus(&b.stdout, &a.stdout),
        ["1 log files not referenced by any digest file"]
    );
}
