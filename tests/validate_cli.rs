//! `trailmill validate --format aws-cli` against the real AWS CLI
//! (`scripts/aws-validate-logs.py`: the pinned CLI against a moto server), end to end through both command lines: same stdout,
//! same stderr, same exit code, on an intact trail and on a tampered one.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{repo, run, tamper_log, trail_copy};

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
        .arg(repo().join("scripts/aws-validate-logs.py"))
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
    let (tmp, logs) = trail_copy();
    tamper_log(&logs[0]);
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
