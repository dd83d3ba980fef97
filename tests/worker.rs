//! `trailmill worker` and `trailmill enqueue` against a real SQS, SNS and S3
//! API (a moto server on 127.0.0.1): CPL's message formats and deletion
//! semantics, graceful shutdown, and several workers sharing one queue while
//! one of them is killed.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::crash::{terminate, wait_for};
use support::moto::{Moto, unique};
use support::repo;

/// Every eventID in the log files (not digests) under `dir`, by file name.
fn event_ids_by_file(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for entry in support::files_under(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if !name.contains("_CloudTrail_") {
            continue;
        }
        out.insert(name, support::log_event_ids(&entry));
    }
    out
}

/// The eventIDs stored in the SQLite sink at `db`.
fn stored_ids(db: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let mut stmt = conn.prepare("SELECT event_id FROM events").unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn all_ids(by_file: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    by_file.values().flatten().cloned().collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The summary's "N messages received, …" numbers, in order.
fn message_summary(stderr: &str) -> Vec<u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains(" messages received, "))
        .unwrap_or_else(|| panic!("no worker summary in:\n{stderr}"));
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[test]
fn every_notification_format_is_processed_with_cpl_semantics() {
    let moto = Moto::start();
    let queue = moto.create_queue(&unique("formats"));
    let trail = repo().join("fixtures/trail/AWSLogs");
    let expected = event_ids_by_file(&trail);

    // S3 event notifications straight to SQS, under a prefix whose space and
    // plus sign S3 form-encodes in the event. The digests also raise events,
    // and their messages have nothing to process. Saving the configuration
    // makes S3 send an s3:TestEvent.
    let direct = moto.new_bucket("direct");
    moto.admin("notify_queue", json!({ "bucket": direct, "url": queue }));
    let uploaded = moto.admin(
        "upload_tree",
        json!({ "bucket": direct, "dir": trail.join("172345338036"), "prefix": "trail logs+1/AWSLogs/172345338036/", "suffix": ".json.gz" }),
    );
    assert_eq!(uploaded["uploaded"], 12);

    // S3 event notifications through SNS (an SNS envelope around the S3
    // event), test event included.
    let topic = moto.admin(
        "topic_to_queue",
        json!({ "topic": unique("s3-events"), "url": queue }),
    )["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let via_sns = moto.new_bucket("via-sns");
    moto.admin("notify_topic", json!({ "bucket": via_sns, "arn": topic }));
    moto.admin(
        "upload_tree",
        json!({ "bucket": via_sns, "dir": trail.join("462237097298/CloudTrail/us-east-1"), "prefix": "AWSLogs/462237097298/CloudTrail/us-east-1/" }),
    );

    // CloudTrail's own SNS notifications, several keys each (a digest key
    // among them, which is skipped), and its validation message.
    let ct_topic = moto.admin(
        "topic_to_queue",
        json!({ "topic": unique("cloudtrail"), "url": queue }),
    )["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let ct_bucket = moto.new_bucket("ct");
    let ct_dir = trail.join("462237097298/CloudTrail/eu-west-1");
    let ct_prefix = "AWSLogs/462237097298/CloudTrail/eu-west-1/";
    moto.admin(
        "upload_tree",
        json!({ "bucket": ct_bucket, "dir": ct_dir, "prefix": ct_prefix }),
    );
    let keys: Vec<String> = support::files_under(&ct_dir)
        .iter()
        .map(|p| {
            format!(
                "{ct_prefix}{}",
                p.strip_prefix(&ct_dir).unwrap().to_str().unwrap()
            )
        })
        .collect();
    assert_eq!(keys.len(), 4);
    let digest = "AWSLogs/462237097298/CloudTrail-Digest/eu-west-1/2024/01/01/462237097298_CloudTrail-Digest_eu-west-1_synth-trail_us-east-1_20240101T010000Z.json.gz";
    for batch in [
        vec![&keys[0], &keys[1], &digest.to_owned()],
        vec![&keys[2], &keys[3]],
    ] {
        let message = json!({ "s3Bucket": ct_bucket, "s3ObjectKey": batch }).to_string();
        moto.admin("publish", json!({ "arn": ct_topic, "message": message }));
    }
    moto.admin(
        "publish",
        json!({ "arn": ct_topic, "message": "CloudTrail validation message." }),
    );
    let (visible, _, _) = moto.counts(&queue);
    // 8 logs + 4 digests + a test event; 4 logs + a test event; 2 + 1.
    assert_eq!(visible, 21, "notifications in the queue");

    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let started = Instant::now();
    let out = moto
        .trailmill()
        .args(["worker", "--queue", &queue, "--sink"])
        .arg(format!("sqlite:{}", db.display()))
        .args(["--until-empty", "--wait-seconds", "1", "--threads", "2"])
        .env("TRAILMILL_LOG", "trailmill_aws=debug")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    eprintln!("worker drained 21 messages in {:.2?}", started.elapsed());

    assert_eq!(stored_ids(&db), all_ids(&expected));
    assert_eq!(moto.counts(&queue), (0, 0, 0), "{err}");
    // received, deleted, deleted as filtered (digest-only messages), left
    // after failures, not understood, released.
    assert_eq!(message_summary(&err), [21, 17, 4, 0, 0, 0], "{err}");
    assert!(
        err.contains("trailmill worker: 16 files ok, 0 failed"),
        "{err}"
    );
    for state in [
        "pollQueue",
        "parseMessage 21 ok/0 failed",
        "processSource 14 ok/0 failed",
        "downloadLog 16 ok/0 failed",
        "processLog 16 ok/0 failed",
        "deleteMessage 17 ok/0 failed",
        "deleteFilteredMessage 4 ok/0 failed",
    ] {
        assert!(err.contains(state), "{state}: {err}");
    }
    assert!(
        err.contains("CloudTrail validation message: deleting it"),
        "{err}"
    );
    assert_eq!(err.matches("s3:TestEvent: deleting it").count(), 2, "{err}");
}

#[test]
fn failed_messages_stay_without_delete_on_failure_and_go_with_it() {
    let moto = Moto::start();
    let queue = moto.create_queue(&unique("failures"));
    let bucket = moto.new_bucket("failures");
    let trail = repo().join("fixtures/trail/AWSLogs/172345338036/CloudTrail/us-east-1/2024/01/01");
    let prefix = "AWSLogs/172345338036/CloudTrail/us-east-1/2024/01/01/";
    moto.admin(
        "upload_tree",
        json!({ "bucket": bucket, "dir": trail, "prefix": prefix }),
    );
    let good: Vec<String> = support::files_under(&trail)
        .iter()
        .map(|p| format!("{prefix}{}", p.file_name().unwrap().to_str().unwrap()))
        .collect();
    let corrupt =
        format!("{prefix}172345338036_CloudTrail_us-east-1_20240101T0300Z_corruptcorrupt.json.gz");
    moto.admin(
        "put_object",
        json!({ "bucket": bucket, "key": corrupt, "body": "this is not gzip" }),
    );
    let missing =
        format!("{prefix}172345338036_CloudTrail_us-east-1_20240101T0400Z_missingmissing.json.gz");
    let notify = |keys: &[&String]| json!({ "s3Bucket": bucket, "s3ObjectKey": keys }).to_string();
    moto.send(&queue, &notify(&good.iter().collect::<Vec<_>>()));
    let corrupt_id = moto.send(&queue, &notify(&[&good[0], &corrupt]));
    let missing_id = moto.send(&queue, &notify(&[&missing]));
    let garbage_id = moto.send(&queue, "{\"hello\": \"world\"}");
    let expected = all_ids(&event_ids_by_file(&trail));

    // Without --delete-on-failure: the good message is deleted, the others
    // stay. SIGTERM stops the worker, which exits cleanly.
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let child = moto
        .trailmill()
        .args(["worker", "--queue", &queue, "--sink"])
        .arg(format!("sqlite:{}", db.display()))
        .args(["--wait-seconds", "1", "--visibility-timeout", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the good message's events", Duration::from_secs(30), || {
        db.exists() && stored_ids(&db) == expected
    });
    // Visibility 2 s: the failed messages come back and fail again meanwhile.
    std::thread::sleep(Duration::from_secs(3));
    terminate(&child);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("(stopped by a signal)"), "{err}");
    let (visible, hidden, _) = moto.counts(&queue);
    assert_eq!(visible + hidden, 3, "the failed messages stay: {err}");
    assert!(
        err.contains(&format!(
            "message {garbage_id}: not a CloudTrail or S3 event notification"
        )),
        "{err}"
    );
    assert!(err.contains(&corrupt), "{err}");
    assert!(err.contains(&missing), "{err}");
    let summary = message_summary(&err);
    assert!(summary[0] >= 4, "{err}");
    assert_eq!(summary[1], 1, "only the good message was deleted: {err}");

    // With --delete-on-failure they are deleted; the corrupt message's good
    // file is stored (again: deduplicated).
    let out = moto
        .trailmill()
        .args(["worker", "--queue", &queue, "--sink"])
        .arg(format!("sqlite:{}", db.display()))
        .args(["--wait-seconds", "1", "--visibility-timeout", "2"])
        .args(["--delete-on-failure", "--until-empty"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(moto.counts(&queue), (0, 0, 0), "{err}");
    assert_eq!(message_summary(&err)[1], 3, "{err}");
    for id in [&corrupt_id, &missing_id] {
        assert!(
            err.contains(&format!("message={id}")) || err.contains(id.as_str()),
            "{id}: {err}"
        );
    }
    assert_eq!(stored_ids(&db), expected);

    // The message filter: --max-receives 0 rejects every message, which is
    // deleted unprocessed.
    moto.send(&queue, &notify(&[&missing]));
    let out = moto
        .trailmill()
        .args(["worker", "--queue", &queue, "--sink", "jsonl:-"])
        .args([
            "--wait-seconds",
            "1",
            "--until-empty",
            "--max-receives",
            "0",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(message_summary(&err)[..3], [1, 0, 1], "{err}");
    assert!(err.contains("deleteFilteredMessage 1 ok/0 failed"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(moto.counts(&queue), (0, 0, 0));
}

/// The objects of each deletion-log line from `offset` on, with the new offset.
fn deletions_since(log: &Path, offset: usize) -> (Vec<(String, Vec<String>)>, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    // Only whole lines: a line being written is read next time.
    let end = text.rfind('\n').map_or(0, |i| i + 1).max(offset);
    let lines = text[offset..end]
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let objects = support::strings(&v["objects"]);
            (v["message_id"].as_str().unwrap().to_owned(), objects)
        })
        .collect();
    (lines, end)
}

#[test]
fn three_workers_share_an_enqueued_backfill_and_survive_a_sigkill() {
    let started = Instant::now();
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let trail = tmp.path().join("trail");
    support::Synth {
        accounts: 2,
        regions: 2,
        hours: 20,
        logs_per_hour: 6,
        records: 5,
        extra: &[],
    }
    .write(&trail);
    let expected = event_ids_by_file(&trail);
    // Enough messages (120) that the other two workers cannot drain the queue
    // between two looks at worker 0's deletion log: the kill must find work left.
    assert_eq!(expected.len(), 480);
    let (_, queue, err) = moto.enqueued_trail(&trail, "backfill", 4);
    assert!(err.contains("480 keys in 120 messages"), "{err}");
    assert_eq!(moto.counts(&queue).0, 120);

    let db = tmp.path().join("events.db");
    let logs: Vec<PathBuf> = (0..3)
        .map(|i| tmp.path().join(format!("deleted-{i}.jsonl")))
        .collect();
    let start_worker = |log: &Path| {
        moto.trailmill()
            .args(["worker", "--queue", &queue, "--sink"])
            .arg(format!("sqlite:{}", db.display()))
            .arg("--deletion-log")
            .arg(log)
            .args(["--visibility-timeout", "5", "--wait-seconds", "1"])
            .args(["--threads", "1", "--max-in-flight", "2", "--until-empty"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut workers: Vec<Child> = logs.iter().map(|l| start_worker(l)).collect();

    // Every deletion a worker logs (just before asking SQS) must find all the
    // message's events already stored: events are never removed, so a check
    // made after the log line holds at the time of the deletion too.
    let mut offsets = [0usize; 3];
    let mut deleted_messages = BTreeSet::new();
    let mut check_deletions = |offsets: &mut [usize; 3]| {
        let mut new = Vec::new();
        for (i, log) in logs.iter().enumerate() {
            let (lines, end) = deletions_since(log, offsets[i]);
            offsets[i] = end;
            new.extend(lines);
        }
        if new.is_empty() {
            return 0;
        }
        let stored = stored_ids(&db);
        for (message, objects) in &new {
            for object in objects {
                let file = object.rsplit('/').next().unwrap();
                let missing = expected[file].difference(&stored).count();
                assert_eq!(
                    missing, 0,
                    "message {message} was deleted before {object}'s events were stored"
                );
            }
            deleted_messages.insert(message.clone());
        }
        new.len()
    };

    // Kill worker 0 once it has deleted something, while work remains.
    wait_for(
        "worker 0 to delete messages",
        Duration::from_secs(30),
        || {
            check_deletions(&mut offsets);
            let (left, _) = deletions_since(&logs[0], 0);
            left.len() >= 2
        },
    );
    let (visible, hidden, _) = moto.counts(&queue);
    assert!(visible + hidden > 0, "the queue drained before the kill");
    workers[0].kill().unwrap();
    workers[0].wait().unwrap();
    eprintln!(
        "killed worker 0 after {:.2?} with {visible} messages visible, {hidden} in flight",
        started.elapsed()
    );

    // The others drain the queue, the killed worker's messages included
    // once their visibility timeout ends.
    let survivors: Vec<Child> = workers.drain(1..).collect();
    let mut outputs = Vec::new();
    for w in survivors {
        let out = w.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        outputs.push(err);
    }
    check_deletions(&mut offsets);
    eprintln!("drained in {:.2?}", started.elapsed());

    assert_eq!(stored_ids(&db), all_ids(&expected), "{outputs:#?}");
    assert_eq!(moto.counts(&queue), (0, 0, 0));
    assert_eq!(
        deleted_messages.len(),
        120,
        "every message deleted once at least"
    );
}
