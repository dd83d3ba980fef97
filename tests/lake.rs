//! The lake sinks with real parts: Iceberg tables in an SQL catalog (SQLite
//! or PostgreSQL), Glue, S3 Tables or a REST catalog server (rustberg) on a
//! local directory or on S3 (the moto server), Parquet on S3, read back
//! by independent readers (pyiceberg and pyarrow from PyPI), through crashes
//! of `process` and of a fleet of SQS workers.

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::crash::{self, Rng, done_count, terminate, wait_for};
use support::moto::Moto;
use support::rest_catalog::RestCatalog;
use support::{datasets, repo, trailmill};

/// Runs `scripts/read-iceberg.py` (pyiceberg, `TRAILMILL_ICEBERG_PYTHON`,
/// which `scripts/test` installs) on a table and returns what it prints.
fn read_table(catalog: &str, warehouse: &str, table: &str, extra: &[&str]) -> Value {
    let python = std::env::var("TRAILMILL_ICEBERG_PYTHON").expect(
        "TRAILMILL_ICEBERG_PYTHON is not set: run scripts/test, which installs pyiceberg \
         (scripts/setup-iceberg-reader.sh)",
    );
    let out = Command::new(&python)
        .arg(repo().join("scripts/read-iceberg.py"))
        .args([
            "--catalog-uri",
            catalog,
            "--warehouse",
            warehouse,
            "--table",
            table,
        ])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "read-iceberg.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("read-iceberg.py prints JSON")
}

/// [`read_table`] of a table in moto's Glue catalog, with its warehouse on
/// moto's S3.
fn read_glue_table(moto: &Moto, warehouse: &str, table: &str) -> Value {
    let mut props = s3_props(&moto.endpoint);
    props.extend([
        "--property".to_owned(),
        format!("glue.endpoint={}", moto.endpoint),
    ]);
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    read_table("glue", warehouse, table, &props)
}

/// The S3 properties pyiceberg needs for the moto server at `endpoint`.
fn s3_props(endpoint: &str) -> Vec<String> {
    [
        format!("s3.endpoint={endpoint}"),
        "s3.access-key-id=test".into(),
        "s3.secret-access-key=test".into(),
        "s3.region=us-east-1".into(),
    ]
    .into_iter()
    .flat_map(|p| ["--property".to_owned(), p])
    .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `cmd`, which must succeed, and returns its stderr.
fn succeed(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stderr(&out)
}

/// Every eventID of the log files under `dir`, by file name, read with
/// serde_json (not by trailmill).
fn event_ids_by_file(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for path in support::files_under(dir) {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.contains("Digest") {
            continue;
        }
        let text = if name.ends_with(".json.gz") {
            support::gunzip(&path)
        } else if name.ends_with(".json") {
            std::fs::read_to_string(&path).unwrap()
        } else {
            continue;
        };
        let log: Value = serde_json::from_str(&text).unwrap();
        // Not a log file (synth's keys.json, say).
        let Some(records) = log["Records"].as_array() else {
            continue;
        };
        let ids = records
            .iter()
            .map(|r| r["eventID"].as_str().unwrap().to_owned())
            .collect();
        out.insert(name, ids);
    }
    out
}

fn all_ids(by_file: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    by_file.values().flatten().cloned().collect()
}

/// The table's eventIDs, asserting that none is there twice.
fn table_ids_once(table: &Value) -> BTreeSet<String> {
    let ids: Vec<String> = support::strings(&table["event_ids"]);
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    if set.len() != ids.len() {
        let mut seen = BTreeSet::new();
        let twice: Vec<&String> = ids.iter().filter(|i| !seen.insert(*i)).take(5).collect();
        panic!(
            "{} rows but {} distinct eventIDs; e.g. twice: {twice:?}",
            ids.len(),
            set.len()
        );
    }
    set
}

/// Runs `cmd process fixtures/real/invictus-ir ARGS --no-state`.
fn process_invictus(mut cmd: Command, args: &[String]) -> Output {
    cmd.arg("process")
        .arg(datasets().join("invictus-ir"))
        .args(args)
        .arg("--no-state")
        .output()
        .unwrap()
}

fn iceberg_args<'a>(catalog: &'a str, warehouse: &'a str, table: &'a str) -> Vec<String> {
    vec![
        "--sink".into(),
        format!("iceberg:{table}"),
        "--iceberg-catalog".into(),
        catalog.into(),
        "--iceberg-warehouse".into(),
        warehouse.into(),
    ]
}

#[test]
fn real_datasets_land_in_an_iceberg_table_once_and_a_second_run_adds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = format!("sqlite:{}", tmp.path().join("catalog.db").display());
    let warehouse = tmp.path().join("warehouse").display().to_string();
    let run = || {
        succeed(
            trailmill()
                .arg("process")
                .arg(datasets())
                .args(iceberg_args(&catalog, &warehouse, "cloudtrail.events"))
                .arg("--no-state"),
        )
    };
    let first = run();
    assert!(
        first.contains("sink iceberg:cloudtrail.events: 2900 written, 0 duplicates"),
        "{first}"
    );
    let expected = all_ids(&event_ids_by_file(&datasets().join("invictus-ir")));
    let table = read_table(
        &catalog,
        &warehouse,
        "cloudtrail.events",
        &["--columns", "event_time,aws_region,raw,source_object"],
    );
    assert_eq!(table["rows"], 2900);
    let ids = table_ids_once(&table);
    assert_eq!(expected.len(), 2900);
    assert!(
        ids == expected,
        "the table's eventIDs differ from the source's"
    );
    // The layout the README documents.
    let spec = table["partition_spec"].as_str().unwrap();
    for part in [
        "event_day: day(",
        "recipient_account_id: identity(",
        "aws_region: identity(",
    ] {
        assert!(spec.contains(part), "{spec}");
    }
    // Row groups close at the open-file budget's share (1 MiB encoded), as
    // the iceberg writers cannot write one out early: with 8 MiB row groups,
    // an organisation trail's 36 open partitions held 520 MiB. The 3.7 MB of
    // records, in one partition, need more than one.
    let row_groups: u64 = table["row_groups"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    let files = table["data_files"].as_array().unwrap().len() as u64;
    assert!(
        row_groups > files,
        "{row_groups} row groups in {files} files"
    );
    let snapshots = table["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1);
    let summary = &snapshots[0]["summary"];
    assert_eq!(summary["operation"], "append");
    assert_eq!(summary["added-records"], "2900");
    assert!(summary["trailmill.commit-id"].is_string(), "{summary}");
    // Values: each raw record is the source's text, and its columns agree
    // with it.
    let values = &table["values"];
    for i in 0..2900 {
        let raw = values["raw"][i].as_str().unwrap();
        let record: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(record["eventID"], table["event_ids"][i]);
        assert_eq!(record["awsRegion"], values["aws_region"][i]);
        let time = values["event_time"][i].as_str().unwrap();
        let source = record["eventTime"].as_str().unwrap().trim_end_matches('Z');
        assert!(time.starts_with(source), "{time} vs {source}");
        assert!(
            values["source_object"][i]
                .as_str()
                .unwrap()
                .ends_with(".json")
        );
    }

    // The same objects again, with no state to skip them: the ledger does.
    let second = run();
    assert!(
        second.contains("sink iceberg:cloudtrail.events: 0 written, 2900 duplicates"),
        "{second}"
    );
    let again = read_table(&catalog, &warehouse, "cloudtrail.events", &[]);
    assert_eq!(again["rows"], 2900);
    assert_eq!(again["snapshots"].as_array().unwrap().len(), 1);
}

/// Regression: a checkpoint's commit could fall between two batches of one
/// object (batches of different objects interleave); the ledger then
/// recorded the half-written object as held, and its later batches were
/// skipped as duplicates: with 10-event batches, two workers and a
/// checkpoint after each object, a run stored 2,456 of the 2,900 events and
/// failed 10 objects whose redo added nothing.
#[test]
fn checkpoints_between_the_batches_of_an_object_lose_no_event() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = format!("sqlite:{}", tmp.path().join("catalog.db").display());
    let warehouse = tmp.path().join("warehouse").display().to_string();
    let out = succeed(
        trailmill()
            .arg("process")
            .arg(datasets().join("invictus-ir"))
            .args(iceberg_args(&catalog, &warehouse, "ct.events"))
            .arg("--state")
            .arg(tmp.path().join("state.db"))
            .args([
                "--checkpoint-files",
                "1",
                "--batch-size",
                "10",
                "--threads",
                "2",
            ]),
    );
    assert!(out.contains("55 files ok, 0 failed"), "{out}");
    assert!(out.contains("2900 written, 0 duplicates"), "{out}");
    let table = read_table(&catalog, &warehouse, "ct.events", &[]);
    assert!(table_ids_once(&table) == all_ids(&event_ids_by_file(&datasets().join("invictus-ir"))));
}

#[test]
fn iceberg_errors_name_the_cause_and_commit_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = format!("sqlite:{}", tmp.path().join("catalog.db").display());
    let warehouse = tmp.path().join("warehouse").display().to_string();
    let process = |args: &[String]| process_invictus(trailmill(), args);
    let fails_with = |args: Vec<String>, reason: &str| {
        let out = process(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} succeeded: {err}");
        assert!(
            err.contains(reason),
            "{args:?}: expected {reason:?} in:\n{err}"
        );
    };

    // No warehouse.
    fails_with(
        vec![
            "--sink".into(),
            "iceberg:ct.events".into(),
            "--iceberg-catalog".into(),
            catalog.clone(),
        ],
        "no warehouse",
    );
    // No catalog.
    fails_with(
        vec!["--sink".into(), "iceberg:ct.events".into()],
        "no catalog",
    );
    // A catalog that cannot be reached.
    fails_with(
        iceberg_args(
            "postgres://trailmill@127.0.0.1:1/none",
            &warehouse,
            "ct.events",
        ),
        "cannot open the SQL catalog",
    );
    // A table whose schema cannot take the rows: made by pyiceberg.
    let python = std::env::var("TRAILMILL_ICEBERG_PYTHON").unwrap();
    let db = tmp.path().join("catalog.db");
    let made = Command::new(&python)
        .args([
            "-c",
            r#"
import sys
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, LongType, StringType
cat = SqlCatalog("trailmill", uri="sqlite:///" + sys.argv[1], warehouse="file://" + sys.argv[2])
cat.create_namespace("ct")
cat.create_table("ct.other", Schema(
    NestedField(1, "event_id", LongType(), required=True),
    NestedField(2, "owner", StringType(), required=True)))
"#,
            db.to_str().unwrap(),
            &warehouse,
        ])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let out = process(&iceberg_args(&catalog, &warehouse, "ct.other"));
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    for reason in [
        "the table's schema cannot take trailmill's rows",
        "column event_id is long, not string",
        "column raw is missing",
        "column owner is required",
    ] {
        assert!(err.contains(reason), "expected {reason:?} in:\n{err}");
    }
    let other = read_table(&catalog, &warehouse, "ct.other", &[]);
    assert_eq!(other["rows"], 0);
    assert_eq!(other["snapshots"].as_array().unwrap().len(), 0);

    // S3 writes that fail (the warehouse's bucket does not exist): the table
    // is not created, and nothing is committed.
    let moto = Moto::start();
    let out = moto
        .trailmill()
        .arg("process")
        .arg(datasets().join("invictus-ir"))
        .args(iceberg_args(&catalog, "s3://no-such-bucket/wh", "ct.on_s3"))
        .arg("--no-state")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("cannot create the table") && err.contains("NoSuchBucket"),
        "{err}"
    );
    let python_out = Command::new(&python)
        .arg(repo().join("scripts/read-iceberg.py"))
        .args([
            "--catalog-uri",
            &catalog,
            "--warehouse",
            &warehouse,
            "--table",
            "ct.on_s3",
        ])
        .output()
        .unwrap();
    assert_eq!(
        python_out.status.code(),
        Some(3),
        "the table must not exist"
    );
}

/// The Parquet lake under `s3://BUCKET/events` on the moto server, read
/// with pyarrow's own S3 filesystem, as Athena or DuckDB would: every row's
/// `event_id`, and the distinct `account` partition values.
fn read_s3_lake(moto: &Moto, bucket: &str) -> (Vec<String>, Value) {
    let python = std::env::var("TRAILMILL_PYREADER_PYTHON").expect("TRAILMILL_PYREADER_PYTHON");
    let endpoint = moto.endpoint.trim_start_matches("http://").to_owned();
    let read = Command::new(&python)
        .args([
            "-c",
            r#"
import json, sys
import pyarrow.dataset as ds
from pyarrow import fs
s3 = fs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1",
                     endpoint_override=sys.argv[1], scheme="http")
t = ds.dataset(sys.argv[2] + "/events", filesystem=s3, format="parquet",
               partitioning="hive").to_table(columns=["event_id", "account"])
print(json.dumps({"ids": t.column("event_id").to_pylist(),
                  "accounts": sorted(set(map(str, t.column("account").to_pylist())))}))
"#,
            &endpoint,
            bucket,
        ])
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", stderr(&read));
    let read: Value = serde_json::from_slice(&read.stdout).unwrap();
    (support::strings(&read["ids"]), read["accounts"].clone())
}

/// Several writers may share a lake's prefix, so a sink that opens aborts
/// only the uploads a crashed writer left (started over an hour ago), never
/// one that another writer has in progress. moto dates every upload
/// 2010-11-10, so the proxy in front of it dates them now.
#[test]
fn an_upload_in_progress_under_the_prefix_is_left_alone() {
    let moto = Moto::start();
    let bucket = moto.new_bucket("young-upload");
    let running =
        "events/account=123837392027/region=us-east-1/date=2023-07-10/part-another-writer.parquet";
    moto.admin("start_upload", json!({ "bucket": bucket, "key": running }));
    let proxy = support::proxy::Proxy::start(
        &moto.endpoint.replace("http://", ""),
        support::proxy::Faults {
            uploads_started_now: true,
            ..support::proxy::Faults::default()
        },
    );
    let out = succeed(
        moto.trailmill()
            .env("AWS_ENDPOINT_URL_S3", &proxy.endpoint)
            .arg("process")
            .arg(datasets().join("invictus-ir"))
            .args([
                "--sink",
                &format!("parquet:s3://{bucket}/events"),
                "--no-state",
            ]),
    );
    assert!(out.contains("2900 written"), "{out}");
    assert!(
        proxy
            .counts
            .upload_lists_redated
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the sink lists the uploads under its prefix, through the proxy"
    );
    let keys = moto.admin("list", json!({ "bucket": bucket }));
    assert_eq!(keys["uploads"], json!([running]));
}

#[test]
fn parquet_on_s3_appears_as_whole_files_in_the_hive_layout() {
    let moto = Moto::start();
    let bucket = moto.new_bucket("lake");
    // Uploads a crashed writer left, under the lake's prefix and outside
    // it. moto dates every multipart upload 2010-11-10, so both are past
    // the sink's one-hour age; only the lake's is its to abort.
    let crashed =
        "events/account=123837392027/region=us-east-1/date=2023-07-10/part-crashed.parquet";
    for key in [crashed, "elsewhere/part-crashed.parquet"] {
        moto.admin("start_upload", json!({ "bucket": bucket, "key": key }));
    }
    succeed(
        moto.trailmill()
            .arg("process")
            .arg(datasets().join("invictus-ir"))
            .args([
                "--sink",
                &format!("parquet:s3://{bucket}/events"),
                "--no-state",
            ]),
    );
    let keys = moto.admin("list", json!({ "bucket": bucket }));
    assert_eq!(keys["uploads"], json!(["elsewhere/part-crashed.parquet"]));
    let keys: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(!keys.is_empty());
    for k in &keys {
        let parts: Vec<&str> = k.split('/').collect();
        assert_eq!(parts.len(), 5, "{k}");
        assert_eq!(parts[0], "events");
        assert!(parts[1].starts_with("account="), "{k}");
        assert!(parts[2].starts_with("region="), "{k}");
        assert!(parts[3].starts_with("date="), "{k}");
        assert!(
            parts[4].starts_with("part-") && parts[4].ends_with(".parquet"),
            "{k}"
        );
    }
    let (ids, accounts) = read_s3_lake(&moto, &bucket);
    assert_eq!(ids.len(), 2900);
    let set: BTreeSet<String> = ids.into_iter().collect();
    let expected = all_ids(&event_ids_by_file(&datasets().join("invictus-ir")));
    assert_eq!(expected.len(), 2900);
    assert!(
        set == expected,
        "the lake's eventIDs differ from the source's"
    );
    assert_eq!(accounts, json!(["123837392027"]));
}

/// S3 refuses the writes (moto enforcing IAM, for users who may read the
/// bucket but not write the data): the error names the object and S3's
/// reason, every object of the window is recorded as failed, nothing
/// becomes visible (no Parquet object, no open upload, no snapshot), and a
/// later run with write access redoes exactly those objects.
#[test]
fn denied_s3_writes_name_the_object_commit_nothing_and_are_redone() {
    let moto = Moto::start();
    let bucket = moto.new_bucket("denied");
    let read_anything =
        json!({ "Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*" });
    let reader = moto.limited_user("reader", json!([read_anything]));
    // May write the table's metadata (so the table is created) but not its
    // data files: the failure comes at the commit, not at the open.
    let metadata_writer = moto.limited_user(
        "metadata-writer",
        json!([read_anything, {
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": format!("arn:aws:s3:::{bucket}/warehouse/*/metadata/*"),
        }]),
    );
    let tmp = tempfile::tempdir().unwrap();
    let source = datasets().join("invictus-ir");
    let parquet_state = tmp.path().join("parquet.state");
    let parquet_run = |cmd: &mut Command| {
        cmd.arg("process")
            .arg(&source)
            .args(["--sink", &format!("parquet:s3://{bucket}/events")])
            .arg("--state")
            .arg(&parquet_state)
            .output()
            .unwrap()
    };
    let catalog = format!("sqlite:{}", tmp.path().join("catalog.db").display());
    let warehouse = format!("s3://{bucket}/warehouse");
    let iceberg_state = tmp.path().join("iceberg.state");
    let iceberg_run = |cmd: &mut Command| {
        cmd.arg("process")
            .arg(&source)
            .args(iceberg_args(&catalog, &warehouse, "cloudtrail.events"))
            .arg("--state")
            .arg(&iceberg_state)
            .output()
            .unwrap()
    };

    moto.enforce_auth(true);
    let denied = parquet_run(&mut moto.trailmill_as(&reader));
    let iceberg_denied = iceberg_run(&mut moto.trailmill_as(&metadata_writer));
    moto.enforce_auth(false);

    assert!(!denied.status.success());
    let err = stderr(&denied);
    assert!(
        err.contains(&format!(
            "upload s3://{bucket}/events/account=123837392027/region=us-east-1/date=2023-07-10/part-"
        )) && err.contains("AccessDenied"),
        "{err}"
    );
    assert!(err.contains("0 files ok, 55 failed"), "{err}");
    let listed = moto.admin("list", json!({ "bucket": bucket }));
    let visible: Vec<&Value> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k.as_str().unwrap().starts_with("events/"))
        .collect();
    assert!(visible.is_empty(), "{visible:?}");
    assert_eq!(listed["uploads"], json!([]));

    assert!(!iceberg_denied.status.success());
    let err = stderr(&iceberg_denied);
    assert!(
        err.contains("cannot close a data file of partition")
            && err.contains("PermissionDenied")
            && err.contains("AccessDenied")
            && err.contains(&format!("{bucket}/warehouse/cloudtrail/events/data/"))
            && !err.contains("headers:"),
        "{err}"
    );
    assert!(err.contains("0 files ok, 55 failed"), "{err}");
    let props = s3_props(&moto.endpoint);
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    let table = read_table(&catalog, &warehouse, "cloudtrail.events", &props);
    assert_eq!(table["rows"], 0);
    assert_eq!(table["snapshots"], json!([]));

    // With write access, the same states redo the failed objects, once.
    let expected = all_ids(&event_ids_by_file(&source));
    let redone = parquet_run(&mut moto.trailmill());
    assert!(redone.status.success(), "{}", stderr(&redone));
    assert!(
        stderr(&redone).contains("55 failed before and were retried"),
        "{}",
        stderr(&redone)
    );
    let (ids, _) = read_s3_lake(&moto, &bucket);
    assert_eq!(ids.len(), 2900);
    assert!(ids.into_iter().collect::<BTreeSet<_>>() == expected);

    let redone = iceberg_run(&mut moto.trailmill());
    assert!(redone.status.success(), "{}", stderr(&redone));
    let table = read_table(&catalog, &warehouse, "cloudtrail.events", &props);
    assert_eq!(table["rows"], 2900);
    assert!(table_ids_once(&table) == expected);
    assert_eq!(table["snapshots"].as_array().unwrap().len(), 1);
}

/// Lines in a worker's deletion log.
fn deletions(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |s| s.lines().count())
}

/// A `synth` trail of 2 accounts × `regions` × `hours` × 4 files of 20
/// events under `dir/trail`, uploaded to a new bucket on moto and announced
/// on a new queue, `keys_per_message` keys a message. Returns the trail's
/// eventIDs by file, the bucket and the queue URL.
fn enqueued_synth_trail(
    moto: &Moto,
    dir: &Path,
    regions: usize,
    hours: usize,
    what: &str,
    keys_per_message: usize,
) -> (BTreeMap<String, BTreeSet<String>>, String, String) {
    let trail = dir.join("trail");
    support::Synth {
        accounts: 2,
        regions,
        hours,
        logs_per_hour: 4,
        records: 20,
        extra: &[],
    }
    .write(&trail);
    let (bucket, queue, _) = moto.enqueued_trail(&trail, what, keys_per_message);
    (event_ids_by_file(&trail), bucket, queue)
}

/// The fleet crash test, for any Iceberg sink: a `synth` trail of 208 files
/// (2 accounts, 2 regions) on moto, announced in 104 messages; three
/// workers with the sink arguments `sink(TRAIL_BUCKET)` share the queue; the
/// busiest is killed (SIGKILL) mid-run, the busier survivor stopped
/// (SIGTERM) a little later, and a fourth joins. Returns the trail's
/// eventIDs by file, the trail's bucket and the surviving workers' stderr,
/// once the queue is empty; the caller reads the table.
fn fleet_through_sigkill_and_sigterm(
    moto: &Moto,
    tmp: &Path,
    sink: impl Fn(&str) -> Vec<String>,
) -> (BTreeMap<String, BTreeSet<String>>, String, Vec<String>) {
    let started = Instant::now();
    let (expected, bucket, queue) = enqueued_synth_trail(moto, tmp, 2, 13, "fleet", 2);
    assert_eq!(expected.len(), 208);
    assert_eq!(moto.counts(&queue).0, 104);

    let sink_args = sink(&bucket);
    let logs: Vec<PathBuf> = (0..4)
        .map(|i| tmp.join(format!("deleted-{i}.jsonl")))
        .collect();
    let start_worker = |log: &Path| {
        moto.trailmill()
            .args(["worker", "--queue", &queue])
            .args(&sink_args)
            .arg("--deletion-log")
            .arg(log)
            .args(["--visibility-timeout", "5", "--wait-seconds", "1"])
            // Objects of 20 events in batches of 7, on two threads: a
            // commit could fall between the batches of one object.
            .args(["--threads", "2", "--batch-size", "7"])
            .args(["--max-in-flight", "2", "--until-empty"])
            // Conflicts are logged at debug level: they are counted below.
            .env("TRAILMILL_LOG", "trailmill_lake=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The first worker creates the table; the others then race on commits.
    let mut workers: Vec<Child> = logs[..3].iter().map(|l| start_worker(l)).collect();

    // Kill points follow the fleet's progress, not one worker's: a worker
    // that loses its first commits to the others may delete nothing before
    // they drain the queue. The busiest worker is killed once the fleet has
    // deleted a few messages, and the busier survivor stopped a few later.
    let total = |logs: &[PathBuf]| logs.iter().map(|l| deletions(l)).sum::<usize>();
    let busiest = |among: &[usize]| *among.iter().max_by_key(|&&i| deletions(&logs[i])).unwrap();
    wait_for(
        "the fleet to delete messages",
        Duration::from_secs(60),
        || total(&logs[..3]) >= 4,
    );
    let killed = busiest(&[0, 1, 2]);
    let (visible, hidden, _) = moto.counts(&queue);
    assert!(visible + hidden > 0, "the queue drained before the kill");
    workers[killed].kill().unwrap(); // SIGKILL, mid-run
    workers[killed].wait().unwrap();
    let at_kill = total(&logs[..3]);
    wait_for(
        "the survivors to delete messages",
        Duration::from_secs(60),
        || total(&logs[..3]) >= at_kill + 4,
    );
    let survivors: Vec<usize> = (0..3).filter(|&i| i != killed).collect();
    let stopped = busiest(&survivors);
    terminate(&workers[stopped]);
    eprintln!(
        "killed worker {killed} and stopped worker {stopped} after {:.2?}; {visible} visible, {hidden} in flight at the kill",
        started.elapsed()
    );
    // A replacement joins the survivor; both drain the queue, the killed
    // worker's messages included once their visibility timeout ends.
    workers.push(start_worker(&logs[3]));
    let mut outputs = Vec::new();
    for (i, w) in workers.into_iter().enumerate() {
        if i == killed {
            continue;
        }
        let out = w.wait_with_output().unwrap();
        let err = stderr(&out);
        // The stopped worker ends on SIGTERM after its current work, cleanly.
        assert_eq!(out.status.code(), Some(0), "worker {i}: {err}");
        outputs.push(err);
    }
    eprintln!("drained in {:.2?}", started.elapsed());
    assert_eq!(moto.counts(&queue), (0, 0, 0), "{outputs:#?}");
    (expected, bucket, outputs)
}

/// Checks that a fleet of workers left every eventID of `expected` in
/// `table` once, and reports the commits and the conflicts that the
/// workers' logs (`outputs`, at debug level) show.
fn assert_fleet_stored_each_event_once(
    table: &Value,
    expected: &BTreeMap<String, BTreeSet<String>>,
    outputs: &[String],
) {
    let ids = table_ids_once(table);
    assert_eq!(ids, all_ids(expected), "{outputs:#?}");
    let commits = table["snapshots"].as_array().unwrap().len();
    let conflicts: usize = outputs
        .iter()
        .map(|o| o.matches("commit conflict; reloading").count())
        .sum();
    eprintln!(
        "{} events in {commits} commits; {conflicts} conflicts met by the workers that ended",
        ids.len()
    );
}

#[test]
fn a_fleet_of_workers_fills_one_table_on_s3_exactly_once_through_sigkill_and_sigterm() {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let catalog = format!("sqlite:{}", tmp.path().join("catalog.db").display());
    let warehouse = |bucket: &str| format!("s3://{bucket}/warehouse");
    let (expected, bucket, outputs) = fleet_through_sigkill_and_sigterm(&moto, tmp.path(), |b| {
        iceberg_args(&catalog, &warehouse(b), "trail.events")
    });
    let props = s3_props(&moto.endpoint);
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    let table = read_table(&catalog, &warehouse(&bucket), "trail.events", &props);
    assert_fleet_stored_each_event_once(&table, &expected, &outputs);
}

/// The same crash test in an S3 Tables bucket, whose commits swap the
/// table's version token instead of an SQL row.
#[test]
fn a_fleet_of_workers_fills_an_s3_tables_table_exactly_once_through_sigkill_and_sigterm() {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let arn = table_bucket(&moto, "fleet-crash");
    let (expected, _, outputs) = fleet_through_sigkill_and_sigterm(&moto, tmp.path(), |_| {
        s3tables_args(&arn, "trail.events")
    });
    let table = read_s3tables_table(&moto, &arn, "trail.events");
    assert_fleet_stored_each_event_once(&table, &expected, &outputs);
}

#[test]
fn process_into_iceberg_killed_three_times_and_resumed_stores_each_event_once() {
    let tmp = tempfile::tempdir().unwrap();
    let trail = tmp.path().join("trail");
    support::Synth {
        accounts: 2,
        regions: 2,
        hours: 10,
        logs_per_hour: 6,
        records: 50,
        extra: &[],
    }
    .write(&trail);
    let expected = all_ids(&event_ids_by_file(&trail));
    let catalog = format!("sqlite:{}", tmp.path().join("catalog.db").display());
    let warehouse = tmp.path().join("warehouse").display().to_string();
    let state = tmp.path().join("run.state");
    let start = || {
        trailmill()
            .arg("process")
            .arg(&trail)
            .args(iceberg_args(&catalog, &warehouse, "trail.events"))
            .arg("--state")
            .arg(&state)
            // Objects of 50 events in batches of 16, on two threads.
            .args([
                "--threads",
                "2",
                "--batch-size",
                "16",
                "--checkpoint-files",
                "2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // Kill points from a seed, printed so that a failure can be repeated:
    // each kill waits for the state to reach a random number of done
    // objects in its own band, then a few random milliseconds more.
    let seed = crash::seed();
    let mut rng = Rng(seed);
    let mut between = |lo, hi| rng.between(lo, hi);
    for (kill, (lo, hi)) in [(10, 50), (75, 115), (140, 175)].into_iter().enumerate() {
        let target = between(lo, hi) as usize;
        let delay = Duration::from_millis(between(0, 25));
        let mut child = start();
        wait_for("progress", Duration::from_secs(120), || {
            assert!(
                child.try_wait().unwrap().is_none(),
                "seed {seed}: run {} ended before {target} done objects",
                kill + 1
            );
            done_count(&state) >= target
        });
        std::thread::sleep(delay);
        assert!(
            child.try_wait().unwrap().is_none(),
            "seed {seed}: run {} finished before its kill",
            kill + 1
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Every object the state calls done is in the table, each event once.
        let table = read_table(&catalog, &warehouse, "trail.events", &[]);
        let ids = table_ids_once(&table);
        assert!(ids.len() >= done_count(&state) * 50, "seed {seed}");
        eprintln!(
            "kill {}: {target} done + {} ms; {} events committed",
            kill + 1,
            delay.as_millis(),
            ids.len()
        );
    }
    succeed(
        trailmill()
            .arg("process")
            .arg(&trail)
            .args(iceberg_args(&catalog, &warehouse, "trail.events"))
            .arg("--state")
            .arg(&state),
    );
    let table = read_table(&catalog, &warehouse, "trail.events", &[]);
    assert_eq!(table_ids_once(&table), expected, "seed {seed}");
}

#[test]
fn the_glue_catalog_holds_the_table_athena_would_read() {
    let moto = Moto::start();
    let bucket = moto.new_bucket("glue-lake");
    let warehouse = format!("s3://{bucket}/warehouse");
    let run = || {
        succeed(
            moto.trailmill()
                .arg("process")
                .arg(datasets().join("invictus-ir"))
                .args(iceberg_args("glue", &warehouse, "security.cloudtrail"))
                .arg("--no-state"),
        )
    };
    let first = run();
    assert!(first.contains("2900 written"), "{first}");
    let second = run();
    assert!(second.contains("0 written, 2900 duplicates"), "{second}");
    let table = read_glue_table(&moto, &warehouse, "security.cloudtrail");
    assert_holds_invictus_once(&table);
    // Glue tables keep UTC times without a zone (see the README).
    assert_eq!(column_type(&table, "event_time"), "timestamp");
}

/// Asserts that `table` holds every eventID of invictus-ir once, in one
/// snapshot.
fn assert_holds_invictus_once(table: &Value) {
    let ids = table_ids_once(table);
    assert!(ids == all_ids(&event_ids_by_file(&datasets().join("invictus-ir"))));
    assert_eq!(table["snapshots"].as_array().unwrap().len(), 1);
}

/// The Iceberg type of `column` in what `read-iceberg.py` printed.
fn column_type<'t>(table: &'t Value, column: &str) -> &'t str {
    let columns = table["schema"].as_array().unwrap();
    let found = columns.iter().find(|c| c[0] == column);
    found.unwrap_or_else(|| panic!("no column {column}"))[1]
        .as_str()
        .unwrap()
}

/// Runs `process` over invictus-ir into the Glue table
/// `security.cloudtrail`, with moto's Glue behind a proxy that applies
/// `faults`, and checks that the fault `fired` counts struck once and that
/// the table holds every event once, in one snapshot. Returns moto and the
/// bucket.
fn process_into_glue_behind(
    what: &str,
    faults: support::proxy::Faults,
    fired: fn(&support::proxy::Counts) -> &std::sync::atomic::AtomicU64,
) -> (Moto, String) {
    let moto = Moto::start();
    let bucket = moto.new_bucket(what);
    let warehouse = format!("s3://{bucket}/warehouse");
    let proxy = support::proxy::Proxy::start(&moto.endpoint.replace("http://", ""), faults);
    let out = succeed(
        moto.trailmill()
            .env("AWS_ENDPOINT_URL_GLUE", &proxy.endpoint)
            .arg("process")
            .arg(datasets().join("invictus-ir"))
            .args(iceberg_args("glue", &warehouse, "security.cloudtrail"))
            .arg("--no-state"),
    );
    assert!(out.contains("2900 written"), "{out}");
    // Reading every row reads every data file the snapshot names.
    let table = read_glue_table(&moto, &warehouse, "security.cloudtrail");
    assert_eq!(table["rows"], 2900);
    assert_holds_invictus_once(&table);
    assert_eq!(
        fired(&proxy.counts).load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    (moto, bucket)
}

/// A commit attempt that meets a conflict has already written its ledger
/// files (segments and a root) for a snapshot that never lands. They were
/// left behind, one set per conflict, in the table's metadata; a fleet of
/// writers meets conflicts all the time. The proxy answers the first
/// `UpdateTable` with a conflict without forwarding it, and the second
/// attempt lands: only its ledger files may remain.
#[test]
fn the_ledger_files_of_an_attempt_that_met_a_conflict_are_deleted() {
    let (moto, bucket) = process_into_glue_behind(
        "glue-retry",
        support::proxy::Faults {
            conflict_without_forwarding: Some("AWSGlue.UpdateTable"),
            ..support::proxy::Faults::default()
        },
        |c| &c.conflicts_without_forwarding,
    );
    let keys: Vec<String> =
        support::strings(&moto.admin("list", json!({ "bucket": bucket }))["keys"]);
    let ledger: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains("/metadata/trailmill-ledger/"))
        .collect();
    // Files are named `root-<commit id>-<attempt>.json` and
    // `seg-<commit id>-<attempt>-<day>.bin`: the second attempt landed.
    let attempt = |key: &str| {
        let name = key.rsplit('/').next().unwrap();
        let tagged = name
            .strip_prefix("root-")
            .or_else(|| name.strip_prefix("seg-"))
            .unwrap_or_else(|| panic!("an unexpected ledger file: {key}"));
        tagged
            .trim_end_matches(".json")
            .split('-')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert!(
        !ledger.is_empty() && ledger.iter().all(|k| attempt(k) == "2"),
        "ledger files: {ledger:?}"
    );
}

/// Regression: a commit that landed although the catalog answered
/// "conflict" (real Glue's answer to the SDK's retry of an `UpdateTable`
/// whose reply was lost) was taken for another writer's: the sink found its
/// own objects in the ledger, gave the window up and deleted the data files
/// the new snapshot referenced. The proxy in front of moto's Glue forwards
/// the first `UpdateTable` and answers `ConcurrentModificationException`.
#[test]
fn a_commit_that_landed_behind_a_conflict_answer_is_kept() {
    process_into_glue_behind(
        "glue-conflict",
        support::proxy::Faults {
            conflict_after_forwarding: Some("AWSGlue.UpdateTable"),
            ..support::proxy::Faults::default()
        },
        |c| &c.conflicts_after_forwarding,
    );
}

#[test]
fn a_postgresql_catalog_serves_one_table_to_every_writer() {
    let url = pg::fresh_db("iceberg_catalog");
    let tmp = tempfile::tempdir().unwrap();
    let warehouse = tmp.path().join("warehouse").display().to_string();
    // Two writers on the two halves of a dataset, one after the other: the
    // second finds the table the first created and appends to it.
    let mut logs: Vec<PathBuf> = support::files_under(&datasets().join("invictus-ir/CloudTrail"));
    logs.sort();
    let halves = [tmp.path().join("a"), tmp.path().join("b")];
    for (i, log) in logs.iter().enumerate() {
        let dir = &halves[i % 2];
        std::fs::create_dir_all(dir).unwrap();
        std::fs::copy(log, dir.join(log.file_name().unwrap())).unwrap();
    }
    for half in &halves {
        succeed(
            trailmill()
                .arg("process")
                .arg(half)
                .args(iceberg_args(&url, &warehouse, "security.cloudtrail"))
                .arg("--no-state"),
        );
    }
    let table = read_table(&url, &warehouse, "security.cloudtrail", &[]);
    assert_eq!(table["snapshots"].as_array().unwrap().len(), 2);
    let ids = table_ids_once(&table);
    assert!(ids == all_ids(&event_ids_by_file(&datasets().join("invictus-ir"))));
}

/// A new S3 Tables table bucket on moto; returns its ARN.
fn table_bucket(moto: &Moto, what: &str) -> String {
    let name = support::moto::unique(what);
    let created = moto.admin("create_table_bucket", json!({ "name": name }));
    created["arn"].as_str().unwrap().to_owned()
}

/// [`read_table`] of a table in the S3 Tables bucket `arn` on moto.
fn read_s3tables_table(moto: &Moto, arn: &str, table: &str) -> Value {
    let props = s3_props(&moto.endpoint);
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    read_table(arn, "", table, &props)
}

/// The location of `table`, asserting that its data files and its ledger
/// are under it.
fn files_under_location(table: &Value) -> &str {
    let location = table["location"].as_str().unwrap();
    for file in support::strings::<Vec<String>>(&table["data_files"]) {
        assert!(file.starts_with(&format!("{location}/data/")), "{file}");
    }
    assert!(
        table["properties"]["trailmill.ledger"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{location}/metadata/trailmill-ledger/")),
        "{}",
        table["properties"]
    );
    location
}

/// `--sink iceberg:TABLE` into the S3 Tables bucket `arn`: no warehouse,
/// as the service places each table.
fn s3tables_args(arn: &str, table: &str) -> Vec<String> {
    vec![
        "--sink".into(),
        format!("iceberg:{table}"),
        "--iceberg-catalog".into(),
        arn.into(),
    ]
}

#[test]
fn an_s3_tables_bucket_holds_the_table_once_where_the_service_placed_it() {
    let moto = Moto::start();
    let arn = table_bucket(&moto, "trails");
    let run = |arn: &str, extra: &[&str]| {
        moto.trailmill()
            .arg("process")
            .arg(datasets().join("invictus-ir"))
            .args(s3tables_args(arn, "security.cloudtrail"))
            .args(extra)
            .arg("--no-state")
            .output()
            .unwrap()
    };
    let says = |out: &Output, success: bool, text: &str| {
        let err = stderr(out);
        assert_eq!(out.status.success(), success, "{err}");
        assert!(err.contains(text), "{err}");
    };
    // S3 Tables chooses each table's location; a warehouse is refused
    // before anything is created.
    says(
        &run(&arn, &["--iceberg-warehouse", "s3://elsewhere/wh"]),
        false,
        "an S3 Tables bucket chooses where each table goes: drop --iceberg-warehouse s3://elsewhere/wh",
    );
    // A bucket that does not exist is named, in one line.
    let missing = arn.replace(":bucket/", ":bucket/missing-");
    says(
        &run(&missing, &[]),
        false,
        &format!("cannot open the S3 Tables bucket {missing}: NotFoundException: "),
    );
    // The catalog's own properties win over the environment: here an
    // endpoint where nothing listens.
    let unreachable = run(
        &arn,
        &["--iceberg-property", "endpoint_url=http://127.0.0.1:9"],
    );
    says(
        &unreachable,
        false,
        &format!("cannot open the S3 Tables bucket {arn}: "),
    );
    assert!(stderr(&unreachable).contains("Connection refused"));

    says(&run(&arn, &[]), true, "2900 written");
    says(&run(&arn, &[]), true, "0 written, 2900 duplicates");

    let table = read_s3tables_table(&moto, &arn, "security.cloudtrail");
    assert_holds_invictus_once(&table);
    // The table lives where the service put it (moto, like S3 Tables, names
    // a bucket `…--table-s3`), with its data files and ledger there.
    let location = files_under_location(&table);
    assert!(
        location.starts_with("s3://") && location.ends_with("--table-s3"),
        "{location}"
    );
    assert_eq!(column_type(&table, "event_time"), "timestamptz");
}

/// Workers that share one S3 Tables table commit through its version token
/// (`UpdateTableMetadataLocation` fails with a conflict when another writer
/// committed since the table was loaded): each event lands once.
///
/// Regression: S3 Tables lists a table from `CreateTable` on, before its
/// creator has written the first metadata; workers that started together
/// found it so and failed ("Table events does not have metadata location").
#[test]
fn workers_sharing_an_s3_tables_table_store_each_event_once() {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _, queue) = enqueued_synth_trail(&moto, tmp.path(), 1, 6, "s3tables-fleet", 1);
    assert_eq!(expected.len(), 48);
    let arn = table_bucket(&moto, "fleet");
    let worker = || {
        moto.trailmill()
            .args(["worker", "--queue", &queue])
            .args(s3tables_args(&arn, "trail.events"))
            .env("TRAILMILL_LOG", "trailmill_lake=debug")
            .args(["--visibility-timeout", "5", "--wait-seconds", "1"])
            .args(["--max-in-flight", "2", "--until-empty"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let workers: Vec<Child> = (0..3).map(|_| worker()).collect();
    let outputs: Vec<String> = workers
        .into_iter()
        .map(|w| {
            let out = w.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            stderr(&out)
        })
        .collect();
    assert_eq!(moto.counts(&queue), (0, 0, 0), "{outputs:#?}");
    let table = read_s3tables_table(&moto, &arn, "trail.events");
    assert_fleet_stored_each_event_once(&table, &expected, &outputs);
    // Table buckets refuse DeleteObject (moto's as well: MethodNotAllowed),
    // so the ledger files of attempts that met a conflict are left to S3
    // Tables' unreferenced-file removal, not deleted one failure at a time.
    for o in &outputs {
        assert!(!o.contains("cannot delete"), "{o}");
    }
}

/// `--sink iceberg:TABLE` into the REST catalog `server`, as its writer:
/// no warehouse, as the server has a default one.
fn rest_args(server: &RestCatalog, table: &str) -> Vec<String> {
    vec![
        "--sink".into(),
        format!("iceberg:{table}"),
        "--iceberg-catalog".into(),
        server.uri.clone(),
        "--iceberg-property".into(),
        format!("token={}", server.writer_token),
    ]
}

/// [`read_table`] of a table in the REST catalog `server`, with its reader
/// key, through pyiceberg's own REST client; `extra` adds reader arguments.
fn read_rest_table(moto: &Moto, server: &RestCatalog, table: &str, extra: &[&str]) -> Value {
    let mut props = s3_props(&moto.endpoint);
    props.extend([
        "--property".to_owned(),
        format!("token={}", server.reader_token),
    ]);
    let mut props: Vec<&str> = props.iter().map(String::as_str).collect();
    props.extend(extra);
    read_table(&server.uri, "", table, &props)
}

/// A REST catalog server (rustberg, on its own registry of table pointers,
/// with its warehouse on moto's S3) holds the table: each event once,
/// however often the trail is processed. Errors name the server and the
/// cause, and commit nothing.
#[test]
fn a_rest_catalog_server_holds_the_table_once() {
    let moto = Moto::start();
    let bucket = moto.new_bucket("rest-warehouse");
    let warehouse = format!("s3://{bucket}/warehouse");
    let server = RestCatalog::start(&moto.endpoint, &warehouse, None);
    let run = |args: &[String]| process_invictus(moto.trailmill(), args);
    let fails_saying = |out: &Output, texts: &[&str]| {
        let err = stderr(out);
        assert!(!out.status.success(), "{err}");
        for text in texts {
            assert!(err.contains(text), "{text:?} not in: {err}");
        }
    };
    let args = rest_args(&server, "security.cloudtrail");
    // Nothing listens there: the address and the cause are named.
    let mut elsewhere = args.clone();
    elsewhere[3] = "http://127.0.0.1:9".into();
    fails_saying(
        &run(&elsewhere),
        &["cannot reach the catalog", "http://127.0.0.1:9/v1/config"],
    );
    // A key the server does not know.
    let mut wrong_key = args.clone();
    wrong_key[5] = "token=rb_not_a_key".into();
    fails_saying(
        &run(&wrong_key),
        &["cannot reach the catalog: ", "(HTTP 401)"],
    );
    // The reader's key may not create the table: the server's refusal, in
    // its own words, without the response's headers.
    let mut reader = args.clone();
    reader[5] = format!("token={}", server.reader_token);
    let refused = run(&reader);
    fails_saying(
        &refused,
        &[
            "cannot create the namespace: ForbiddenException: ",
            "security' (HTTP 403)",
        ],
    );
    assert!(
        !stderr(&refused).contains("headers"),
        "{}",
        stderr(&refused)
    );

    let first = run(&args);
    assert!(
        first.status.success(),
        "{}\n{}",
        stderr(&first),
        server.log()
    );
    assert!(
        stderr(&first).contains("2900 written"),
        "{}",
        stderr(&first)
    );
    let second = run(&args);
    assert!(
        stderr(&second).contains("0 written, 2900 duplicates"),
        "{}",
        stderr(&second)
    );

    let table = read_rest_table(&moto, &server, "security.cloudtrail", &[]);
    assert_holds_invictus_once(&table);
    assert_eq!(column_type(&table, "event_time"), "timestamptz");
    // The server placed the table in its warehouse, with its data files and
    // ledger there.
    let location = files_under_location(&table);
    assert!(location.starts_with(&format!("{warehouse}/")), "{location}");
}

/// A REST server behind a load balancer applies a commit whose reply is
/// lost (here the proxy in front of it resets the connection after
/// forwarding the commit). The sink finds its commit ID in the table and
/// keeps the commit: the run succeeds, with each event once.
#[test]
fn a_rest_commit_whose_reply_was_lost_is_found_in_the_table_and_kept() {
    let moto = Moto::start();
    let bucket = moto.new_bucket("rest-lost-reply");
    let server = RestCatalog::start(&moto.endpoint, &format!("s3://{bucket}/warehouse"), None);
    let proxy = support::proxy::Proxy::start(
        &server.uri.replace("http://", ""),
        support::proxy::Faults {
            reset_after_forwarding: Some("POST /v1/namespaces/security/tables/cloudtrail HTTP"),
            ..Default::default()
        },
    );
    let mut args = rest_args(&server, "security.cloudtrail");
    args[3] = proxy.endpoint.clone();
    let out = moto
        .trailmill()
        .arg("process")
        .arg(datasets().join("invictus-ir"))
        .args(&args)
        .arg("--no-state")
        .env("TRAILMILL_LOG", "trailmill_lake=info")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("2900 written"), "{err}");
    let lost = &proxy.counts.resets_after_forwarding;
    assert_eq!(lost.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(
        err.contains("a commit answered with an error had landed"),
        "{err}"
    );
    let table = read_rest_table(&moto, &server, "security.cloudtrail", &[]);
    assert_holds_invictus_once(&table);
}

/// The fleet crash test on a REST catalog's table, whose commits the
/// server accepts only while the table's branch is still where the commit
/// found it (`assert-ref-snapshot-id`), and answers 409 otherwise.
#[test]
fn a_fleet_of_workers_fills_a_rest_catalog_table_exactly_once_through_sigkill_and_sigterm() {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let bucket = moto.new_bucket("rest-fleet");
    let server = RestCatalog::start(&moto.endpoint, &format!("s3://{bucket}/warehouse"), None);
    let (expected, _, outputs) = fleet_through_sigkill_and_sigterm(&moto, tmp.path(), |_| {
        rest_args(&server, "trail.events")
    });
    let table = read_rest_table(&moto, &server, "trail.events", &[]);
    assert_fleet_stored_each_event_once(&table, &expected, &outputs);
}

/// A REST catalog over HTTPS, with a certificate from a private CA: the
/// server's certificate is checked against the system's roots, which
/// `SSL_CERT_FILE` replaces, as for OpenSSL.
#[test]
fn a_rest_catalog_over_https_is_trusted_only_through_the_roots_given() {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    // A private CA and a server certificate it signed, for 127.0.0.1.
    let path = |name: &str| tmp.path().join(name);
    let (ca, cert, key) = (path("ca.crt"), path("server.crt"), path("server.key"));
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(args)
            .current_dir(tmp.path())
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "{}", stderr(&out));
    };
    openssl(&[
        "-subj",
        "/CN=trailmill test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&[
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
        "-keyout",
        "server.key",
        "-out",
        "server.crt",
    ]);
    let bucket = moto.new_bucket("rest-tls");
    let server = RestCatalog::start(
        &moto.endpoint,
        &format!("s3://{bucket}/warehouse"),
        Some(support::rest_catalog::Tls {
            cert: &cert,
            key: &key,
        }),
    );
    assert!(server.uri.starts_with("https://127.0.0.1:"));
    let run = |cert_file: Option<&Path>| {
        let mut cmd = moto.trailmill();
        cmd.arg("process")
            .arg(datasets().join("invictus-ir"))
            .args(rest_args(&server, "security.cloudtrail"))
            .arg("--no-state");
        match cert_file {
            Some(f) => cmd.env("SSL_CERT_FILE", f),
            // No system root signs the test certificate.
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        cmd.output().unwrap()
    };
    let untrusted = run(None);
    let err = stderr(&untrusted);
    assert!(!untrusted.status.success(), "{err}");
    assert!(
        err.contains("cannot reach the catalog") && err.contains("certificate"),
        "{err}"
    );
    let trusted = run(Some(&ca));
    assert!(
        stderr(&trusted).contains("2900 written"),
        "{}",
        stderr(&trusted)
    );
    let cabundle = format!("ssl.cabundle={}", ca.display());
    let table = read_rest_table(
        &moto,
        &server,
        "security.cloudtrail",
        &["--property", &cabundle],
    );
    assert_holds_invictus_once(&table);
}
