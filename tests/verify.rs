//! `trailmill process --verify`: only events of log files that a verified
//! digest attests are emitted; `--verify=warn` emits the rest with a warning.

mod support;

use std::path::PathBuf;

use support::{events_in_out, gunzip, gzip_to, repo, run, tamper_log, trail_copy};

/// A copy of the bundled trail with one log changed and one log forged.
fn tampered_trail() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (tmp, logs) = trail_copy();
    let changed = logs[0].clone();
    tamper_log(&changed);
    let forged = changed.with_file_name(
        "462237097298_CloudTrail_us-east-1_20240101T0045Z_ForgedForgedForg.json.gz",
    );
    gzip_to(&forged, &gunzip(&logs[1]));
    (tmp, changed, forged)
}

#[test]
fn only_attested_unchanged_logs_are_emitted() {
    let (tmp, changed, forged) = tampered_trail();
    let out = run(&["process", tmp.path().to_str().unwrap(), "--verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for bad in [&changed, &forged] {
        let name = bad.file_name().unwrap().to_str().unwrap();
        assert!(
            stderr.lines().any(|l| l.starts_with("error: ")
                && l.contains(name)
                && l.contains("not verified")),
            "{name}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("hash value doesn't match") || stderr.contains("hash"),
        "{stderr}"
    );
    let (events_in, events_out) = events_in_out(&out.stderr);
    assert_eq!(
        (events_in, events_out),
        (375, 375),
        "2 of 17 files (25 events each) are held back"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        !stdout.contains("\"eventName\":\"X"),
        "the changed file's events must not be emitted"
    );
}

#[test]
fn warn_mode_emits_everything_with_warnings() {
    let (tmp, _, forged) = tampered_trail();
    let out = run(&[
        "process",
        tmp.path().to_str().unwrap(),
        "--verify=warn",
        "--sink",
        "jsonl:/dev/null",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(events_in_out(&out.stderr), (425, 425));
    assert!(
        stderr.contains(forged.file_name().unwrap().to_str().unwrap())
            && stderr.contains("emitted anyway"),
        "{stderr}"
    );
}

#[test]
fn an_intact_trail_verifies_completely() {
    let out = run(&[
        "process",
        repo().join("fixtures/trail").to_str().unwrap(),
        "--verify",
        "--sink",
        "jsonl:/dev/null",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(events_in_out(&out.stderr), (400, 400));
}
