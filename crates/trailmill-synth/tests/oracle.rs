//! Synthetic trails must pass the real `aws cloudtrail validate-logs`.
//!
//! The reference validator (`scripts/aws-validate-logs.py`, run with the venv
//! python that `scripts/setup-oracle.sh` creates) uploads a trail directory to
//! a private moto server and runs the pinned AWS CLI's `aws cloudtrail
//! validate-logs` against it, unchanged. Each test generates a
//! trail, validates every account and region, and checks that the CLI reports
//! every digest and every log file valid.
//!
//! Environment: `TRAILMILL_ORACLE_PYTHON` overrides the python
//! (default `<workspace>/.venv/oracle/bin/python`), `TRAILMILL_ORACLE_SCRIPT`
//! the script (default `<workspace>/scripts/aws-validate-logs.py`);
//! `TRAILMILL_MOTO_PYTHON` the moto server's python.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use trailmill_synth::{
    SIGNATURE_SUFFIX, SigningKey, SynthConfig, SynthReport, generate, sign_digest, signing_string,
};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The oracle's python and script; fails (never skips) when they are missing.
fn oracle() -> (PathBuf, PathBuf) {
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

fn iso(secs: i64) -> String {
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = trailmill_core::time::civil_from_days(secs.div_euclid(86_400));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// What one run of the CLI said.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    valid_digests: BTreeSet<String>,
    valid_logs: BTreeSet<String>,
}

fn validate(root: &Path, report: &SynthReport, account: &str, region: &str) -> Outcome {
    let (python, script) = oracle();
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg("--root")
        .arg(root)
        .args(["--bucket", &report.bucket, "--trail-arn", &report.trail_arn])
        .arg("--public-keys")
        .arg(root.join(trailmill_synth::KEYS_FILE))
        .args([
            "--start-time",
            &iso(report.start),
            "--end-time",
            &iso(report.end),
        ])
        .args(["--region", region, "--account-id", account, "--verbose"]);
    if let Some(p) = &report.prefix {
        cmd.args(["--s3-prefix", p]);
    }
    if let Some(o) = &report.org_id {
        cmd.args(["--org-id", o]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let prefix = format!("s3://{}/", report.bucket);
    let mut valid_digests = BTreeSet::new();
    let mut valid_logs = BTreeSet::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let [what, url, "valid"] = fields[..] {
            let key = url
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("unexpected bucket in {line:?}"))
                .to_owned();
            match what {
                "Digest file" => {
                    assert!(valid_digests.insert(key), "digest reported twice: {line}")
                }
                "Log file" => assert!(valid_logs.insert(key), "log reported twice: {line}"),
                _ => panic!("unexpected line {line:?}"),
            }
        }
    }
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr,
        valid_digests,
        valid_logs,
    }
}

/// The digest and log keys of one account and region, from the directory.
fn expected(
    root: &Path,
    report: &SynthReport,
    account: &str,
    region: &str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut base = String::new();
    if let Some(p) = &report.prefix {
        base.push_str(p);
        base.push('/');
    }
    base.push_str("AWSLogs/");
    if let Some(o) = &report.org_id {
        base.push_str(o);
        base.push('/');
    }
    base.push_str(account);
    let list = |service: &str| {
        let mut keys = BTreeSet::new();
        let mut stack = vec![root.join(format!("{base}/{service}/{region}"))];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if !path.to_string_lossy().ends_with(SIGNATURE_SUFFIX) {
                    let rel = path
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    keys.insert(rel);
                }
            }
        }
        keys
    };
    (list("CloudTrail-Digest"), list("CloudTrail"))
}

/// Validates every account and region (in parallel) and checks that the CLI
/// found every digest and log file valid.
fn assert_all_valid(root: &Path, report: &SynthReport, cfg: &SynthConfig) {
    let pairs: Vec<(String, String)> = report
        .accounts
        .iter()
        .flat_map(|a| report.regions.iter().map(move |r| (a.clone(), r.clone())))
        .collect();
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = pairs
            .iter()
            .map(|(a, r)| s.spawn(move || validate(root, report, a, r)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (mut digests, mut logs) = (0, 0);
    for ((account, region), o) in pairs.iter().zip(outcomes) {
        let ctx = format!(
            "{account}/{region}\nstdout:\n{}\nstderr:\n{}",
            o.stdout, o.stderr
        );
        assert_eq!(o.code, 0, "{ctx}");
        assert!(o.stderr.trim().is_empty(), "{ctx}");
        let (want_digests, want_logs) = expected(root, report, account, region);
        assert_eq!(want_digests.len(), cfg.hours, "{ctx}");
        let large = usize::from(
            report.large_file.is_some()
                && account == &report.accounts[0]
                && region == &report.regions[0],
        );
        assert_eq!(
            want_logs.len(),
            cfg.hours * cfg.logs_per_hour + large,
            "{ctx}"
        );
        assert_eq!(o.valid_digests, want_digests, "{ctx}");
        assert_eq!(o.valid_logs, want_logs, "{ctx}");
        assert!(
            o.stdout
                .contains(&format!("\n{0}/{0} digest files valid", want_digests.len())),
            "{ctx}"
        );
        assert!(
            o.stdout
                .contains(&format!("\n{0}/{0} log files valid", want_logs.len())),
            "{ctx}"
        );
        assert!(!o.stdout.contains("INVALID"), "{ctx}");
        // Each chain ends at its own digest time (chains have different offsets).
        let last = want_digests.iter().next_back().unwrap();
        let chain_end = trailmill_core::key::ObjectKey::parse(last)
            .unwrap()
            .file
            .time
            .unix_seconds();
        assert!(chain_end <= report.end);
        assert!(
            o.stdout.contains(&format!(
                "Results found for {} to {}:",
                iso(report.start),
                iso(chain_end)
            )),
            "{ctx}"
        );
        digests += o.valid_digests.len();
        logs += o.valid_logs.len();
    }
    assert_eq!(digests, report.digest_files);
    assert_eq!(logs, report.log_files);
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_plain_trail_passes_the_aws_cli() {
    oracle();
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        accounts: 2,
        regions: 2,
        hours: 3,
        logs_per_hour: 2,
        records: 10,
        large_file_mib: Some(1),
        seed: 11,
        ..SynthConfig::default()
    };
    let report = generate(dir.path(), &cfg).unwrap();
    assert_all_valid(dir.path(), &report, &cfg);

    // The CLI really checks: a changed log file is caught...
    let (account, region) = (&report.accounts[1], &report.regions[1]);
    let (digests, logs) = expected(dir.path(), &report, account, region);
    let newest_digest = digests.iter().next_back().unwrap().clone();
    let digest_path = dir.path().join(&newest_digest);
    let mut digest: serde_json::Value =
        serde_json::from_slice(&gunzip(&std::fs::read(&digest_path).unwrap())).unwrap();
    let victim = digest["logFiles"][0]["s3Object"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(logs.contains(&victim));
    let victim_path = dir.path().join(&victim);
    let body = gunzip(&std::fs::read(&victim_path).unwrap());
    let tampered =
        String::from_utf8(body)
            .unwrap()
            .replacen("\"readOnly\":true", "\"readOnly\":false", 1);
    std::fs::write(&victim_path, gzip(tampered.as_bytes())).unwrap();
    let o = validate(dir.path(), &report, account, region);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stderr.contains(&format!(
            "Log file\ts3://{}/{victim}\tINVALID: hash value doesn't match",
            report.bucket
        )),
        "{}",
        o.stderr
    );

    // ...and a digest re-signed with the published key after covering it up is accepted,
    // which shows signing_string and sign_digest produce what the CLI verifies.
    use sha2::Digest as _;
    digest["logFiles"][0]["hashValue"] =
        hex::encode(sha2::Sha256::digest(tampered.as_bytes())).into();
    let new_body = serde_json::to_vec(&digest).unwrap();
    let key = SigningKey::from_pkcs1_der(
        &std::fs::read(dir.path().join(trailmill_synth::PRIVATE_KEY_FILE)).unwrap(),
    )
    .unwrap();
    let to_sign = signing_string(
        digest["digestEndTime"].as_str().unwrap(),
        &report.bucket,
        &newest_digest,
        &new_body,
        digest["previousDigestSignature"].as_str(),
    );
    std::fs::write(&digest_path, gzip(&new_body)).unwrap();
    std::fs::write(
        format!("{}{SIGNATURE_SUFFIX}", digest_path.display()),
        sign_digest(&key, &to_sign),
    )
    .unwrap();
    let o = validate(dir.path(), &report, account, region);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(o.valid_logs.contains(&victim));
}

#[test]
fn an_org_trail_with_a_multi_segment_prefix_passes_the_aws_cli() {
    oracle();
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        accounts: 2,
        regions: 2,
        hours: 3,
        logs_per_hour: 2,
        records: 10,
        org_id: Some("o-abc123xyz9".into()),
        prefix: Some("audit/cloudtrail/org".into()),
        home_region: Some("eu-west-1".into()),
        trail_name: "org_wide-trail".into(),
        start: trailmill_synth::DEFAULT_START + 22 * 3600, // the chain crosses midnight
        seed: 12,
        ..SynthConfig::default()
    };
    let report = generate(dir.path(), &cfg).unwrap();
    assert!(
        report
            .trail_arn
            .starts_with("arn:aws:cloudtrail:eu-west-1:")
    );
    assert_all_valid(dir.path(), &report, &cfg);
}
