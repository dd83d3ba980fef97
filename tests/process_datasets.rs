//! `trailmill process` on real CloudTrail data from real accounts
//! (`fixtures/real`): exact event counts, byte-identical output, and the
//! datasets' known quirks.

mod support;

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;
use support::{datasets, events_in_out, run, run_ok};

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "Records")]
    records: Vec<&'a RawValue>,
}

/// Every record's exact text in the JSON files under `dir`, found by an
/// independent parser (serde_json's `RawValue`), sorted.
fn source_records(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let records: Vec<&RawValue> = match serde_json::from_str::<Envelope<'_>>(&text) {
            Ok(env) => env.records,
            Err(_) => {
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            }
        };
        out.extend(records.iter().map(|r| r.get().to_owned()));
    }
    out.sort();
    out
}

fn emitted_lines(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["process", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run_ok(&args);
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn invictus_emits_exactly_2900_events_byte_identical_to_the_source() {
    let dir = datasets().join("invictus-ir/CloudTrail");
    let lines = emitted_lines(&dir, &[]);
    assert_eq!(lines.len(), 2900);
    assert_eq!(
        lines,
        source_records(&dir),
        "each emitted line must be a record's exact source text"
    );
}

/// Stratus records are pretty-printed: their text spans several lines. A JSON
/// Lines record must stay on one line, so the JSONL sink turns line breaks
/// between tokens into spaces (same length, same JSON) and changes nothing
/// else; the SQLite store keeps the text byte for byte, line breaks included.
#[test]
fn stratus_emits_exactly_310_events_from_bare_arrays_byte_identical() {
    let dir = datasets().join("stratus-red-team");
    let lines = emitted_lines(&dir, &["--threads", "1"]);
    assert_eq!(lines.len(), 310);
    let sources = source_records(&dir);
    let mut one_line: Vec<String> = sources
        .iter()
        .map(|r| r.replace(['\n', '\r'], " "))
        .collect();
    one_line.sort();
    assert_eq!(lines, one_line);

    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s.db");
    run_ok(&[
        "process",
        dir.to_str().unwrap(),
        "--sink",
        &format!("sqlite:{}", db.display()),
    ]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn.prepare("SELECT raw FROM events").unwrap();
    let mut stored: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    stored.sort();
    let mut unique_sources = sources.clone();
    unique_sources.dedup();
    assert_eq!(
        stored, unique_sources,
        "the store keeps each record's exact text"
    );
}

/// Quirk: invictus file names carry account 218007301253 while the records say
/// 123837392027. `--account` selects files by key; `--event-account` filters
/// events by recipientAccountId.
#[test]
fn invictus_account_quirk_key_account_and_record_account_differ() {
    let dir = datasets().join("invictus-ir/CloudTrail");
    let dir = dir.to_str().unwrap();
    let count = |args: &[&str]| {
        let mut all = vec!["process", dir, "--sink", "jsonl:/dev/null"];
        all.extend_from_slice(args);
        events_in_out(&run_ok(&all).stderr).1
    };
    assert_eq!(count(&["--account", "218007301253"]), 2900);
    assert_eq!(count(&["--account", "123837392027"]), 0);
    assert_eq!(count(&["--event-account", "123837392027"]), 2900);
    assert_eq!(count(&["--event-account", "218007301253"]), 0);
}

/// Quirk: stratus data is anonymised with values no real AWS would produce
/// (region `ap-isob-east-1r`, IP `255.090.254.5`); they must pass untouched.
#[test]
fn stratus_anonymised_regions_and_ips_are_kept() {
    let dir = datasets().join("stratus-red-team");
    let lines = emitted_lines(&dir, &["--event-region", "ap-isob-east-1r"]);
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l.contains("\"ap-isob-east-1r\"")));
    let all = emitted_lines(&dir, &[]);
    assert!(
        all.iter().any(|l| l.contains("255.090.254.5")),
        "the odd IP must survive byte for byte"
    );
}

#[test]
fn filters_select_events_on_real_data() {
    let dir = datasets().join("invictus-ir/CloudTrail");
    let all = emitted_lines(&dir, &[]);
    let parsed: Vec<serde_json::Value> = all
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expect =
        |pred: &dyn Fn(&serde_json::Value) -> bool| parsed.iter().filter(|v| pred(v)).count();
    let s3 = emitted_lines(&dir, &["--event-source", "s3.amazonaws.com"]);
    assert_eq!(
        s3.len(),
        expect(&|v| v["eventSource"] == "s3.amazonaws.com")
    );
    let gets = emitted_lines(&dir, &["--event-name", "Get*"]);
    assert_eq!(
        gets.len(),
        expect(&|v| v["eventName"]
            .as_str()
            .is_some_and(|n| n.starts_with("Get")))
    );
    let errors = emitted_lines(&dir, &["--errors-only"]);
    assert_eq!(errors.len(), expect(&|v| v.get("errorCode").is_some()));
    let writes = emitted_lines(&dir, &["--writes-only"]);
    assert_eq!(writes.len(), expect(&|v| v["readOnly"] == false));
    let window = emitted_lines(
        &dir,
        &[
            "--event-time-start",
            "2023-07-10T12:00:00Z",
            "--event-time-end",
            "2023-07-10T12:15:00Z",
        ],
    );
    assert_eq!(
        window.len(),
        expect(&|v| v["eventTime"]
            .as_str()
            .is_some_and(|t| ("2023-07-10T12:00:00Z".."2023-07-10T12:15:00Z").contains(&t)))
    );
    assert!(!s3.is_empty() && !gets.is_empty() && !writes.is_empty() && !window.is_empty());
}

#[test]
fn sqlite_store_holds_each_unique_event_once_across_reruns() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("events.db");
    let sink = format!("sqlite:{}", db.display());
    let dirs = [
        datasets().join("invictus-ir/CloudTrail"),
        datasets().join("stratus-red-team"),
    ];
    let unique: HashSet<String> = dirs
        .iter()
        .flat_map(|d| source_records(d))
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r).unwrap()["eventID"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let args = |_: ()| -> Vec<String> {
        let mut a = vec!["process".to_owned()];
        a.extend(dirs.iter().map(|d| d.display().to_string()));
        a.extend(["--sink".to_owned(), sink.clone()]);
        a
    };
    let first = run(&args(()).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // The state beside the database would skip every file on a re-run;
    // --restart processes them all again, for the store to collapse.
    let mut again = args(());
    again.push("--restart".to_owned());
    let second = run_ok(&again.iter().map(String::as_str).collect::<Vec<_>>());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows as usize, unique.len());
    let text = String::from_utf8_lossy(&second.stderr);
    assert!(
        text.contains(&format!("0 written, {} duplicates collapsed", 2900 + 310)),
        "{text}"
    );
    let region: String = conn
        .query_row(
            "SELECT aws_region FROM events WHERE source_ip_address = '255.090.254.5' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!region.is_empty());
}
