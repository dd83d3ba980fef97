//! Issue 16: one odd record must not cost a file its good records.
//!
//! trailmill used to judge a file by its first record alone: a first record
//! with none of `eventVersion`, `eventTime` and `eventName` failed the whole
//! file as "not CloudTrail log data", and every good record after it was
//! lost. CPL reads every record of a `{"Records":[…]}` file. These tests write
//! such files (and files that really are not CloudTrail) and run them through
//! the command line into every store.

mod support;

#[path = "support/pg.rs"]
mod pg;

use std::collections::BTreeSet;
use std::path::Path;

use sha2::{Digest, Sha256};
use support::{gzip_to, run, run_ok, sink_counts};

/// A first record whose top-level names are spelled differently from
/// CloudTrail's, as a future or foreign producer might write them.
const MISSPELLED: &str = r#"{"eventVersion1":"1.08","userIdentity1":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a"},"eventTime1":"2024-05-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName1":"GetObject","awsRegion":"eu-west-1","recipientAccountId":"111122223333"}"#;
/// A first record none of whose top-level names is a CloudTrail field.
const UNEXPECTED: &str = r#"{"EventVersion":"1.08","When":"2024-05-01T10:00:00Z","What":{"name":"x","n":[1,2.50,{"k":null}]},"Who":"someone"}"#;
const GOOD_1: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"Root","accountId":"111122223333"},"eventTime":"2024-05-01T10:01:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1","eventID":"aaaaaaaa-0000-4000-8000-000000000001","recipientAccountId":"111122223333"}"#;
const GOOD_2: &str = r#"{"eventVersion":"1.09","eventTime":"2024-05-01T10:02:00Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","eventID":"aaaaaaaa-0000-4000-8000-000000000002","recipientAccountId":"111122223333","requestParameters":{"a":2.0}}"#;

const KEY_DIR: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01";

/// Writes the two files of the issue into a trail tree under `root`; returns
/// their paths.
fn write_trail(root: &Path) -> [std::path::PathBuf; 2] {
    let dir = root.join(KEY_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("111122223333_CloudTrail_us-east-1_20240501T1005Z_misspelledfirst.json.gz");
    let b = dir.join("111122223333_CloudTrail_us-east-1_20240501T1010Z_unexpectedfirst.json.gz");
    gzip_to(&a, &format!("{{\"Records\":[{MISSPELLED},{GOOD_1}]}}"));
    gzip_to(&b, &format!("{{\"Records\":[{UNEXPECTED},\n{GOOD_2}]}}"));
    [a, b]
}

fn sha256_key(record: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(record.as_bytes())))
}

#[test]
fn a_first_record_without_core_fields_no_longer_fails_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let [a, b] = write_trail(tmp.path());
    let jsonl = tmp.path().join("out.jsonl");
    let db = tmp.path().join("out.db");
    let lake = tmp.path().join("lake");
    let url = pg::fresh_db("trailmill_test_odd_records");
    let out = run_ok(&[
        "process",
        tmp.path().join("AWSLogs").to_str().unwrap(),
        "--no-state",
        "--sink",
        &format!("jsonl:{}", jsonl.display()),
        "--sink",
        &format!("sqlite:{}", db.display()),
        "--sink",
        &format!("parquet:{}", lake.display()),
        "--sink",
        &format!("postgres:{url}"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 files ok, 0 failed"), "{stderr}");
    assert!(stderr.contains("4 events in, 4 out"), "{stderr}");
    assert!(
        stderr.contains("2 record(s) have none of eventVersion, eventTime and eventName"),
        "the summary counts the odd records:\n{stderr}"
    );
    // One warning per odd record, naming its file and index.
    for file in [&a, &b] {
        let name = file.file_name().unwrap().to_str().unwrap();
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(name) && l.contains("WARN"))
            .collect();
        assert_eq!(warnings.len(), 1, "{name}:\n{stderr}");
        assert!(
            warnings[0].contains(
                "record 0 has none of eventVersion, eventTime and eventName (as strings); emitted anyway"
            ),
            "{}",
            warnings[0]
        );
    }

    // JSON Lines: every record, byte for byte.
    let lines: BTreeSet<String> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let all: BTreeSet<String> = [MISSPELLED, GOOD_1, UNEXPECTED, GOOD_2]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(lines, all);

    // SQLite: the odd records are stored with NULL typed columns, keyed by
    // the SHA-256 of their text.
    assert_eq!(sink_counts(&out.stderr, "sqlite:"), (4, 0));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn
        .prepare("SELECT event_id, event_time, event_name, raw FROM events")
        .unwrap();
    let rows: Vec<(String, Option<String>, Option<String>, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 4);
    for odd in [MISSPELLED, UNEXPECTED] {
        let row = rows.iter().find(|r| r.3 == odd).expect("odd record stored");
        assert_eq!(row.0, sha256_key(odd));
        assert_eq!((row.1.as_deref(), row.2.as_deref()), (None, None));
    }
    let good = rows.iter().find(|r| r.3 == GOOD_2).unwrap();
    assert_eq!(good.0, "aaaaaaaa-0000-4000-8000-000000000002");
    assert_eq!(good.2.as_deref(), Some("DescribeInstances"));

    // PostgreSQL: the same keys, NULL typed columns, and the exact text.
    let pg_rows = pg::query(
        &url,
        "SELECT event_id, event_time::text, event_name, raw FROM events ORDER BY event_id",
    );
    assert_eq!(pg_rows.len(), 4);
    for odd in [MISSPELLED, UNEXPECTED] {
        let row = pg_rows
            .iter()
            .find(|r| r[3].as_deref() == Some(odd))
            .expect("odd record stored in PostgreSQL");
        assert_eq!(row[0].as_deref(), Some(sha256_key(odd).as_str()));
        assert_eq!((row[1].as_deref(), row[2].as_deref()), (None, None));
    }

    // Parquet, read back by pyarrow: nulls, and `raw` holds the record.
    let lake_rows = read_lake(&lake);
    assert_eq!(lake_rows.len(), 4);
    for odd in [MISSPELLED, UNEXPECTED] {
        let row = lake_rows
            .iter()
            .find(|r| r["raw"] == odd)
            .expect("odd record in the lake");
        assert_eq!(row["event_id"], sha256_key(odd).as_str());
        assert!(
            row["event_time"].is_null() && row["event_name"].is_null(),
            "{row}"
        );
    }
}

#[test]
fn files_with_no_cloudtrail_record_are_still_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // A Records array whose objects have none of the core fields, and an AWS
    // Config snapshot; each named on the command line, so each is read.
    let no_core = tmp.path().join("records-without-core-fields.json");
    std::fs::write(
        &no_core,
        format!("{{\"Records\":[{UNEXPECTED},{{\"a\":{{\"eventName\":\"nested\"}}}}]}}"),
    )
    .unwrap();
    let config = tmp
        .path()
        .join("111122223333_Config_us-east-1_ConfigSnapshot_20240501T100000Z_x.json.gz");
    gzip_to(
        &config,
        r#"{"fileVersion":"1.0","configSnapshotId":"c0ffee","configurationItems":[{"configurationItemVersion":"1.3","resourceType":"AWS::S3::Bucket","awsRegion":"us-east-1"}]}"#,
    );
    let good = tmp.path().join("good.json");
    std::fs::write(&good, format!("[{GOOD_1}]")).unwrap();
    let out = run(&[
        "process",
        no_core.to_str().unwrap(),
        config.to_str().unwrap(),
        good.to_str().unwrap(),
        "--no-state",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "failed files make the run exit 1"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error_of = |path: &Path| {
        let name = path.file_name().unwrap().to_str().unwrap();
        stderr
            .lines()
            .find(|l| l.starts_with("error: ") && l.contains(name))
            .unwrap_or_else(|| panic!("no error names {name}:\n{stderr}"))
            .to_owned()
    };
    assert!(
        error_of(&no_core).contains(
            "not CloudTrail log data: none of its 2 record(s) has any of eventVersion, eventTime and eventName"
        ),
        "{stderr}"
    );
    assert!(
        error_of(&config)
            .contains("not CloudTrail log data: the top-level object has no \"Records\" array"),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{GOOD_1}\n")
    );
    assert!(stderr.contains("1 files ok, 2 failed"), "{stderr}");
}

/// Reads every row of the lake with pyarrow, as JSON objects.
fn read_lake(dir: &Path) -> Vec<serde_json::Value> {
    const READER: &str = r#"
import json, sys, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table(
    columns=["event_id", "event_time", "event_name", "raw"])
rows = t.to_pylist()
for r in rows:
    r["event_time"] = None if r["event_time"] is None else r["event_time"].isoformat()
print(json.dumps(rows))
"#;
    support::pyarrow_json(READER, dir)
}
