//! The Parquet sink on real CloudTrail data, read back by an independent
//! reader: pyarrow from PyPI (`scripts/setup-pyreader.sh`), with Hive
//! partitioning, as Athena, DuckDB or Spark would read the lake.

mod support;

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use support::{datasets, run_ok, sink_counts};

/// One record of the source files: its exact text and the fields the lake is
/// partitioned and keyed by, found by serde_json (not by trailmill).
#[derive(Debug)]
struct SourceRecord {
    raw: String,
    account: Option<String>,
    region: Option<String>,
    time: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Fields {
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    #[serde(rename = "recipientAccountId")]
    account: Option<String>,
    #[serde(rename = "awsRegion")]
    region: Option<String>,
    #[serde(rename = "eventTime")]
    time: Option<String>,
}

/// The dataset directories, and every record in them by dedup key (eventID,
/// or sha256 of the text); also the total number of records.
fn source_records() -> (Vec<String>, HashMap<String, SourceRecord>, usize) {
    let dirs = vec![
        datasets().join("invictus-ir/CloudTrail"),
        datasets().join("stratus-red-team"),
    ];
    let mut by_key = HashMap::new();
    let mut total = 0;
    for dir in &dirs {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let records: Vec<&RawValue> = match serde_json::from_str::<Envelope<'_>>(&text) {
                Ok(env) => env.records,
                Err(_) => serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            };
            for r in records {
                total += 1;
                let f: Fields = serde_json::from_str(r.get()).unwrap();
                let key = f.event_id.clone().unwrap_or_else(|| {
                    format!("sha256:{}", hex::encode(Sha256::digest(r.get().as_bytes())))
                });
                by_key.insert(
                    key,
                    SourceRecord {
                        raw: r.get().to_owned(),
                        account: f.account,
                        region: f.region,
                        time: f.time,
                    },
                );
            }
        }
    }
    let dirs = dirs
        .iter()
        .map(|d| d.to_str().unwrap().to_owned())
        .collect();
    (dirs, by_key, total)
}

/// Reads the lake with pyarrow: every row's key, raw text and partition
/// values, the event_time column's type, and the data files it read.
const READER: &str = r#"
import json, sys
import pyarrow as pa, pyarrow.dataset as ds
part = ds.partitioning(pa.schema([("account", pa.string()), ("region", pa.string()), ("date", pa.string())]), flavor="hive")
d = ds.dataset(sys.argv[1], format="parquet", partitioning=part)
t = d.to_table(columns=["event_id", "raw", "event_time", "account", "region", "date", "event_name"])
rows = [[r["event_id"], r["raw"], r["account"], r["region"], r["date"],
         None if r["event_time"] is None else r["event_time"].strftime("%Y-%m-%dT%H:%M:%SZ"), r["event_name"]]
        for r in t.to_pylist()]
print(json.dumps({"files": sorted(d.files), "event_time_type": str(t.schema.field("event_time").type),
                  "rows": rows}))
"#;

/// One row as the reader prints it: event_id, raw, account, region, date,
/// event_time, event_name.
type LakeRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

#[derive(Deserialize)]
struct Lake {
    files: Vec<String>,
    event_time_type: String,
    rows: Vec<LakeRow>,
}

fn read_lake(dir: &Path) -> Lake {
    support::pyarrow_json(READER, dir)
}

#[test]
fn datasets_into_parquet_read_back_by_pyarrow() {
    let (dirs, sources, total) = source_records();
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let spec = format!("parquet:{}", lake.display());
    let mut args = vec!["process"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--sink", &spec]);
    let out = run_ok(&args);
    let (written, duplicates) = sink_counts(&out.stderr, "parquet:");
    assert_eq!(written as usize, sources.len());
    assert_eq!((written + duplicates) as usize, total);

    let read = read_lake(&lake);
    assert_eq!(read.event_time_type, "timestamp[us, tz=UTC]");
    assert!(!read.files.is_empty());
    for f in &read.files {
        let name = Path::new(f).file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("part-") && name.ends_with(".parquet"),
            "{f}"
        );
    }
    assert_eq!(read.rows.len(), sources.len(), "one row per unique event");
    let mut seen = HashMap::new();
    for (key, raw, account, region, date, time, name) in &read.rows {
        let src = sources
            .get(key)
            .unwrap_or_else(|| panic!("row {key} is not a source event"));
        assert!(seen.insert(key.clone(), ()).is_none(), "{key} twice");
        assert_eq!(raw, &src.raw, "{key}: raw must be the exact source text");
        let null = "__HIVE_DEFAULT_PARTITION__";
        assert_eq!(account, src.account.as_deref().unwrap_or(null), "{key}");
        assert_eq!(region, src.region.as_deref().unwrap_or(null), "{key}");
        let src_time = src.time.as_deref().unwrap();
        assert_eq!(date, &src_time[..10], "{key}");
        // Both datasets write whole seconds: the timestamp round-trips.
        assert_eq!(time.as_deref(), Some(src_time), "{key}");
        let src_name: serde_json::Value = serde_json::from_str(&src.raw).unwrap();
        assert_eq!(name.as_deref(), src_name["eventName"].as_str(), "{key}");
    }
    let partitions: std::collections::BTreeSet<(&str, &str, &str)> = read
        .rows
        .iter()
        .map(|r| (r.2.as_str(), r.3.as_str(), r.4.as_str()))
        .collect();
    let expected: std::collections::BTreeSet<(&str, &str, &str)> = sources
        .values()
        .map(|s| {
            (
                s.account.as_deref().unwrap(),
                s.region.as_deref().unwrap(),
                &s.time.as_deref().unwrap()[..10],
            )
        })
        .collect();
    assert_eq!(partitions, expected);

    // A second run adds files (Parquet cannot dedupe across runs): every
    // event is then there twice, and readers dedupe by event_id. (Without
    // --restart, the state inside the lake would skip every file done.)
    args.push("--restart");
    run_ok(&args);
    let again = read_lake(&lake);
    assert_eq!(again.rows.len(), 2 * sources.len());
    let no_tmp = support::files_under(&lake)
        .iter()
        .all(|p| !p.display().to_string().ends_with(".tmp"));
    assert!(no_tmp, "no temporary file remains after a finished run");
}
