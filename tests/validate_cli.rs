//! `trailmill validate --format aws-cli` against the real AWS CLI
//! (`../shared/oracle`), end to end through both command lines: same stdout,
//! same stderr, same exit code, on an intact trail and on a tampered one.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{repo, run};

fn oracle_python() -> PathBuf {
    let py = std::env::var_os("TRAILMILL_ORACLE_PYTHON")
        .map_or_else(|| repo().join(".venv/oracle/bin/python"), PathBuf::from);
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup-oracle.sh (or set TRAILMILL_ORACLE_PYTHON)",
        py.display()
    );
    py
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

const ARN: &str = "arn:aws:cloudtrail:us-east-1:462237097298:trail/synth-trail";
const RANGE: [&str; 4] = [
    "--start-time",
    "2024-01-01T00:00:00Z",
    "--end-time",
    "2024-01-01T05:00:00Z",
];

fn both(root: &Path) -> (Output, Output) {
    let root_s = root.to_str().unwrap();
    let keys = root.join("keys.json");
    let mut ours = vec![
        "validate",
        root_s,
        "--trail-arn",
        ARN,
        "--bucket",
        "trailmill-synth",
        "--format",
        "aws-cli",
        "--verbose",
    ];
    ours.extend(RANGE);
    let ours = run(&ours);
    let theirs = Command::new(oracle_python())
        .arg(repo().join("../shared/oracle/awscli_validate.py"))
        .args([
            "--root",
            root_s,
            "--bucket",
            "trailmill-synth",
            "--trail-arn",
            ARN,
            "--public-keys",
            keys.to_str().unwrap(),
            "--verbose",
        ])
        .args(RANGE)
        .output()
        .expect("run the oracle");
    (ours, theirs)
}

fn assert_same(ours: &Output, theirs: &Output) {
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&theirs.stdout),
        "stdout differs"
    );
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&theirs.stderr),
        "stderr differs"
    );
    assert_eq!(ours.status.code(), theirs.status.code());
}

#[test]
fn the_bundled_trail_is_valid_for_both() {
    let (ours, theirs) = both(&repo().join("fixtures/trail"));
    assert_same(&ours, &theirs);
    assert_eq!(ours.status.code(), Some(0));
}

#[test]
fn a_tampered_and_a_deleted_log_are_reported_identically() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("fixtures/trail"), tmp.path());
    let day = tmp
        .path()
        .join("AWSLogs/462237097298/CloudTrail/us-east-1/2024/01/01");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    // Re-compress a changed body: a valid gzip whose content no longer matches the digest.
    let text = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&logs[0]).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    let forged = text.replacen("\"eventName\":\"", "\"eventName\":\"X", 1);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut enc, forged.as_bytes()).unwrap();
    std::fs::write(&logs[0], enc.finish().unwrap()).unwrap();
    std::fs::remove_file(&logs[1]).unwrap();
    let (ours, theirs) = both(tmp.path());
    assert_same(&ours, &theirs);
    assert_eq!(ours.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(
        stderr.contains("hash value doesn't match") && stderr.contains("not found"),
        "{stderr}"
    );
}
