use super::*;
use trailmill_pipeline::{FileError, FileErrorKind};

fn binding() -> Binding {
    Binding {
        sources: vec!["/trail".into()],
        sinks: vec!["sqlite:/out/e.db".into()],
        event_filter: "all".into(),
        legacy: None,
    }
}

fn object(name: &str, version: &str, size: u64) -> SourceObject {
    SourceObject {
        name: format!("/trail/{name}"),
        key: name.into(),
        size: Some(size),
        version: Some(version.into()),
        tag: 0,
    }
}

fn ok(object: SourceObject, events: u64) -> FileOutcome {
    FileOutcome {
        object,
        bytes_read: 0,
        bytes_uncompressed: 0,
        events_in: events,
        events_out: events,
        records_without_core_fields: 0,
        warnings: Vec::new(),
        result: Ok(()),
    }
}

fn failed(object: SourceObject, reason: &str) -> FileOutcome {
    let name = object.name.clone();
    FileOutcome {
        result: Err(FileError {
            name,
            kind: FileErrorKind::Read(reason.into()),
        }),
        ..ok(object, 0)
    }
}

#[test]
fn done_objects_are_skipped_until_they_change_and_failed_ones_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.state");
    let a = object("a", "mtime:1.0", 10);
    let b = object("b", "mtime:1.0", 20);
    let c = object("c", "mtime:1.0", 30);
    {
        let store = StateStore::open(&path, &binding(), false).unwrap();
        assert!(!store.is_resume());
        let mut rec = store.recorder().unwrap();
        rec.checkpoint(&[ok(a.clone(), 5), failed(b.clone(), "truncated gzip")]);
        rec.checkpoint(&[ok(c.clone(), 7)]);
        let run = store.finish_run(false).unwrap();
        // A run that marked nothing done leaves nothing to resume.
        let nothing = dir.path().join("nothing.state");
        let first = StateStore::open(&nothing, &binding(), false).unwrap();
        first
            .recorder()
            .unwrap()
            .checkpoint(&[failed(object("x", "v", 1), "bad")]);
        first.finish_run(false).unwrap();
        assert!(
            !StateStore::open(&nothing, &binding(), false)
                .unwrap()
                .is_resume()
        );
        assert_eq!(
            (
                run.checkpoints,
                run.objects_done,
                run.events_done,
                run.objects_failed
            ),
            (2, 2, 12, 1)
        );
    }
    let store = StateStore::open(&path, &binding(), false).unwrap();
    assert!(store.is_resume());
    assert_eq!(
        store.prior(),
        &Prior {
            runs: 1,
            objects_done: 2,
            objects_failed: 1,
            events_done: 12,
            last_run_interrupted: false,
        }
    );
    let b_rec = store.object(&b.name).unwrap().unwrap();
    assert!(!b_rec.done);
    assert_eq!(b_rec.error.as_deref(), Some("truncated gzip"));
    let c_rec = store.object(&c.name).unwrap().unwrap();
    assert_eq!(
        (c_rec.done, c_rec.events_out, c_rec.checkpoint),
        (true, 7, 2)
    );

    let filter = store.skip_done().unwrap();
    assert!(!filter.accept(&a), "done with the same version and size");
    assert!(filter.accept(&b), "failed: retried");
    assert!(
        filter.accept(&object("a", "mtime:2.0", 10)),
        "a new version is redone"
    );
    assert!(
        filter.accept(&object("c", "mtime:1.0", 31)),
        "a new size is redone"
    );
    assert!(filter.accept(&object("d", "mtime:1.0", 1)), "new object");
    let mut rec = store.recorder().unwrap();
    rec.checkpoint(&[ok(b.clone(), 3)]);
    let run = store.finish_run(false).unwrap();
    assert_eq!(
        (
            run.skipped_done,
            run.retried_failed,
            run.redone_changed,
            run.objects_done
        ),
        (1, 1, 2, 1)
    );
    assert_eq!(run.total_events_done, 5 + 7 + 3);
    let store = StateStore::open(&path, &binding(), false).unwrap();
    let b_rec = store.object(&b.name).unwrap().unwrap();
    assert_eq!((b_rec.done, b_rec.attempts, b_rec.error), (true, 2, None));
}

#[test]
fn a_run_that_never_finished_is_reported_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.state");
    let store = StateStore::open(&path, &binding(), false).unwrap();
    store
        .recorder()
        .unwrap()
        .checkpoint(&[ok(object("a", "v", 1), 1)]);
    drop(store); // as a crash would: no finish_run
    let store = StateStore::open(&path, &binding(), false).unwrap();
    assert!(store.prior().last_run_interrupted);
    assert!(store.is_resume());
    assert_eq!(store.prior().objects_done, 1);
    store.finish_run(false).unwrap();
    let store = StateStore::open(&path, &binding(), false).unwrap();
    assert!(!store.prior().last_run_interrupted);
}

#[test]
fn a_state_bound_to_another_job_is_refused_unless_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.state");
    let store = StateStore::open(&path, &binding(), false).unwrap();
    store
        .recorder()
        .unwrap()
        .checkpoint(&[ok(object("a", "v", 1), 1)]);
    store.finish_run(false).unwrap();

    let other_sink = Binding {
        sinks: vec!["sqlite:/out/other.db".into()],
        ..binding()
    };
    let e = StateStore::open(&path, &other_sink, false)
        .err()
        .expect("refused");
    let text = e.to_string();
    assert!(
        text.contains("s.state")
            && text.contains("sinks [sqlite:/out/e.db], not [sqlite:/out/other.db]"),
        "{text}"
    );
    let other_filter = Binding {
        event_filter: "errors only".into(),
        ..binding()
    };
    assert!(matches!(
        StateStore::open(&path, &other_filter, false),
        Err(StateError::Bound {
            what: "event filter",
            ..
        })
    ));

    let store = StateStore::open(&path, &other_sink, true).unwrap();
    assert!(!store.is_resume());
    assert_eq!(store.prior(), &Prior::default());
    assert_eq!(store.object("/trail/a").unwrap(), None);
    store.finish_run(false).unwrap();
    // Now bound to the new sink, and no longer to the old one.
    StateStore::open(&path, &other_sink, false).unwrap();
    assert!(StateStore::open(&path, &binding(), false).is_err());
}

/// Regression (issue 11, item 4): when the CLI changed how it spells a job
/// (canonical filter text, `s3://` URLs no longer made into paths), states
/// bound under the old spelling would have been refused as "another job".
/// A binding's `legacy` spelling is accepted part by part and rebound, so
/// the old spelling is refused afterwards, and a job that differs in fact is
/// still refused.
#[test]
fn a_state_bound_under_the_legacy_spelling_is_accepted_and_rebound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.state");
    let old = Binding {
        sources: vec!["/cwd/s3:/bucket/AWSLogs".into()],
        event_filter: "EventFilter { errors_only: false }".into(),
        ..binding()
    };
    let store = StateStore::open(&path, &old, false).unwrap();
    store
        .recorder()
        .unwrap()
        .checkpoint(&[ok(object("a", "v", 1), 1)]);
    store.finish_run(false).unwrap();

    let new = Binding {
        sources: vec!["s3://bucket/AWSLogs/".into()],
        event_filter: "trailmill-event-filter/1".into(),
        legacy: Some(Box::new(old.clone())),
        ..binding()
    };
    let other_filter_same_legacy = Binding {
        event_filter: "trailmill-event-filter/1\nerrors-only true".into(),
        legacy: Some(Box::new(Binding {
            event_filter: "EventFilter { errors_only: true }".into(),
            ..old.clone()
        })),
        ..new.clone()
    };
    assert!(matches!(
        StateStore::open(&path, &other_filter_same_legacy, false),
        Err(StateError::Bound {
            what: "event filter",
            ..
        })
    ));
    let store = StateStore::open(&path, &new, false).unwrap();
    assert!(store.is_resume(), "the objects done are kept");
    store.finish_run(false).unwrap();
    let rebound = Binding {
        legacy: None,
        ..new.clone()
    };
    StateStore::open(&path, &rebound, false)
        .unwrap()
        .finish_run(false)
        .unwrap();
    assert!(StateStore::open(&path, &old, false).is_err());
}

#[test]
fn other_databases_and_newer_schemas_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.db");
    Connection::open(&events)
        .unwrap()
        .execute_batch("CREATE TABLE events (event_id TEXT)")
        .unwrap();
    let e = StateStore::open(&events, &binding(), false).err().unwrap();
    assert!(matches!(e, StateError::NotAState { .. }), "{e}");
    assert!(e.to_string().contains("events.db"), "{e}");
    // Refused even with restart: it is not ours to reset.
    assert!(StateStore::open(&events, &binding(), true).is_err());

    let newer = dir.path().join("newer.state");
    drop(StateStore::open(&newer, &binding(), false).unwrap());
    Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let e = StateStore::open(&newer, &binding(), false).err().unwrap();
    assert!(
        matches!(e, StateError::NewerSchema { found: 99, .. }),
        "{e}"
    );

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database at all, just some text here").unwrap();
    let e = StateStore::open(&text, &binding(), false).err().unwrap();
    assert!(e.to_string().contains("notes.txt"), "{e}");
}

#[test]
fn a_failed_checkpoint_fails_the_run_and_marks_nothing_done() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.state");
    let store = StateStore::open(&path, &binding(), false).unwrap();
    let mut rec = store.recorder().unwrap();
    // Another connection holds the write lock, so the checkpoint cannot commit.
    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    rec.conn
        .busy_timeout(std::time::Duration::from_millis(10))
        .unwrap();
    rec.checkpoint(&[ok(object("a", "v", 1), 1)]);
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(store.object("/trail/a").unwrap(), None);
    let e = store.finish_run(false).expect_err("the run fails");
    assert!(e.to_string().contains("s.state"), "{e}");
}

#[test]
fn two_runs_never_share_a_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.state");
    let first = StateStore::open(&path, &binding(), false).unwrap();
    let e = StateStore::open(&path, &binding(), false)
        .err()
        .expect("busy");
    assert!(matches!(e, StateError::Busy { .. }), "{e}");
    assert!(e.to_string().contains("s.state"), "{e}");
    first.finish_run(false).unwrap();
    StateStore::open(&path, &binding(), false).unwrap();
}
