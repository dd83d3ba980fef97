//! The library API carries CPL's concepts: source filter, event filter,
//! batched delivery (`maxEventsPerEmit`), progress reporter and error handler.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use trailmill_core::{Event, EventFilter};
use trailmill_pipeline::{
    CheckpointPolicy, FileError, FileOutcome, LocalSource, Pipeline, ProgressReporter, Sink,
    SinkError, SinkStats, Source, SourceObject,
};

fn fixtures(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// Records batch sizes and event IDs; the test reads them afterwards.
#[derive(Clone, Default)]
struct Recorder {
    batches: Arc<Mutex<Vec<usize>>>,
    ids: Arc<Mutex<Vec<String>>>,
    files_done: Arc<Mutex<Vec<String>>>,
}

impl Sink for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }
    fn write_batch(&mut self, _file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        self.batches.lock().unwrap().push(events.len());
        self.ids.lock().unwrap().extend(
            events
                .iter()
                .map(|e| e.event_id.unwrap_or_default().to_owned()),
        );
        Ok(())
    }
    fn file_done(&mut self, file: &SourceObject) -> Result<(), SinkError> {
        self.files_done.lock().unwrap().push(file.key.clone());
        Ok(())
    }
    fn commit(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        let n = self.ids.lock().unwrap().len() as u64;
        Ok(SinkStats {
            events_received: n,
            events_written: n,
            ..SinkStats::default()
        })
    }
}

#[derive(Default)]
struct Progress {
    listed: u64,
    finished: Vec<(String, bool, u64)>,
}

impl ProgressReporter for Progress {
    fn listed(&mut self, total: u64) {
        self.listed = total;
    }
    fn finished(&mut self, o: &FileOutcome) {
        self.finished
            .push((o.object.key.clone(), o.result.is_ok(), o.events_out));
    }
}

#[test]
fn batches_never_exceed_the_batch_size_and_every_file_is_reported() {
    let sink = Recorder::default();
    let progress = Arc::new(Mutex::new(Progress::default()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let errors_seen = errors.clone();
    let summary = Pipeline::builder()
        .threads(2)
        .batch_size(7)
        .sink(sink.clone())
        .progress(progress.clone())
        .error_handler(move |e: &FileError| errors_seen.lock().unwrap().push(e.to_string()))
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert!(summary.is_success());
    assert_eq!(
        (summary.files_ok, summary.events_in, summary.events_out),
        (16, 400, 400)
    );
    let batches = sink.batches.lock().unwrap();
    assert!(batches.iter().all(|&n| (1..=7).contains(&n)), "{batches:?}");
    assert_eq!(batches.iter().sum::<usize>(), 400);
    assert_eq!(sink.files_done.lock().unwrap().len(), 16);
    let p = progress.lock().unwrap();
    assert_eq!(p.listed, 16);
    assert_eq!(p.finished.len(), 16);
    assert!(errors.lock().unwrap().is_empty());
    assert_eq!(summary.listing.skipped_digests, 8);
    assert_eq!(summary.sinks[0].1.events_written, 400);
}

#[test]
fn source_filter_event_filter_and_predicate_compose() {
    let all = Recorder::default();
    Pipeline::builder()
        .sink(all.clone())
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    let sink = Recorder::default();
    let summary = Pipeline::builder()
        .source_filter(|o: &SourceObject| o.key.contains("/us-east-1/"))
        .event_filter(EventFilter {
            read_only: Some(true),
            ..EventFilter::default()
        })
        .event_predicate(|e: &Event<'_>| e.event_source != Some("s3.amazonaws.com"))
        .sink(sink.clone())
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert_eq!(
        summary.listing.skipped_by_filter, 8,
        "half the files are in another region"
    );
    assert_eq!(summary.files_ok, 8);
    assert!(summary.events_out < summary.events_in);
    let kept = sink.ids.lock().unwrap().len() as u64;
    assert_eq!(kept, summary.events_out);
    assert!(kept > 0 && kept < all.ids.lock().unwrap().len() as u64);
}

#[test]
fn bad_files_go_to_the_error_handler_and_the_run_goes_on() {
    let sink = Recorder::default();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = errors.clone();
    let summary = Pipeline::builder()
        .sink(sink.clone())
        .error_handler(move |e: &FileError| seen.lock().unwrap().push(e.name.clone()))
        .build()
        .run(&LocalSource::new([fixtures("bad")]));
    assert!(!summary.is_success());
    assert_eq!((summary.files_ok, summary.files_failed), (1, 6));
    assert_eq!(errors.lock().unwrap().len(), 6);
    assert_eq!(sink.ids.lock().unwrap().len(), 3);
}

/// A sink that fails on its second batch fails that file, names the sink, and
/// the other files still reach it.
#[test]
fn a_failing_sink_fails_the_file_it_was_writing() {
    struct Flaky {
        calls: usize,
    }
    impl Sink for Flaky {
        fn name(&self) -> String {
            "flaky".into()
        }
        fn write_batch(&mut self, _: &SourceObject, _: &[Event<'_>]) -> Result<(), SinkError> {
            self.calls += 1;
            if self.calls == 2 {
                Err(SinkError::new("disk full"))
            } else {
                Ok(())
            }
        }
        fn commit(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
        fn finish(&mut self) -> Result<SinkStats, SinkError> {
            Ok(SinkStats::default())
        }
    }
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = errors.clone();
    let summary = Pipeline::builder()
        .threads(1)
        .sink(Flaky { calls: 0 })
        .error_handler(move |e: &FileError| seen.lock().unwrap().push(e.to_string()))
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert_eq!((summary.files_ok, summary.files_failed), (15, 1));
    let errors = errors.lock().unwrap();
    assert!(errors[0].contains("sink flaky: disk full"), "{errors:?}");
}

/// Keeps which files' events are committed, as a store would.
#[derive(Clone, Default)]
struct Committing {
    /// Files with events written since the last commit.
    uncommitted: Arc<Mutex<HashSet<String>>>,
    /// Files whose events were all committed (once `file_done` came).
    committed: Arc<Mutex<HashSet<String>>>,
    done: Arc<Mutex<HashSet<String>>>,
    fail_commits: bool,
}

impl Sink for Committing {
    fn name(&self) -> String {
        "committing".into()
    }
    fn write_batch(&mut self, file: &SourceObject, _: &[Event<'_>]) -> Result<(), SinkError> {
        self.uncommitted.lock().unwrap().insert(file.key.clone());
        Ok(())
    }
    fn file_done(&mut self, file: &SourceObject) -> Result<(), SinkError> {
        self.done.lock().unwrap().insert(file.key.clone());
        Ok(())
    }
    fn commit(&mut self) -> Result<(), SinkError> {
        if self.fail_commits {
            return Err(SinkError::new("disk full"));
        }
        let done = self.done.lock().unwrap();
        let mut uncommitted = self.uncommitted.lock().unwrap();
        let mut committed = self.committed.lock().unwrap();
        for key in done.iter() {
            uncommitted.remove(key);
            committed.insert(key.clone());
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        self.commit()?;
        Ok(SinkStats::default())
    }
}

/// Every checkpoint reports only files whose events the sink had committed,
/// and over the run each file is reported exactly once.
#[test]
fn checkpoints_report_a_file_only_after_its_events_are_committed() {
    let sink = Committing::default();
    let committed = sink.committed.clone();
    let reported = Arc::new(Mutex::new(HashMap::<String, bool>::new()));
    let seen = reported.clone();
    let checkpoints = Arc::new(Mutex::new(0));
    let counted = checkpoints.clone();
    let summary = Pipeline::builder()
        .threads(2)
        .sink(sink)
        .checkpoint_policy(CheckpointPolicy {
            max_files: 3,
            interval: Duration::from_secs(3600),
            when_idle: false,
        })
        .on_checkpoint(move |files: &[FileOutcome]| {
            *counted.lock().unwrap() += 1;
            let committed = committed.lock().unwrap();
            for f in files {
                assert!(f.result.is_ok());
                assert!(
                    committed.contains(&f.object.key),
                    "{} reported before its commit",
                    f.object.key
                );
                let again = seen.lock().unwrap().insert(f.object.key.clone(), true);
                assert!(again.is_none(), "{} reported twice", f.object.key);
            }
        })
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert!(summary.is_success());
    assert_eq!(reported.lock().unwrap().len(), 16);
    let taken = *checkpoints.lock().unwrap();
    assert!(
        taken >= 6,
        "16 files by threes, plus the final one: {taken}"
    );
    assert_eq!(summary.checkpoints, taken);
}

/// A commit that fails fails every file it covered: none is reported durable.
#[test]
fn a_failed_commit_fails_the_files_it_covered() {
    let sink = Committing {
        fail_commits: true,
        ..Committing::default()
    };
    let failed = Arc::new(Mutex::new(0));
    let seen = failed.clone();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let errors_seen = errors.clone();
    let summary = Pipeline::builder()
        .sink(sink)
        .checkpoint_policy(CheckpointPolicy {
            max_files: 5,
            ..CheckpointPolicy::default()
        })
        .error_handler(move |e: &FileError| errors_seen.lock().unwrap().push(e.to_string()))
        .on_checkpoint(move |files: &[FileOutcome]| {
            *seen.lock().unwrap() += files.iter().filter(|f| f.result.is_err()).count();
            assert!(files.iter().all(|f| f.result.is_err()));
        })
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert!(!summary.is_success());
    assert_eq!((summary.files_ok, summary.files_failed), (0, 16));
    assert_eq!(*failed.lock().unwrap(), 16);
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 16);
    assert!(
        errors[0].contains("sink committing: commit failed: disk full"),
        "{}",
        errors[0]
    );
}

/// Regression: a checkpoint's commit could fall between two batches of one
/// file (batches of files being delivered by other workers interleave), so
/// a sink that records whole files at a commit (the Iceberg ledger) held
/// part of a file. Every commit must now find no file half-delivered, and
/// every file must get `file_done` (none failed).
#[test]
fn a_checkpoint_never_falls_between_two_batches_of_one_file() {
    #[derive(Default)]
    struct Whole {
        delivering: HashSet<String>,
        done: usize,
        commits: Arc<Mutex<Vec<usize>>>,
    }
    impl Sink for Whole {
        fn name(&self) -> String {
            "whole".into()
        }
        fn write_batch(&mut self, file: &SourceObject, _: &[Event<'_>]) -> Result<(), SinkError> {
            self.delivering.insert(file.key.clone());
            Ok(())
        }
        fn file_done(&mut self, file: &SourceObject) -> Result<(), SinkError> {
            self.delivering.remove(&file.key);
            self.done += 1;
            Ok(())
        }
        fn commit(&mut self) -> Result<(), SinkError> {
            // How many files were half-delivered at this commit.
            self.commits.lock().unwrap().push(self.delivering.len());
            Ok(())
        }
        fn finish(&mut self) -> Result<SinkStats, SinkError> {
            self.commit()?;
            Ok(SinkStats {
                events_received: self.done as u64,
                ..SinkStats::default()
            })
        }
    }
    let commits = Arc::new(Mutex::new(Vec::new()));
    let summary = Pipeline::builder()
        .threads(4)
        .batch_size(1)
        .sink(Whole {
            commits: commits.clone(),
            ..Whole::default()
        })
        .checkpoint_policy(CheckpointPolicy {
            max_files: 1,
            ..CheckpointPolicy::default()
        })
        .on_checkpoint(|_: &[FileOutcome]| {})
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert!(summary.is_success());
    let commits = commits.lock().unwrap();
    // A checkpoint after each of the 16 files, and the final one.
    assert!(commits.len() >= 17, "{} commits", commits.len());
    assert!(
        commits.iter().all(|&half| half == 0),
        "files half-delivered at each commit: {commits:?}"
    );
    assert_eq!(summary.sinks[0].1.events_received, 16);
}

/// Regression: without checkpoints (no state), a sink whose final commit
/// failed left the summary at "16 files ok, 0 failed" although none of their
/// events was stored.
#[test]
fn without_checkpoints_a_failed_final_commit_fails_every_file() {
    let summary = Pipeline::builder()
        .sink(Committing {
            fail_commits: true,
            ..Committing::default()
        })
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert!(!summary.is_success());
    assert_eq!((summary.files_ok, summary.files_failed), (0, 16));
    assert_eq!(summary.sink_errors.len(), 1);
    assert!(
        summary.sink_errors[0].1.to_string().contains("disk full"),
        "{:?}",
        summary.sink_errors
    );
}

/// Raising the stop flag finishes the objects in flight, reports them at the
/// final checkpoint, and leaves the rest unprocessed and unreported.
#[test]
fn the_stop_flag_ends_the_run_after_the_objects_in_flight() {
    let stop = Arc::new(AtomicBool::new(false));
    /// Raises the stop flag when the third object finishes.
    struct StopAfterThree(Arc<AtomicBool>, u32);
    impl ProgressReporter for StopAfterThree {
        fn finished(&mut self, _: &FileOutcome) {
            self.1 += 1;
            if self.1 == 3 {
                self.0.store(true, Ordering::SeqCst);
            }
        }
    }
    let raise = StopAfterThree(stop.clone(), 0);
    let reported = Arc::new(Mutex::new(0usize));
    let seen = reported.clone();
    let summary = Pipeline::builder()
        .threads(1)
        .sink(Committing::default())
        .stop_flag(stop)
        .progress(raise)
        .on_checkpoint(move |files: &[FileOutcome]| *seen.lock().unwrap() += files.len())
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert!(summary.interrupted);
    assert_eq!(summary.files_ok, 3);
    assert_eq!(*reported.lock().unwrap(), 3);
}

/// A source that records which objects the pipeline announces and reads.
struct Announced {
    inner: LocalSource,
    announced: Mutex<Vec<String>>,
    read: Mutex<Vec<String>>,
}

impl Source for Announced {
    fn list(
        &self,
        selection: &trailmill_core::Selection,
        emit: &mut dyn FnMut(SourceObject) -> std::ops::ControlFlow<()>,
    ) -> trailmill_pipeline::ListStats {
        self.inner.list(selection, emit)
    }
    fn read(
        &self,
        object: &SourceObject,
    ) -> Result<trailmill_pipeline::ObjectData, trailmill_pipeline::SourceError> {
        let announced = self.announced.lock().unwrap().contains(&object.key);
        assert!(announced, "{} read before it was announced", object.key);
        self.read.lock().unwrap().push(object.key.clone());
        self.inner.read(object)
    }
    fn will_read(&self, object: &SourceObject) {
        self.announced.lock().unwrap().push(object.key.clone());
    }
}

#[test]
fn objects_are_announced_in_listing_order_after_the_source_filter() {
    let source = Announced {
        inner: LocalSource::new([fixtures("trail")]),
        announced: Mutex::new(Vec::new()),
        read: Mutex::new(Vec::new()),
    };
    let mut listed = Vec::new();
    source.inner.list(&Default::default(), &mut |o| {
        listed.push(o.key);
        std::ops::ControlFlow::Continue(())
    });
    let summary = Pipeline::builder()
        .threads(2)
        .source_filter(|o: &SourceObject| o.key.contains("T00") || o.key.contains("T02"))
        .build()
        .run(&source);
    assert!(summary.is_success());
    let kept: Vec<String> = listed
        .into_iter()
        .filter(|k| k.contains("T00") || k.contains("T02"))
        .collect();
    assert!(!kept.is_empty() && kept.len() < 16);
    assert_eq!(
        *source.announced.lock().unwrap(),
        kept,
        "announced in order, filtered"
    );
    let mut read = source.read.lock().unwrap().clone();
    read.sort();
    let mut sorted = kept.clone();
    sorted.sort();
    assert_eq!(read, sorted, "every announced object is read once");
}

/// The key of one of the trail fixture's sixteen log files, the one the
/// panicking plug-ins below choose.
fn chosen_key() -> String {
    let mut keys = Vec::new();
    LocalSource::new([fixtures("trail")]).list(&Default::default(), &mut |o| {
        keys.push(o.key);
        std::ops::ControlFlow::Continue(())
    });
    keys.sort();
    keys.swap_remove(5)
}

/// Regression (issue 11, item 1): a panic while one object was being decoded
/// ended the whole run. A sink that panics in `write_batch` for one object now
/// fails that object with "internal error" and the panic's message, under the
/// object's name, and every other object is still processed, on the same
/// worker thread.
#[test]
fn a_panic_in_a_sink_fails_only_that_object_and_the_run_goes_on() {
    struct Panicky {
        key: String,
        inner: Recorder,
    }
    impl Sink for Panicky {
        fn name(&self) -> String {
            "panicky".into()
        }
        fn write_batch(
            &mut self,
            file: &SourceObject,
            events: &[Event<'_>],
        ) -> Result<(), SinkError> {
            if file.key == self.key {
                panic!("sink bug on {}", file.key);
            }
            self.inner.write_batch(file, events)
        }
        fn file_done(&mut self, file: &SourceObject) -> Result<(), SinkError> {
            self.inner.file_done(file)
        }
        fn commit(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
        fn finish(&mut self) -> Result<SinkStats, SinkError> {
            self.inner.finish()
        }
    }
    let key = chosen_key();
    let recorder = Recorder::default();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = errors.clone();
    let summary = Pipeline::builder()
        .threads(1)
        .sink(Panicky {
            key: key.clone(),
            inner: recorder.clone(),
        })
        .error_handler(move |e: &FileError| seen.lock().unwrap().push(e.to_string()))
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert!(!summary.is_success());
    assert_eq!((summary.files_ok, summary.files_failed), (15, 1));
    assert_eq!(recorder.files_done.lock().unwrap().len(), 15);
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1);
    let name = fixtures("trail").join(&key).display().to_string();
    assert!(
        errors[0].starts_with(&name)
            && errors[0].contains("internal error")
            && errors[0].contains(&format!("sink bug on {key}")),
        "{errors:?}"
    );
}

/// Regression (issue 11, item 1): a panic in the per-event predicate, which
/// runs inside the decoder's callback, fails only its object; with several
/// workers the others still finish.
#[test]
fn a_panic_in_an_event_predicate_fails_only_that_object() {
    let key = chosen_key();
    // One event ID of the chosen file, found by reading that file alone.
    let probe = Recorder::default();
    let chosen = key.clone();
    Pipeline::builder()
        .source_filter(move |o: &SourceObject| o.key == chosen)
        .sink(probe.clone())
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    let id = probe.ids.lock().unwrap()[0].clone();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = errors.clone();
    let summary = Pipeline::builder()
        .threads(2)
        .event_predicate(move |e: &Event<'_>| {
            assert!(e.event_id != Some(id.as_str()), "predicate bug");
            true
        })
        .error_handler(move |e: &FileError| seen.lock().unwrap().push(e.to_string()))
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert_eq!((summary.files_ok, summary.files_failed), (15, 1));
    let errors = errors.lock().unwrap();
    let name = fixtures("trail").join(&key).display().to_string();
    assert!(
        errors[0].starts_with(&name)
            && errors[0].contains("internal error: panicked: predicate bug"),
        "{errors:?}"
    );
}

/// A source over the trail fixture whose listing panics after `after` objects,
/// or, when `after` is `None`, lists everything but reports a zero count.
struct BrokenLister {
    inner: LocalSource,
    after: Option<usize>,
}

impl Source for BrokenLister {
    fn list(
        &self,
        selection: &trailmill_core::Selection,
        emit: &mut dyn FnMut(SourceObject) -> std::ops::ControlFlow<()>,
    ) -> trailmill_pipeline::ListStats {
        let mut n = 0;
        let stats = self.inner.list(selection, &mut |o| {
            if Some(n) == self.after {
                panic!("lister bug");
            }
            n += 1;
            emit(o)
        });
        trailmill_pipeline::ListStats { listed: 0, ..stats }
    }
    fn read(
        &self,
        object: &SourceObject,
    ) -> Result<trailmill_pipeline::ObjectData, trailmill_pipeline::SourceError> {
        self.inner.read(object)
    }
}

/// Regression (issue 11, item 2): a lister that panicked was turned into an
/// empty listing, so a run that read only part of its source reported
/// success. It is now a listing error, counted as failed, that says the
/// listing panicked.
#[test]
fn a_panicking_lister_fails_the_run_instead_of_looking_like_an_empty_listing() {
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = errors.clone();
    let summary = Pipeline::builder()
        .threads(1)
        .error_handler(move |e: &FileError| seen.lock().unwrap().push(e.to_string()))
        .build()
        .run(&BrokenLister {
            inner: LocalSource::new([fixtures("trail")]),
            after: Some(4),
        });
    assert!(!summary.is_success());
    assert_eq!((summary.files_ok, summary.files_failed), (4, 1));
    assert_eq!(summary.listing.listed, 4);
    assert_eq!(summary.listing.errors.len(), 1);
    let errors = errors.lock().unwrap();
    assert!(
        errors[0].contains("internal error: the listing panicked (lister bug)"),
        "{errors:?}"
    );
}

/// Regression (issue 11, item 2): `stats.listed -= filtered_out` underflowed
/// (a panic in debug builds, a huge count in release) with a custom source
/// that does not count what it lists. The pipeline now counts what it queued.
#[test]
fn a_source_filter_over_a_source_that_counts_nothing_does_not_underflow() {
    let summary = Pipeline::builder()
        .source_filter(|o: &SourceObject| o.key.contains("/us-east-1/"))
        .build()
        .run(&BrokenLister {
            inner: LocalSource::new([fixtures("trail")]),
            after: None,
        });
    assert!(summary.is_success());
    assert_eq!(summary.files_ok, 8);
    assert_eq!(
        (summary.listing.listed, summary.listing.skipped_by_filter),
        (8, 8)
    );
}

/// A sink made per worker: every worker writes to an instance of its own,
/// every instance is committed at each checkpoint (so the checkpoint rule
/// still holds), and the summary adds the instances' counts under one name.
#[test]
fn a_sink_per_worker_is_committed_at_every_checkpoint_and_summed() {
    let shared = Committing::default();
    let committed = shared.committed.clone();
    let instances = Arc::new(Mutex::new(Vec::<Recorder>::new()));
    let made = instances.clone();
    let reported = Arc::new(Mutex::new(0usize));
    let seen = reported.clone();
    let summary = Pipeline::builder()
        .threads(3)
        .batch_size(7)
        .sink_per_worker(move || {
            let recorder = Recorder::default();
            made.lock().unwrap().push(recorder.clone());
            Box::new(recorder)
        })
        .sink_per_worker(move || Box::new(shared.clone()))
        .checkpoint_policy(CheckpointPolicy {
            max_files: 2,
            interval: Duration::from_secs(3600),
            when_idle: false,
        })
        .on_checkpoint(move |files: &[FileOutcome]| {
            let committed = committed.lock().unwrap();
            for f in files {
                assert!(
                    committed.contains(&f.object.key),
                    "{} reported before every instance committed",
                    f.object.key
                );
            }
            *seen.lock().unwrap() += files.len();
        })
        .build()
        .run(&LocalSource::new([fixtures("trail")]));
    assert!(summary.is_success(), "{summary:?}");
    assert_eq!(*reported.lock().unwrap(), 16);
    let instances = instances.lock().unwrap();
    assert_eq!(instances.len(), 3, "one instance per worker");
    let per_instance: Vec<usize> = instances
        .iter()
        .map(|r| r.ids.lock().unwrap().len())
        .collect();
    assert_eq!(per_instance.iter().sum::<usize>(), 400, "{per_instance:?}");
    let mut ids: Vec<String> = instances
        .iter()
        .flat_map(|r| r.ids.lock().unwrap().clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 400, "each event reached exactly one instance");
    let names: Vec<&str> = summary.sinks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["recorder", "committing"]);
    assert_eq!(summary.sinks[0].1.events_written, 400);
}
