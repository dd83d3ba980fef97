//! Issue 11, item 3: files named like CloudTrail files whose names do not
//! parse were counted as "other" and skipped without a word, so the events of
//! `ACCOUNT_CloudTrail_REGION_20240501T0067Z_X.json.gz` (minute 67) never
//! appeared. Now each gets a warning naming the file and the reason, is
//! counted in the summary, and a log file is read as an export.

mod support;

use std::collections::BTreeSet;

use support::{gzip_to, run_ok};

const DIR: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01";
const GOOD: &str = "111122223333_CloudTrail_us-east-1_20240501T1005Z_good.json.gz";
const MINUTE_67: &str = "111122223333_CloudTrail_us-east-1_20240501T0067Z_minute67.json.gz";
const BAD_DIGEST: &str =
    "111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_2024050110000Z.json.gz";
const BAD_INSIGHT: &str = "111122223333_CloudTrail-Insight_us-east-1_20240501T10Z_x.json.gz";

fn record(id: &str, time: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"{id}","recipientAccountId":"111122223333"}}"#
    )
}

fn write_tree(root: &std::path::Path) {
    let dir = root.join(DIR);
    std::fs::create_dir_all(&dir).unwrap();
    gzip_to(
        &dir.join(GOOD),
        &format!(
            "{{\"Records\":[{}]}}",
            record("good-1", "2024-05-01T10:01:00Z")
        ),
    );
    gzip_to(
        &dir.join(MINUTE_67),
        &format!(
            "{{\"Records\":[{},{}]}}",
            record("m67-early", "2024-05-01T01:05:00Z"),
            record("m67-late", "2024-05-01T12:00:00Z")
        ),
    );
    gzip_to(
        &dir.join(BAD_DIGEST),
        r#"{"digestStartTime":"x","logFiles":[]}"#,
    );
    gzip_to(
        &dir.join(BAD_INSIGHT),
        &format!(
            "{{\"Records\":[{}]}}",
            record("insight", "2024-05-01T10:00:00Z")
        ),
    );
}

fn ids(stdout: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["eventID"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn a_misnamed_log_file_is_read_with_a_warning_not_skipped_silently() {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(tmp.path());
    let out = run_ok(&["process", tmp.path().to_str().unwrap(), "--no-state"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        ids(&out.stdout),
        ["good-1", "m67-early", "m67-late"].map(String::from).into(),
        "{stderr}"
    );
    let warning = |name: &str| {
        stderr
            .lines()
            .find(|l| l.contains("WARN") && l.contains(name))
            .unwrap_or_else(|| panic!("no warning names {name}:\n{stderr}"))
            .to_owned()
    };
    let w = warning(MINUTE_67);
    assert!(w.contains("named like a CloudTrail log file"), "{w}");
    assert!(
        w.contains("\"20240501T0067Z\" is not a YYYYMMDDTHHmmZ time"),
        "{w}"
    );
    assert!(w.contains("read as an export"), "{w}");
    let w = warning(BAD_DIGEST);
    assert!(
        w.contains("digest file") && w.contains("never read as events"),
        "{w}"
    );
    let w = warning(BAD_INSIGHT);
    assert!(
        w.contains("Insights file") && w.contains("--include-insights"),
        "{w}"
    );
    assert!(
        stderr.contains(
            "; 3 file(s) named like CloudTrail files but not in CloudTrail's key grammar"
        ),
        "{stderr}"
    );
    // Skipped ones are also counted under their reason.
    assert!(stderr.contains("skipped 1 digests, 1 insights"), "{stderr}");
    assert!(stderr.contains("2 files ok, 0 failed"), "{stderr}");

    // With --include-insights the misnamed Insights file is read too.
    let out = run_ok(&[
        "process",
        tmp.path().to_str().unwrap(),
        "--no-state",
        "--include-insights",
    ]);
    assert!(ids(&out.stdout).contains("insight"));
}

#[test]
fn the_time_range_applies_to_a_misnamed_files_events() {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(tmp.path());
    // The key's time cannot be read, so --start/--end select its events, as
    // for an export; the good file is selected by its key.
    let out = run_ok(&[
        "process",
        tmp.path().to_str().unwrap(),
        "--no-state",
        "--start",
        "2024-05-01T10:00:00Z",
        "--end",
        "2024-05-01T11:00:00Z",
    ]);
    assert_eq!(
        ids(&out.stdout),
        ["good-1"].map(String::from).into(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_ok(&[
        "process",
        tmp.path().to_str().unwrap(),
        "--no-state",
        "--start",
        "2024-05-01T11:00:00Z",
    ]);
    assert_eq!(ids(&out.stdout), ["m67-late"].map(String::from).into());
}

#[test]
fn ls_lists_a_misnamed_log_file_and_counts_it() {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(tmp.path());
    let out = run_ok(&["ls", tmp.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(MINUTE_67), "{stdout}");
    assert!(!stdout.contains(BAD_DIGEST), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 files listed"), "{stderr}");
    assert!(
        stderr.contains("3 file(s) named like CloudTrail files"),
        "{stderr}"
    );
}

#[test]
fn an_s3_listing_treats_misnamed_files_as_a_local_one_does() {
    use support::s3::{Moto, aws_command, unique_bucket, upload_tree};
    let tmp = tempfile::tempdir().unwrap();
    write_tree(tmp.path());
    let moto = Moto::start(None);
    let bucket = unique_bucket("misnamed");
    upload_tree(&moto.endpoint, &bucket, tmp.path());
    let out = aws_command(&moto.endpoint)
        .args(["process", &format!("s3://{bucket}"), "--no-state"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        ids(&out.stdout),
        ["good-1", "m67-early", "m67-late"].map(String::from).into(),
        "{stderr}"
    );
    let warning = stderr
        .lines()
        .find(|l| l.contains("WARN") && l.contains(&format!("s3://{bucket}/{DIR}/{MINUTE_67}")))
        .unwrap_or_else(|| panic!("no warning names the S3 object:\n{stderr}"));
    assert!(warning.contains("read as an export"), "{warning}");
    assert!(
        stderr.contains("; 3 file(s) named like CloudTrail files"),
        "{stderr}"
    );
}

/// The SQS worker reads the keys that notifications announce: a misnamed log
/// file among them is warned about, counted and read as the listings do, and
/// a misnamed digest is passed over with a warning (it was skipped silently).
#[test]
fn a_worker_reads_an_announced_misnamed_log_file_with_a_warning() {
    use serde_json::json;
    use support::moto::{Moto, unique};
    let tmp = tempfile::tempdir().unwrap();
    write_tree(tmp.path());
    let moto = Moto::start();
    let queue = moto.create_queue(&unique("misnamed"));
    let bucket = moto.new_bucket("misnamed");
    moto.admin(
        "upload_tree",
        json!({ "bucket": bucket, "dir": tmp.path() }),
    );
    let topic = moto.admin(
        "topic_to_queue",
        json!({ "topic": unique("cloudtrail"), "url": queue }),
    )["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys: Vec<String> = [GOOD, MINUTE_67, BAD_DIGEST]
        .iter()
        .map(|f| format!("{DIR}/{f}"))
        .collect();
    let message = json!({ "s3Bucket": bucket, "s3ObjectKey": keys }).to_string();
    moto.admin("publish", json!({ "arn": topic, "message": message }));

    let db = tmp.path().join("events.db");
    let out = moto
        .trailmill()
        .args(["worker", "--queue", &queue, "--sink"])
        .arg(format!("sqlite:{}", db.display()))
        .args(["--until-empty", "--wait-seconds", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn.prepare("SELECT event_id FROM events").unwrap();
    let stored: BTreeSet<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        stored,
        ["good-1", "m67-early", "m67-late"].map(String::from).into(),
        "{stderr}"
    );
    let warned = |file: &str, done: &str| {
        stderr.lines().any(|l| {
            l.contains("WARN")
                && l.contains(&format!("s3://{bucket}/{DIR}/{file}"))
                && l.contains(done)
        })
    };
    assert!(warned(MINUTE_67, "read as an export"), "{stderr}");
    assert!(warned(BAD_DIGEST, "digests are never read"), "{stderr}");
    assert!(
        stderr.contains("trailmill worker: 2 file(s) named like CloudTrail files"),
        "{stderr}"
    );
    assert!(
        stderr.contains("trailmill worker: 2 files ok, 0 failed"),
        "{stderr}"
    );
}
