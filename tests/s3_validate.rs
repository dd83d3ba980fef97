//! `trailmill validate s3://…` against a real S3 API (moto): digest
//! signatures come from object metadata (`x-amz-meta-signature`), and the
//! verdicts are the ones local validation gives on the same trail, intact
//! and after tampering.

mod support;

use std::path::Path;
use std::process::Output;

use support::s3::{Moto, aws_command, delete, unique_bucket, upload_tree};
use support::{Synth, run, run_ok, tamper_log};

const RANGE: [&str; 4] = [
    "--start-time",
    "2024-01-01T00:00:00Z",
    "--end-time",
    "2024-01-01T03:00:00Z",
];

/// A synthetic organization trail under `a/b` for `bucket`, written to `root`.
fn synth(root: &Path, bucket: &str) {
    Synth {
        accounts: 2,
        regions: 2,
        hours: 3,
        logs_per_hour: 3,
        records: 10,
        extra: &["--org-id", "o-abc", "--prefix", "a/b", "--bucket", bucket],
    }
    .write(root);
}

fn local(root: &Path, bucket: &str, format: &str) -> Output {
    let mut args = vec![
        "validate",
        root.to_str().unwrap(),
        "--all",
        "--s3-prefix",
        "a/b",
        "--bucket",
        bucket,
        "--format",
        format,
        "--verbose",
    ];
    args.extend(RANGE);
    run(&args)
}

fn remote(moto: &Moto, root: &Path, bucket: &str, format: &str) -> Output {
    let keys = root.join("keys.json");
    aws_command(&moto.endpoint)
        .args(["validate", &format!("s3://{bucket}/a/b"), "--all"])
        .args(["--public-keys", keys.to_str().unwrap()])
        .args(["--format", format, "--verbose"])
        .args(RANGE)
        .output()
        .unwrap()
}

fn assert_same(local: &Output, remote: &Output) {
    assert_eq!(
        String::from_utf8_lossy(&remote.stdout),
        String::from_utf8_lossy(&local.stdout),
        "stdout differs; S3 stderr:\n{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    assert_eq!(remote.status.code(), local.status.code());
}

/// A log key of the trail, by account index, region index and position.
fn log_keys(root: &Path) -> Vec<String> {
    let out = run_ok(&["ls", root.to_str().unwrap()]);
    let prefix = format!("{}/", root.display());
    let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.rsplit('\t')
                .next()
                .unwrap()
                .trim_start_matches(&prefix)
                .to_owned()
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn validate_over_s3_gives_the_local_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    let bucket = unique_bucket("validate");
    synth(&root, &bucket);
    let moto = Moto::start(None);
    upload_tree(&moto.endpoint, &bucket, &root);

    // Intact: everything valid, in both formats.
    for format in ["aws-cli", "json"] {
        let (l, r) = (
            local(&root, &bucket, format),
            remote(&moto, &root, &bucket, format),
        );
        assert_same(&l, &r);
        assert_eq!(r.status.code(), Some(0));
    }
    let r = remote(&moto, &root, &bucket, "aws-cli");
    let stdout = String::from_utf8_lossy(&r.stdout);
    // 2 accounts x 2 regions, each with 3 hours of digests of 3 logs each.
    assert_eq!(
        stdout.matches("3/3 digest files valid").count(),
        4,
        "{stdout}"
    );
    assert_eq!(stdout.matches("9/9 log files valid").count(), 4, "{stdout}");

    // A tampered log and a deleted log, the same in the bucket and the mirror.
    let keys = log_keys(&root);
    let (tampered, deleted) = (&keys[4], &keys[10]);
    tamper_log(&root.join(tampered));
    support::s3::put_file(&moto.endpoint, &bucket, tampered, &root.join(tampered));
    std::fs::remove_file(root.join(deleted)).unwrap();
    delete(&moto.endpoint, &bucket, deleted);
    for format in ["aws-cli", "json"] {
        let (l, r) = (
            local(&root, &bucket, format),
            remote(&moto, &root, &bucket, format),
        );
        assert_same(&l, &r);
        assert_eq!(r.status.code(), Some(1));
    }
    let r = remote(&moto, &root, &bucket, "aws-cli");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains(&format!("s3://{bucket}/{tampered}"))
            && stderr.contains("hash value doesn't match"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("s3://{bucket}/{deleted}")) && stderr.contains("not found"),
        "{stderr}"
    );

    // A digest whose signature metadata is gone cannot be verified on S3
    // (there, unlike a mirror, metadata is the only place for it).
    let digest = std::fs::read_dir(root.join("a/b/AWSLogs/o-abc"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let digest_dir = walk_to_file(&digest.join("CloudTrail-Digest"));
    let key = digest_dir
        .strip_prefix(&root)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    support::s3::put_file(&moto.endpoint, &bucket, &key, &digest_dir);
    let r = remote(&moto, &root, &bucket, "aws-cli");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr.contains(&format!("s3://{bucket}/{key}")), "{stderr}");
}

/// The first file below `dir`, in name order.
fn walk_to_file(dir: &Path) -> std::path::PathBuf {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".sig"))
        .collect();
    entries.sort();
    let first = entries.remove(0);
    if first.is_dir() {
        walk_to_file(&first)
    } else {
        first
    }
}
