//! The PostgreSQL sink against the real test cluster (`TRAILMILL_PG_URL`,
//! started by `scripts/test`): connection loss mid-load, the schema version,
//! and values that jsonb and text columns reject.

#[path = "../../../tests/support/pg.rs"]
mod pg;

use std::time::Duration;

use trailmill_core::{DecodeOptions, Decoder};
use trailmill_pipeline::{Sink, SourceObject};
use trailmill_sinks::{PostgresOptions, PostgresSink};

/// A log of `n` events with IDs `prefix-0` … (every tenth repeats the one
/// before it, as CloudTrail's duplicate deliveries do).
fn log(prefix: &str, n: usize) -> String {
    let records: Vec<String> = (0..n)
        .map(|i| {
            let id = if i % 10 == 9 { i - 1 } else { i };
            format!(
                r#"{{"eventVersion":"1.08","eventID":"{prefix}-{id}","eventTime":"2024-01-01T00:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":true,"requestParameters":{{"bucketName":"b","n":2.0,"i":{i}}}}}"#,
                id / 60 % 60,
                id % 60
            )
        })
        .collect();
    format!(r#"{{"Records":[{}]}}"#, records.join(","))
}

fn load(sink: &mut PostgresSink, text: &str) {
    let object = SourceObject::new("test.json", "test.json");
    let opts = DecodeOptions {
        batch_size: 250,
        ..DecodeOptions::default()
    };
    Decoder::new(opts)
        .decode(text.as_bytes(), &mut |batch| {
            sink.write_batch(&object, batch).map_err(|e| e.into())
        })
        .unwrap();
}

/// Terminates the sink's backend from another connection, as a server
/// restart or a network failure would; returns how many were terminated.
fn kill_sink_backend(url: &str) -> u64 {
    let n = pg::scalar(
        url,
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'trailmill'
           AND pid <> pg_backend_pid()) AS k",
    );
    n.parse().unwrap()
}

fn rows(url: &str) -> u64 {
    pg::scalar(url, "SELECT count(*) FROM events")
        .parse()
        .unwrap()
}

fn options() -> PostgresOptions {
    let mut o = PostgresOptions::default();
    o.chunk_rows = 300;
    o.reconnect_delay = Duration::from_millis(50);
    o
}

#[test]
fn a_connection_loss_mid_load_loses_and_doubles_nothing() {
    let url = pg::fresh_db("trailmill_test_connection_loss");
    let mut sink = PostgresSink::with_options(&url, options()).unwrap();
    // 2,000 events, 1,800 unique, loaded into the open transaction.
    let connections = options().connections as u64;
    load(&mut sink, &log("a", 2000));
    sink.flush().unwrap();
    assert_eq!(rows(&url), 0, "nothing is visible before the commit");
    assert_eq!(kill_sink_backend(&url), connections);

    // The next load finds the connection gone: it reconnects and replays
    // the first part into a new transaction, then loads the second.
    load(&mut sink, &log("b", 1000));
    sink.flush().unwrap();
    assert_eq!(kill_sink_backend(&url), connections);
    // Killed again before COMMIT: the commit replays everything.
    load(&mut sink, &log("a", 500));
    sink.commit().unwrap();
    assert_eq!(rows(&url), 1800 + 900);

    // After the commit: a loss between transactions, then a re-run of the
    // first part and new events.
    assert_eq!(kill_sink_backend(&url), connections);
    load(&mut sink, &log("a", 2000));
    load(&mut sink, &log("c", 100));
    let stats = sink.finish().unwrap();
    assert_eq!(rows(&url), 1800 + 900 + 90);
    assert_eq!(stats.events_received, 2000 + 1000 + 500 + 2000 + 100);
    assert_eq!(stats.events_written, 1800 + 900 + 90);
    assert_eq!(
        stats.duplicates,
        stats.events_received - stats.events_written
    );
    let distinct = pg::scalar(
        &url,
        "SELECT count(DISTINCT (event->'requestParameters'->>'i')) FROM events WHERE event_id LIKE 'a-%'",
    );
    assert_eq!(distinct, "1800");
}

/// Regression: with several connections, two copies of an event loaded into
/// two open transactions made the second loader wait for the first one's
/// commit, which only a checkpoint gives, so `flush` hung. Rows now go to the
/// connection their key hashes to.
#[test]
fn copies_of_an_event_in_one_window_do_not_wait_on_each_other() {
    let url = pg::fresh_db("trailmill_test_copies_in_one_window");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let loader_url = url.clone();
    std::thread::spawn(move || {
        let mut sink = PostgresSink::with_options(&loader_url, options()).unwrap();
        // Chunks of 300 rows: every copy lands in a different chunk than
        // its original, and both are uncommitted at the flush.
        for _ in 0..3 {
            load(&mut sink, &log("a", 1000));
        }
        sink.flush().unwrap();
        let stats = sink.finish().unwrap();
        done_tx.send(stats).unwrap();
    });
    let stats = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the sink finished instead of waiting on itself");
    assert_eq!(rows(&url), 900);
    assert_eq!(stats.events_written, 900);
    assert_eq!(stats.duplicates, 3000 - 900);
}

/// A table made by schema version 1 (2 KB TOAST threshold, pglz) is
/// migrated on open: rows stay, and new rows up to a page stay inline.
#[test]
fn a_version_1_table_is_migrated() {
    let url = pg::fresh_db("trailmill_test_migrate_v1");
    let mut sink = PostgresSink::connect(&url).unwrap();
    load(&mut sink, &log("a", 10));
    sink.finish().unwrap();
    // Back to what version 1 left.
    pg::query(
        &url,
        "ALTER TABLE events RESET (toast_tuple_target);
         UPDATE trailmill_schema SET version = 1",
    );
    let mut sink = PostgresSink::connect(&url).unwrap();
    load(&mut sink, &log("b", 10));
    sink.finish().unwrap();
    assert_eq!(rows(&url), 18);
    assert_eq!(
        pg::scalar(&url, "SELECT version FROM trailmill_schema"),
        trailmill_sinks::postgres::SCHEMA_VERSION.to_string()
    );
    assert_eq!(
        pg::scalar(
            &url,
            "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'events'"
        ),
        "toast_tuple_target=8160"
    );
}

#[test]
fn an_uncommitted_window_is_not_stored() {
    let url = pg::fresh_db("trailmill_test_uncommitted");
    let mut sink = PostgresSink::with_options(&url, options()).unwrap();
    load(&mut sink, &log("a", 1000));
    sink.flush().unwrap();
    // Dropped without commit or finish, as when the process dies.
    drop(sink);
    assert_eq!(rows(&url), 0);
}

#[test]
fn the_schema_is_versioned_and_a_newer_one_is_refused() {
    let url = pg::fresh_db("trailmill_test_schema");
    PostgresSink::connect(&url).unwrap().finish().unwrap();
    assert_eq!(
        pg::query(&url, "SELECT name, version FROM trailmill_schema"),
        [[
            Some("events".to_owned()),
            Some(trailmill_sinks::postgres::SCHEMA_VERSION.to_string())
        ]]
    );
    // Opening again migrates nothing and keeps the rows.
    let mut sink = PostgresSink::connect(&url).unwrap();
    load(&mut sink, &log("a", 10));
    sink.finish().unwrap();
    let mut again = PostgresSink::connect(&url).unwrap();
    again.finish().unwrap();
    assert_eq!(rows(&url), 9);

    pg::query(&url, "UPDATE trailmill_schema SET version = 99");
    let err = PostgresSink::connect(&url)
        .err()
        .expect("a newer schema is refused");
    let text = err.to_string();
    assert!(
        text.contains("schema version 99") && text.contains("newer"),
        "{text}"
    );
}

#[test]
fn values_postgres_text_and_jsonb_reject_are_stored() {
    let url = pg::fresh_db("trailmill_test_awkward_values");
    let mut sink = PostgresSink::connect(&url).unwrap();
    // NUL in a typed column and in jsonb, a literal backslash-u, an escaped
    // surrogate pair, and a record without an eventID (delivered twice).
    let text = r#"{"Records":[
        {"eventID":"nul","eventName":"a\u0000b","eventTime":"2024-01-01T00:00:00Z"},
        {"eventID":"pair","eventName":"Pair","userAgent":"\ud83d\ude00 \\u0000"},
        {"eventName":"NoId","n":1E2},
        {"eventName":"NoId","n":1E2}
    ]}"#;
    load(&mut sink, text);
    let stats = sink.finish().unwrap();
    assert_eq!((stats.events_written, stats.duplicates), (3, 1));
    let got = pg::query(
        &url,
        "SELECT event_id, event_name, user_agent, event->>'userAgent', raw FROM events ORDER BY event_id COLLATE \"C\"",
    );
    let nul = got.iter().find(|r| r[0].as_deref() == Some("nul")).unwrap();
    assert_eq!(nul[1].as_deref(), Some("a\u{FFFD}b"));
    assert!(
        nul[4].as_deref().unwrap().contains(r#""a\u0000b""#),
        "raw keeps the escape"
    );
    let pair = got
        .iter()
        .find(|r| r[0].as_deref() == Some("pair"))
        .unwrap();
    assert_eq!(pair[3].as_deref(), Some("\u{1F600} \\u0000"));
    let no_id = got
        .iter()
        .find(|r| r[0].as_deref().unwrap().starts_with("sha256:"))
        .unwrap();
    assert_eq!(no_id[4].as_deref(), Some(r#"{"eventName":"NoId","n":1E2}"#));
}

#[test]
fn tls_is_used_and_verified() {
    let root = std::env::var("TRAILMILL_PG_ROOTCERT").expect(
        "TRAILMILL_PG_ROOTCERT is not set: run scripts/test, which starts PostgreSQL with TLS",
    );
    let plain = pg::fresh_db("trailmill_test_tls");
    let url = format!("{plain}?sslmode=verify-full&sslrootcert={root}");
    let mut sink = PostgresSink::connect(&url).unwrap();
    load(&mut sink, &log("t", 20));
    sink.flush().unwrap();
    let encrypted = pg::scalar(
        &plain,
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
         WHERE application_name = 'trailmill' AND datname = current_database() AND ssl",
    );
    assert_eq!(
        encrypted,
        PostgresOptions::default().connections.to_string(),
        "every connection of the sink uses TLS"
    );
    sink.finish().unwrap();
    assert_eq!(rows(&plain), 18);

    // The self-signed certificate is not among the system's roots: without
    // sslrootcert, verification fails and the sink does not open.
    let err = PostgresSink::connect(&format!("{plain}?sslmode=require"))
        .err()
        .expect("an unverifiable server certificate is refused");
    assert!(err.to_string().contains("cannot open"), "{err}");
}
