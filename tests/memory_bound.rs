//! A run's stores share the memory bound (`trailmill_sinks::memory_share`),
//! so fanning out to several of them stays under 256 MB as one does. In a
//! file of its own: the peak is the largest child's so far, which another
//! test's run in the same binary would blur.

mod support;

#[path = "support/pg.rs"]
mod pg;

use support::{assert_within_the_memory_bound, large_trail, run_ok, sink_counts};

/// Regression: each store kept the buffers it keeps alone, so SQLite,
/// Parquet, Iceberg and PostgreSQL at once peaked at 398 MB on this test's
/// trail (446 MB with JSON Lines too on a 773 MB corpus).
#[test]
fn four_stores_at_once_stay_within_the_memory_bound() {
    let url = pg::fresh_db("trailmill_test_memory_four_stores");
    let tmp = tempfile::tempdir().unwrap();
    let trail = large_trail(tmp.path());
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let path = |name: &str| out_dir.join(name).to_str().unwrap().to_owned();
    let out = run_ok(&[
        "process",
        trail.to_str().unwrap(),
        "--no-state",
        "--sink",
        &format!("sqlite:{}", path("events.db")),
        "--sink",
        &format!("parquet:{}", path("lake")),
        "--sink",
        "iceberg:memory.events",
        "--iceberg-catalog",
        &format!("sqlite:{}", path("catalog.db")),
        "--iceberg-warehouse",
        &path("warehouse"),
        "--sink",
        &format!("postgres:{url}"),
    ]);
    for store in ["sqlite:", "parquet:", "iceberg:", "postgres:"] {
        assert_eq!(
            sink_counts(&out.stderr, store).0,
            150_000,
            "{store} holds every event"
        );
    }
    assert_within_the_memory_bound("SQLite, Parquet, Iceberg and PostgreSQL at once");
}
