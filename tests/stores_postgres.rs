//! The PostgreSQL sink through `trailmill process`, on real CloudTrail data
//! and the test cluster `scripts/test` starts (`TRAILMILL_PG_URL`).

mod support;

#[path = "support/pg.rs"]
mod pg;

use support::{assert_within_the_memory_bound, datasets, large_trail, run_ok, sink_counts};

#[test]
fn datasets_twice_into_postgres_leave_the_rows_of_once() {
    let url = pg::fresh_db("trailmill_test_datasets_twice");
    let invictus = datasets().join("invictus-ir/CloudTrail");
    let stratus = datasets().join("stratus-red-team");
    let sqlite_dir = tempfile::tempdir().unwrap();
    let db = sqlite_dir.path().join("e.db");
    let pg_spec = format!("postgres:{url}");
    let sqlite_spec = format!("sqlite:{}", db.display());
    let args = [
        "process",
        invictus.to_str().unwrap(),
        stratus.to_str().unwrap(),
        "--sink",
        &pg_spec,
        "--sink",
        &sqlite_spec,
        // Every run reads every file, for the stores to collapse the
        // repeats (a state beside e.db would skip the files done).
        "--no-state",
    ];

    let first = run_ok(&args);
    let (written, dups) = sink_counts(&first.stderr, "postgres:");
    assert_eq!(written + dups, 3210, "every event reaches the sink");
    // The fan-out's other sink agrees on what is unique.
    assert_eq!(sink_counts(&first.stderr, "sqlite:"), (written, dups));
    let rows: u64 = pg::scalar(&url, "SELECT count(*) FROM events")
        .parse()
        .unwrap();
    assert_eq!(rows, written);

    let second = run_ok(&args);
    assert_eq!(
        sink_counts(&second.stderr, "postgres:"),
        (0, 3210),
        "a re-run inserts nothing and reports every event as a duplicate"
    );
    let again: u64 = pg::scalar(&url, "SELECT count(*) FROM events")
        .parse()
        .unwrap();
    assert_eq!(again, rows, "processing twice leaves the rows of once");

    // The same unique keys and exact texts as the SQLite store.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn
        .prepare("SELECT event_id, raw FROM events ORDER BY event_id")
        .unwrap();
    let sqlite_rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let pg_rows: Vec<(String, String)> = pg::query(
        &url,
        "SELECT event_id, raw FROM events ORDER BY event_id COLLATE \"C\"",
    )
    .into_iter()
    .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
    .collect();
    assert_eq!(pg_rows.len(), sqlite_rows.len());
    assert!(
        pg_rows == sqlite_rows,
        "raw must be each record's exact text"
    );

    // Typed columns and jsonb agree with the record.
    let mismatched = pg::scalar(
        &url,
        "SELECT count(*) FROM events WHERE
            event->>'eventName' IS DISTINCT FROM event_name
         OR event->>'eventSource' IS DISTINCT FROM event_source
         OR event->>'recipientAccountId' IS DISTINCT FROM recipient_account_id
         OR event->'userIdentity'->>'arn' IS DISTINCT FROM user_arn
         OR (event->>'eventTime')::timestamptz IS DISTINCT FROM event_time
         OR raw::jsonb <> event",
    );
    assert_eq!(mismatched, "0");
    let stratus_rows = pg::scalar(
        &url,
        "SELECT count(*) FROM events WHERE source_object LIKE '%/real/stratus-red-team/%'",
    );
    assert!(stratus_rows.parse::<u64>().unwrap() > 0);
}

/// Regression: the sink kept up to 512 MiB of loaded chunks for replay until
/// a commit, and grew each 48 MiB chunk by doubling, so `process` into
/// PostgreSQL peaked at 1.09 GB on a 618 MB backfill (631 MB on this test's
/// trail), against the 256 MB bound every sink keeps.
#[test]
fn a_backfill_into_postgres_stays_within_the_memory_bound() {
    let url = pg::fresh_db("trailmill_test_memory_bound");
    let tmp = tempfile::tempdir().unwrap();
    let trail = large_trail(tmp.path());
    let out = run_ok(&[
        "process",
        trail.to_str().unwrap(),
        "--no-state",
        "--sink",
        &format!("postgres:{url}"),
    ]);
    assert_eq!(sink_counts(&out.stderr, "postgres:"), (150_000, 0));
    let rows = pg::scalar(&url, "SELECT count(*) FROM events");
    assert_eq!(rows, "150000");
    assert_within_the_memory_bound("PostgreSQL");
}
