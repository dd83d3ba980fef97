//! The library API carries CPL's concepts: source filter, event filter,
//! batched delivery (`maxEventsPerEmit`), progress reporter and error handler.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use trailmill_core::{Event, EventFilter};
use trailmill_pipeline::{
    FileError, FileOutcome, LocalSource, Pipeline, ProgressReporter, Sink, SinkError, SinkStats,
    Source, SourceObject,
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
