//! Checkpoints and resume, end to end: `trailmill process` with a state file
//! is killed with SIGKILL and resumed, re-run, restarted, and fed changed
//! files; the stores must end with exactly the trail's events.
//!
//! The crash test writes to every kind of sink at once, and reads each back
//! independently of trailmill: SQLite with rusqlite, PostgreSQL (the test
//! cluster of `scripts/test`, `TRAILMILL_PG_URL`) with tokio-postgres,
//! Parquet with pyarrow (`TRAILMILL_PYREADER_PYTHON`), gzip JSON Lines with
//! flate2's multi-member decoder.

mod support;

#[path = "support/pg.rs"]
mod pg;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::crash::{self, Rng, done_count};
use support::{Synth, run, run_ok, trailmill};

/// A synthetic trail, and the eventIDs of each of its log files (by absolute
/// path, as the state names them), read independently of trailmill.
struct Trail {
    _dir: tempfile::TempDir,
    root: PathBuf,
    logs: BTreeMap<String, Vec<String>>,
}

impl Trail {
    fn unique_ids(&self) -> HashSet<String> {
        self.logs.values().flatten().cloned().collect()
    }
}

fn synth(hours: usize, logs_per_hour: usize, records: usize) -> Trail {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trail");
    Synth {
        accounts: 2,
        regions: 2,
        hours,
        logs_per_hour,
        records,
        extra: &[],
    }
    .write(&root);
    let mut logs = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.to_str().unwrap();
            if path.is_dir() {
                dirs.push(path);
            } else if name.contains("/CloudTrail/") && name.ends_with(".json.gz") {
                logs.insert(name.to_owned(), support::log_event_ids(&path));
            }
        }
    }
    Trail {
        _dir: dir,
        root,
        logs,
    }
}

/// The eventIDs an SQLite store holds (unique by its primary key).
fn sqlite_ids(db: &Path) -> HashSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT event_id FROM events").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The eventID of every line of a gzip JSON Lines file, read with a standard
/// multi-member decoder, in order, duplicates included.
fn jsonl_ids(path: &Path) -> Vec<String> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{} is not a valid gzip stream: {e}", path.display()));
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["eventID"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Every eventID in a PostgreSQL `events` table.
fn postgres_ids(url: &str) -> HashSet<String> {
    pg::query(url, "SELECT event_id FROM events")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

/// Every row's eventID in a Parquet lake, duplicates included, read by
/// pyarrow as a Hive-partitioned dataset (which, like Athena or Spark, skips
/// files whose names start with `.` or `_`: temporary files and the state).
fn parquet_ids(lake: &Path) -> Vec<String> {
    const READER: &str = r#"
import json, sys
import pyarrow.dataset as ds
d = ds.dataset(sys.argv[1], format="parquet", partitioning="hive")
print(json.dumps(d.to_table(columns=["event_id"]).column("event_id").to_pylist()))
"#;
    if !lake.exists() {
        return Vec::new();
    }
    support::pyarrow_json(READER, lake)
}

/// The objects a state calls done, and how many it calls failed.
fn state_objects(state: &Path) -> (HashSet<String>, usize) {
    if !state.exists() {
        return (HashSet::new(), 0);
    }
    let conn = rusqlite::Connection::open(state).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, status FROM objects")
        .expect("the state has its tables");
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let done = rows
        .iter()
        .filter(|(_, s)| s == "done")
        .map(|(n, _)| n.clone())
        .collect();
    let failed = rows.iter().filter(|(_, s)| s == "failed").count();
    (done, failed)
}

/// The eventIDs in the complete lines a crash left in a gzip JSON Lines
/// file, read with a standard multi-member decoder up to the torn end.
fn jsonl_ids_before_the_tear(path: &Path) -> HashSet<String> {
    let mut text = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap());
    let mut chunk = [0u8; 1 << 16];
    // A torn member ends in an error; what came before it is kept.
    while let Ok(n @ 1..) = decoder.read(&mut chunk) {
        text.extend_from_slice(&chunk[..n]);
    }
    let complete = match text.iter().rposition(|&b| b == b'\n') {
        Some(end) => &text[..end],
        None => &[][..],
    };
    complete
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice::<serde_json::Value>(l).unwrap()["eventID"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The commit protocol's promise, checked at a crash: every object the state
/// calls done has all its events in every store.
fn assert_done_objects_are_stored(
    trail: &Trail,
    state: &Path,
    stores: &[(&str, HashSet<String>)],
    when: &str,
) {
    let (done, _) = state_objects(state);
    for name in &done {
        let ids = trail
            .logs
            .get(name)
            .unwrap_or_else(|| panic!("{when}: the state names an unknown object {name}"));
        for (store, stored) in stores {
            for id in ids {
                assert!(
                    stored.contains(id),
                    "{when}: {name} is marked done, but its event {id} is not in {store}"
                );
            }
        }
    }
}

/// A backfill into SQLite, PostgreSQL, Parquet and gzip JSON Lines at once
/// is killed with SIGKILL three times, at seeded random points, and resumed
/// each time.
///
/// At every crash, each object the state calls done must have its events in
/// every store (the commit protocol). At the end, the state calls every
/// object done; SQLite and PostgreSQL hold exactly the trail's unique
/// eventIDs, the same set as an uninterrupted run into a fresh store; the
/// Parquet lake and the JSON Lines file (a valid gzip stream) hold that same
/// set, with the redone objects' events as their only duplicates, which the
/// summary reports exactly for JSON Lines.
#[test]
fn killed_three_times_and_resumed_the_stores_hold_exactly_the_trails_events() {
    let seed = crash::seed();
    let mut rng = Rng(seed);
    // 2 accounts × 2 regions × 13 hours × 4 logs = 208 files of 3 events.
    let trail = synth(13, 4, 3);
    let total = trail.logs.len();
    assert_eq!(total, 208);
    let unique = trail.unique_ids();
    assert_eq!(
        unique.len(),
        624,
        "the synthetic trail's eventIDs are unique"
    );

    let out = tempfile::tempdir().unwrap();
    let reference = out.path().join("reference.db");
    run_ok(&[
        "process",
        trail.root.to_str().unwrap(),
        "--sink",
        &format!("sqlite:{}", reference.display()),
        "--no-state",
    ]);
    let reference_ids = sqlite_ids(&reference);
    assert_eq!(reference_ids, unique);

    let db = out.path().join("events.db");
    let pg_url = pg::fresh_db("trailmill_test_crash");
    let lake = out.path().join("lake");
    let jsonl = out.path().join("events.jsonl.gz");
    let state = out.path().join("backfill.state");
    let args = [
        "process".to_owned(),
        trail.root.display().to_string(),
        "--sink".to_owned(),
        format!("sqlite:{}", db.display()),
        "--sink".to_owned(),
        // The test cluster's certificate is self-signed (the stores tests
        // cover TLS); this test is about crashes, over plain TCP.
        format!(
            "postgres:{pg_url}{}",
            match (pg_url.contains("sslmode="), pg_url.contains('?')) {
                (true, _) => "",
                (false, true) => "&sslmode=disable",
                (false, false) => "?sslmode=disable",
            }
        ),
        "--sink".to_owned(),
        format!("parquet:{}", lake.display()),
        "--sink".to_owned(),
        format!("jsonl:{}", jsonl.display()),
        "--state".to_owned(),
        state.display().to_string(),
        // One worker and a checkpoint every two files: the run lasts long
        // enough (each checkpoint commits and fsyncs) for the kills to land
        // mid-run.
        "--threads".to_owned(),
        "1".to_owned(),
        "--checkpoint-files".to_owned(),
        "2".to_owned(),
    ];
    // Each kill waits for the state to reach a random number of done objects
    // in its own band, then a random few milliseconds more.
    let bands = [(10, 50), (75, 115), (140, 175)];
    for (i, &(lo, hi)) in bands.iter().enumerate() {
        let target = rng.between(lo, hi) as usize;
        let delay = Duration::from_millis(rng.between(0, 25));
        let mut child = trailmill()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while done_count(&state) < target {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "seed {seed}: run {} ended ({status}) before reaching {target} done objects",
                    i + 1
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "seed {seed}: no progress"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(delay);
        assert!(
            child.try_wait().unwrap().is_none(),
            "seed {seed}: run {} finished before its kill",
            i + 1
        );
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        let done = done_count(&state);
        eprintln!(
            "kill {}: {target} objects done + {} ms; {done} of {total} done at the kill",
            i + 1,
            delay.as_millis()
        );
        assert!(done < total, "seed {seed}: kill {} came too late", i + 1);
        let stores = [
            ("SQLite", sqlite_ids(&db)),
            ("PostgreSQL", postgres_ids(&pg_url)),
            ("Parquet", parquet_ids(&lake).into_iter().collect()),
            ("JSON Lines", jsonl_ids_before_the_tear(&jsonl)),
        ];
        assert_done_objects_are_stored(&trail, &state, &stores, &format!("kill {}", i + 1));
    }

    let last = run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let summary = String::from_utf8_lossy(&last.stderr);
    eprintln!("{summary}");
    assert!(
        summary.contains("the previous run was interrupted"),
        "{summary}"
    );
    let (done, failed) = state_objects(&state);
    assert_eq!((done.len(), failed), (total, 0));
    assert_eq!(done, trail.logs.keys().cloned().collect());

    // The stores unique by eventID: exactly the trail's events.
    assert_eq!(
        sqlite_ids(&db),
        reference_ids,
        "SQLite: exactly the trail's eventIDs"
    );
    let rows: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows as usize, unique.len());
    assert_eq!(
        postgres_ids(&pg_url),
        reference_ids,
        "PostgreSQL: exactly the trail's eventIDs"
    );
    let pg_rows: usize = pg::scalar(&pg_url, "SELECT count(*) FROM events")
        .parse()
        .unwrap();
    assert_eq!(pg_rows, unique.len());

    // The at-least-once outputs: every eventID and no other, and duplicates
    // only from the objects in flight at the kills. With one worker those
    // are at most the two files since the last checkpoint and the one being
    // read, per kill.
    let at_most = 3 * 3 * 3;
    let rows = parquet_ids(&lake);
    let distinct: HashSet<String> = rows.iter().cloned().collect();
    assert_eq!(distinct, unique, "Parquet: every eventID, and no other");
    let parquet_duplicates = rows.len() - unique.len();
    let lines = jsonl_ids(&jsonl);
    let distinct: HashSet<String> = lines.iter().cloned().collect();
    assert_eq!(distinct, unique, "JSON Lines: every eventID, and no other");
    let jsonl_duplicates = lines.len() - unique.len();
    eprintln!(
        "{} unique events; duplicates from redone objects: Parquet {parquet_duplicates} ({} rows), JSON Lines {jsonl_duplicates} ({} lines)",
        unique.len(),
        rows.len(),
        lines.len()
    );
    assert!(
        parquet_duplicates <= at_most && jsonl_duplicates <= at_most,
        "seed {seed}: more duplicates than three kills' worth of in-flight objects"
    );
    // The summary reports the duplicates it can know: the lines beyond one
    // copy of each done object's events.
    assert!(
        summary.contains(&format!(
            "it now holds {jsonl_duplicates} lines more than one copy"
        )),
        "seed {seed}: the summary should report {jsonl_duplicates} duplicates:\n{summary}"
    );
    // The crashes' half-written Parquet files were cleared when the next run
    // opened the lake, and the last run left none.
    let mut dirs = vec![lake.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert!(
                !path.to_string_lossy().ends_with(".tmp"),
                "{} remains",
                path.display()
            );
            if path.is_dir() {
                dirs.push(path);
            }
        }
    }
}

/// A second run with the same state reads nothing; a file whose mtime changed
/// is redone; `--restart` processes everything again and SQLite collapses it;
/// a state made for another sink is refused.
#[test]
fn reruns_skip_done_objects_redo_changed_ones_and_restart_redoes_all() {
    let trail = synth(1, 2, 4); // 8 files of 4 events
    let out = tempfile::tempdir().unwrap();
    let db = out.path().join("e.db");
    let sink = format!("sqlite:{}", db.display());
    let root = trail.root.to_str().unwrap();
    let stderr = |o: std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let first = stderr(run_ok(&["process", root, "--sink", &sink]));
    assert!(first.contains("8 files ok"), "{first}");
    assert!(
        first.contains("32 written, 0 duplicates collapsed"),
        "{first}"
    );
    let state = out.path().join("e.db.state");
    assert_eq!(
        state_objects(&state).0.len(),
        8,
        "the state is beside the database"
    );

    let again = stderr(run_ok(&["process", root, "--sink", &sink]));
    assert!(again.contains("0 files ok"), "{again}");
    assert!(again.contains("8 already done"), "{again}");
    assert!(again.contains("0 events in, 0 out"), "{again}");

    // Same bytes, new mtime: a new version of the object.
    let (changed, ids) = trail.logs.iter().next().unwrap();
    let file = std::fs::File::options().write(true).open(changed).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    let redo = stderr(run_ok(&["process", root, "--sink", &sink]));
    assert!(redo.contains("1 files ok"), "{redo}");
    assert!(redo.contains("1 changed since and were redone"), "{redo}");
    assert!(
        redo.contains(&format!("0 written, {} duplicates collapsed", ids.len())),
        "{redo}"
    );

    let restart = stderr(run_ok(&["process", root, "--sink", &sink, "--restart"]));
    assert!(restart.contains("8 files ok"), "{restart}");
    assert!(
        restart.contains("0 written, 32 duplicates collapsed"),
        "{restart}"
    );
    assert_eq!(sqlite_ids(&db), trail.unique_ids());

    let other = format!("sqlite:{}", out.path().join("other.db").display());
    let refused = run(&[
        "process",
        root,
        "--sink",
        &other,
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let text = stderr(refused);
    assert!(
        text.contains("e.db.state") && text.contains("sinks") && text.contains("--restart"),
        "{text}"
    );
    assert!(!out.path().join("other.db").exists(), "nothing written");

    let refused = run(&["process", root, "--sink", &sink, "--event-name", "Get*"]);
    assert_eq!(refused.status.code(), Some(2), "another event filter");

    // A state whose output was deleted since would skip everything into an
    // empty new output: refused.
    std::fs::rename(&db, out.path().join("moved.db")).unwrap();
    let refused = run(&["process", root, "--sink", &sink]);
    assert_eq!(refused.status.code(), Some(2));
    let text = stderr(refused);
    assert!(text.contains("e.db does not exist"), "{text}");
    assert!(!db.exists());

    let none = stderr(run_ok(&["process", root, "--sink", &sink, "--no-state"]));
    assert!(none.contains("8 files ok"), "{none}");
}

/// With a state, a JSON Lines file is appended to on later runs, never
/// truncated, and stays one valid gzip stream; `--restart` starts it over.
#[test]
fn json_lines_files_are_appended_to_and_restart_starts_them_over() {
    let trail = synth(1, 2, 4);
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("o.jsonl.gz");
    let sink = format!("jsonl:{}", path.display());
    let root = trail.root.to_str().unwrap();
    run_ok(&["process", root, "--sink", &sink]);
    assert_eq!(jsonl_ids(&path).len(), 32);
    assert!(out.path().join("o.jsonl.gz.state").is_file());

    let again = run_ok(&["process", root, "--sink", &sink]);
    let text = String::from_utf8_lossy(&again.stderr);
    assert!(
        text.contains("appended after 32 lines kept; it now holds 0 lines more"),
        "{text}"
    );
    assert_eq!(jsonl_ids(&path).len(), 32, "not truncated");

    let (changed, ids) = trail.logs.iter().next().unwrap();
    let file = std::fs::File::options().write(true).open(changed).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    let redo = run_ok(&["process", root, "--sink", &sink]);
    let text = String::from_utf8_lossy(&redo.stderr);
    assert!(
        text.contains(&format!("it now holds {} lines more", ids.len())),
        "{text}"
    );
    let lines = jsonl_ids(&path);
    assert_eq!(
        lines.len(),
        32 + ids.len(),
        "the redone file's events again"
    );
    assert_eq!(
        lines.iter().cloned().collect::<HashSet<_>>(),
        trail.unique_ids()
    );

    run_ok(&["process", root, "--sink", &sink, "--restart"]);
    assert_eq!(jsonl_ids(&path).len(), 32, "started over");
}

/// A file that fails is recorded as failed, with its reason, and every later
/// run retries it until it succeeds.
#[test]
fn failed_files_are_recorded_and_retried_until_they_succeed() {
    let trail = synth(1, 1, 4); // 4 files of 4 events
    let out = tempfile::tempdir().unwrap();
    let db = out.path().join("e.db");
    let sink = format!("sqlite:{}", db.display());
    let root = trail.root.to_str().unwrap();
    let (bad, ids) = trail.logs.iter().next().unwrap();
    let good_bytes = std::fs::read(bad).unwrap();
    std::fs::write(bad, &good_bytes[..good_bytes.len() / 2]).unwrap();

    for attempt in 1..=2 {
        let o = run(&["process", root, "--sink", &sink]);
        assert_eq!(o.status.code(), Some(1), "attempt {attempt}");
        let text = String::from_utf8_lossy(&o.stderr);
        assert!(text.contains("1 failed"), "{text}");
        let retried = if attempt == 1 { 0 } else { 1 };
        assert!(
            text.contains(&format!("{retried} failed before and were retried")),
            "{text}"
        );
        let state = rusqlite::Connection::open(out.path().join("e.db.state")).unwrap();
        let (status, attempts, error): (String, i64, String) = state
            .query_row(
                "SELECT status, attempts, error FROM objects WHERE name = ?1",
                [bad],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((status.as_str(), attempts), ("failed", attempt));
        assert!(!error.is_empty());
    }

    std::fs::write(bad, &good_bytes).unwrap();
    let fixed = run_ok(&["process", root, "--sink", &sink]);
    let text = String::from_utf8_lossy(&fixed.stderr);
    assert!(text.contains("1 files ok, 0 failed"), "{text}");
    assert!(text.contains("3 already done"), "{text}");
    let (done, failed) = state_objects(&out.path().join("e.db.state"));
    assert_eq!((done.len(), failed), (4, 0));
    assert!(ids.iter().all(|id| sqlite_ids(&db).contains(id)));
    assert_eq!(sqlite_ids(&db), trail.unique_ids());

    // The state may not be the sink's own file.
    let o = run(&[
        "process",
        root,
        "--sink",
        &sink,
        "--state",
        db.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a file of its own"));
}

/// SIGINT stops a run gracefully: the files in flight finish, the final
/// checkpoint records them, and the next run completes the job without
/// redoing anything, so even JSON Lines ends with no duplicate.
#[test]
fn a_signal_stops_the_run_cleanly_and_the_next_run_redoes_nothing() {
    let trail = synth(13, 4, 3);
    let out = tempfile::tempdir().unwrap();
    let db = out.path().join("e.db");
    let jsonl = out.path().join("e.jsonl.gz");
    let args = [
        "process".to_owned(),
        trail.root.display().to_string(),
        "--sink".to_owned(),
        format!("sqlite:{}", db.display()),
        "--sink".to_owned(),
        format!("jsonl:{}", jsonl.display()),
        "--threads".to_owned(),
        "1".to_owned(),
        "--checkpoint-files".to_owned(),
        "2".to_owned(),
    ];
    let state = out.path().join("e.db.state");
    let child = trailmill()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while done_count(&state) < 40 {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let stopped = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(1), "{text}");
    assert!(text.contains("interrupted by a signal"), "{text}");
    let (done, failed) = state_objects(&state);
    assert!(done.len() < trail.logs.len(), "stopped early: {text}");
    assert!(
        text.contains(&format!("{} objects done and 0 failed", done.len())),
        "every file the run finished is recorded: {text}"
    );
    assert_eq!(failed, 0);

    let resumed = run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let text = String::from_utf8_lossy(&resumed.stderr);
    assert!(!text.contains("previous run was interrupted"), "{text}");
    assert!(
        text.contains(&format!("{} already done", done.len())),
        "{text}"
    );
    assert!(
        text.contains(" 0 duplicates collapsed"),
        "nothing redone: {text}"
    );
    assert!(text.contains("it now holds 0 lines more"), "{text}");
    assert_eq!(sqlite_ids(&db), trail.unique_ids());
    assert_eq!(jsonl_ids(&jsonl).len(), trail.unique_ids().len());
}
