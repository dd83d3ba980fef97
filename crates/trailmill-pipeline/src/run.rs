//! The worker pool that turns listed objects into delivered events.
//!
//! ```text
//!  lister thread ──objects──▶ [bounded channel] ──▶ N workers (rayon pool)
//!                                                    read → decode → filter → sinks
//!                                                    then, under one lock: summary,
//!                                                    progress reporter, error handler
//! ```
//!
//! One log object is the unit of parallel work. Each worker owns a
//! [`Decoder`] and reuses its buffers for its whole life, and holds one object
//! at a time, so the bytes in flight are bounded by the number of workers
//! whatever the corpus size (a downloading source adds its own bounded
//! prefetch, started from [`Source::will_read`]). Every object ends in a [`FileOutcome`]: a bad file
//! is reported with its name and reason and the run goes on (unless
//! [`PipelineBuilder::fail_fast`] is set).

use std::any::Any;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use trailmill_core::key::Classified;
use trailmill_core::{
    CompiledFilter, DecodeError, DecodeOptions, Decoder, Event, EventFilter, Selection,
};

use crate::checkpoint::{CheckpointListener, CheckpointPolicy};
use crate::sink::{Sink, SinkError, SinkStats};
use crate::source::{ListStats, ObjectData, Source, SourceError, SourceObject};

/// Decides from the object alone whether to read it (CPL's `SourceFilter`).
pub trait SourceFilter: Send + Sync {
    /// True to read `object`.
    fn accept(&self, object: &SourceObject) -> bool;
}

impl<F: Fn(&SourceObject) -> bool + Send + Sync> SourceFilter for F {
    fn accept(&self, object: &SourceObject) -> bool {
        self(object)
    }
}

/// Decides per event whether to deliver it (CPL's `EventFilter`), on top of
/// the built-in field filter.
pub trait EventPredicate: Send + Sync {
    /// True to deliver `event`.
    fn accept(&self, event: &Event<'_>) -> bool;
}

impl<F: Fn(&Event<'_>) -> bool + Send + Sync> EventPredicate for F {
    fn accept(&self, event: &Event<'_>) -> bool {
        self(event)
    }
}

/// Says which SHA-256 a verified digest attests for an object's uncompressed
/// bytes (`trailmill process --verify`); `None` when no verified digest lists it.
pub trait Attestation: Send + Sync {
    /// The attested hash of `object`, if any.
    fn expected_sha256(&self, object: &SourceObject) -> Option<[u8; 32]>;
}

impl Attestation for std::collections::HashMap<String, [u8; 32]> {
    fn expected_sha256(&self, object: &SourceObject) -> Option<[u8; 32]> {
        self.get(&object.key).copied()
    }
}

/// What to do with objects that fail verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    /// Fail them: their events are not emitted.
    Enforce,
    /// Emit their events with a warning.
    Warn,
}

/// Hears about each finished object (CPL's `ProgressReporter`). Called from
/// the worker that finished the object, one call at a time, in completion order.
pub trait ProgressReporter: Send {
    /// An object was listed for processing.
    fn listed(&mut self, total_listed: u64) {
        let _ = total_listed;
    }

    /// An object finished, well or badly.
    fn finished(&mut self, outcome: &FileOutcome);
}

/// Handles failed objects (CPL's `ExceptionHandler`). Called from the worker
/// that hit the failure, one call at a time (listing failures: from the thread
/// that runs the pipeline, at the end). The default logs each failure.
pub trait ErrorHandler: Send {
    /// `error` happened; the run goes on unless fail-fast is set.
    fn handle(&mut self, error: &FileError);
}

impl<F: FnMut(&FileError) + Send> ErrorHandler for F {
    fn handle(&mut self, error: &FileError) {
        self(error)
    }
}

/// Why one object failed, with the object's name.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {kind}")]
pub struct FileError {
    /// The object's name (path or URL).
    pub name: String,
    /// What went wrong.
    pub kind: FileErrorKind,
}

/// What went wrong with an object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileErrorKind {
    /// It could not be read.
    #[error("{0}")]
    Read(String),
    /// Its content could not be decoded, or its hash is not the attested one.
    #[error("{0}")]
    Decode(DecodeError),
    /// No verified digest lists it (with [`VerifyMode::Enforce`]).
    #[error("not verified: no digest whose signature verified lists this file")]
    Unattested,
    /// A sink failed while writing its events.
    #[error("sink {sink}: {error}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// The sink's error.
        error: SinkError,
    },
    /// Something panicked while this object was read, decoded, filtered or
    /// delivered (a bug in trailmill or in a plugged-in source, sink or
    /// predicate). The panic is caught so that one object's bug fails that
    /// object only; the message is the panic's.
    #[error("internal error: panicked: {0}")]
    Internal(String),
}

/// The message a panic was raised with (`panic!("...")` gives a `&str` or a
/// `String`; anything else has no text to show).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// How one object ended.
#[derive(Debug)]
pub struct FileOutcome {
    /// The object.
    pub object: SourceObject,
    /// Bytes read from the source (compressed size).
    pub bytes_read: u64,
    /// Uncompressed bytes decoded.
    pub bytes_uncompressed: u64,
    /// Events decoded.
    pub events_in: u64,
    /// Events delivered to sinks after filtering.
    pub events_out: u64,
    /// Records decoded although they have none of the core fields
    /// (`eventVersion`, `eventTime`, `eventName`); each is also a warning.
    pub records_without_core_fields: u64,
    /// Warnings about an object that was still delivered (odd event versions,
    /// failed verification with [`VerifyMode::Warn`]).
    pub warnings: Vec<String>,
    /// `Err` when the object failed; events delivered before a failure stay delivered.
    pub result: Result<(), FileError>,
}

impl FileOutcome {
    /// An object not yet read: nothing counted, no error.
    fn new(object: SourceObject) -> Self {
        FileOutcome {
            object,
            bytes_read: 0,
            bytes_uncompressed: 0,
            events_in: 0,
            events_out: 0,
            records_without_core_fields: 0,
            warnings: Vec::new(),
            result: Ok(()),
        }
    }
}

/// Totals for a run.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// Objects processed without error and committed by every sink.
    pub files_ok: u64,
    /// Objects that failed, plus listing failures.
    pub files_failed: u64,
    /// What the listing passed over.
    pub listing: ListStats,
    /// Events decoded.
    pub events_in: u64,
    /// Events delivered after filtering.
    pub events_out: u64,
    /// Records decoded although they have none of the core fields (see
    /// [`FileOutcome::records_without_core_fields`]).
    pub records_without_core_fields: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Uncompressed bytes decoded.
    pub bytes_uncompressed: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Each sink's name and statistics.
    pub sinks: Vec<(String, SinkStats)>,
    /// Sinks that failed to finish, with their errors.
    pub sink_errors: Vec<(String, SinkError)>,
    /// True when the run stopped early because of `fail_fast`.
    pub stopped_early: bool,
    /// True when the run was stopped through its stop flag
    /// ([`PipelineBuilder::stop_flag`]): in-flight objects finished, queued
    /// ones were left unprocessed and unreported.
    pub interrupted: bool,
    /// Checkpoints taken, the final one included.
    pub checkpoints: u64,
}

impl RunSummary {
    /// True when every object and every sink succeeded.
    pub fn is_success(&self) -> bool {
        self.files_failed == 0 && self.sink_errors.is_empty() && !self.stopped_early
    }
}

/// Builds a [`Pipeline`].
pub struct PipelineBuilder {
    threads: usize,
    decode: DecodeOptions,
    selection: Selection,
    filter: EventFilter,
    predicate: Option<Box<dyn EventPredicate>>,
    source_filter: Option<Box<dyn SourceFilter>>,
    sinks: Vec<SinkPlan>,
    progress: Option<Box<dyn ProgressReporter>>,
    errors: Option<Box<dyn ErrorHandler>>,
    fail_fast: bool,
    verify: Option<(Box<dyn Attestation>, VerifyMode)>,
    checkpoints: Option<Box<dyn CheckpointListener>>,
    checkpoint_policy: CheckpointPolicy,
    stop: Option<Arc<AtomicBool>>,
}

/// A sink as added to the builder: one shared by every worker, or a
/// factory for one per worker (made at [`PipelineBuilder::build`], once the
/// number of workers is known).
enum SinkPlan {
    Shared(Box<dyn Sink>),
    PerWorker(Box<dyn FnMut() -> Box<dyn Sink> + Send>),
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        PipelineBuilder {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            decode: DecodeOptions::default(),
            selection: Selection::default(),
            filter: EventFilter::default(),
            predicate: None,
            source_filter: None,
            sinks: Vec::new(),
            progress: None,
            errors: None,
            fail_fast: false,
            verify: None,
            checkpoints: None,
            checkpoint_policy: CheckpointPolicy::default(),
            stop: None,
        }
    }
}

impl PipelineBuilder {
    /// Worker threads (default: one per core).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Decoder limits.
    pub fn decode_options(mut self, opts: DecodeOptions) -> Self {
        self.decode = opts;
        self
    }

    /// Most events per [`Sink::write_batch`] call (CPL's `maxEventsPerEmit`).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.decode.batch_size = n.max(1);
        self
    }

    /// Which objects to read, by key.
    pub fn selection(mut self, selection: Selection) -> Self {
        self.selection = selection;
        self
    }

    /// The built-in field filter.
    pub fn event_filter(mut self, filter: EventFilter) -> Self {
        self.filter = filter;
        self
    }

    /// A custom per-event filter, applied after the built-in one.
    pub fn event_predicate(mut self, predicate: impl EventPredicate + 'static) -> Self {
        self.predicate = Some(Box::new(predicate));
        self
    }

    /// A custom per-object filter, applied to listed objects before reading.
    pub fn source_filter(mut self, filter: impl SourceFilter + 'static) -> Self {
        self.source_filter = Some(Box::new(filter));
        self
    }

    /// Adds a sink; events go to every sink.
    pub fn sink(mut self, sink: impl Sink + 'static) -> Self {
        self.sinks.push(SinkPlan::Shared(Box::new(sink)));
        self
    }

    /// Adds a boxed sink.
    pub fn boxed_sink(mut self, sink: Box<dyn Sink>) -> Self {
        self.sinks.push(SinkPlan::Shared(sink));
        self
    }

    /// Adds a sink made once per worker by `make`: each worker writes to its
    /// own instance, so the per-event work of `write_batch` runs on all
    /// workers at once instead of one at a time under the sink's lock. Every
    /// instance is committed at each checkpoint and finished at the end; the
    /// summary shows one entry, under the first instance's name, with the
    /// instances' counts added up. For sinks whose instances can share a
    /// destination (a channel, a directory of distinct files).
    pub fn sink_per_worker(mut self, make: impl FnMut() -> Box<dyn Sink> + Send + 'static) -> Self {
        self.sinks.push(SinkPlan::PerWorker(Box::new(make)));
        self
    }

    /// Reports each finished object.
    pub fn progress(mut self, reporter: impl ProgressReporter + 'static) -> Self {
        self.progress = Some(Box::new(reporter));
        self
    }

    /// Handles failed objects (default: log them).
    pub fn error_handler(mut self, handler: impl ErrorHandler + 'static) -> Self {
        self.errors = Some(Box::new(handler));
        self
    }

    /// Stop at the first failed object.
    pub fn fail_fast(mut self, yes: bool) -> Self {
        self.fail_fast = yes;
        self
    }

    /// Emit only objects whose uncompressed SHA-256 is the one `attestation`
    /// gives (see [`VerifyMode`] for the others).
    pub fn verify(mut self, attestation: impl Attestation + 'static, mode: VerifyMode) -> Self {
        self.verify = Some((Box::new(attestation), mode));
        self
    }

    /// Takes checkpoints and reports settled objects to `listener` (see
    /// [`crate::checkpoint`]).
    pub fn on_checkpoint(mut self, listener: impl CheckpointListener + 'static) -> Self {
        self.checkpoints = Some(Box::new(listener));
        self
    }

    /// When checkpoints happen (default: [`CheckpointPolicy::default`]).
    pub fn checkpoint_policy(mut self, policy: CheckpointPolicy) -> Self {
        self.checkpoint_policy = policy;
        self
    }

    /// A flag that stops the run when set, for graceful shutdown: the listing
    /// stops, workers take no new object, in-flight objects finish, and the
    /// final checkpoint reports them.
    pub fn stop_flag(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// The pipeline.
    pub fn build(self) -> Pipeline {
        let filter = self.filter.compile();
        let mut decode = self.decode;
        // Records whose source or name fails the filter would be dropped
        // here anyway: the decoder can stop reading them early.
        if decode.early_filter.is_none() {
            decode.early_filter = filter.early_filter();
        }
        Pipeline {
            shared: Shared {
                keyless_filter: self.selection.as_event_filter().compile(),
                threads: self.threads,
                decode,
                selection: self.selection,
                filter,
                predicate: self.predicate,
                source_filter: self.source_filter,
                sinks: self
                    .sinks
                    .into_iter()
                    .map(|plan| {
                        let lanes: Vec<Box<dyn Sink>> = match plan {
                            SinkPlan::Shared(sink) => vec![sink],
                            SinkPlan::PerWorker(mut make) => {
                                (0..self.threads).map(|_| make()).collect()
                            }
                        };
                        SinkSlot {
                            name: lanes[0].name(),
                            lanes: lanes.into_iter().map(Mutex::new).collect(),
                        }
                    })
                    .collect(),
                deliveries: RwLock::new(()),
                fail_fast: self.fail_fast,
                verify: self.verify,
            },
            progress: self.progress,
            errors: self.errors,
            checkpoints: self.checkpoints,
            checkpoint_policy: self.checkpoint_policy,
            stop: self.stop.unwrap_or_default(),
        }
    }
}

/// A configured run: source in, events to sinks. Build it with [`Pipeline::builder`].
pub struct Pipeline {
    shared: Shared,
    progress: Option<Box<dyn ProgressReporter>>,
    errors: Option<Box<dyn ErrorHandler>>,
    checkpoints: Option<Box<dyn CheckpointListener>>,
    checkpoint_policy: CheckpointPolicy,
    stop: Arc<AtomicBool>,
}

/// The part of a pipeline every worker reads.
struct Shared {
    threads: usize,
    decode: DecodeOptions,
    selection: Selection,
    filter: CompiledFilter,
    /// The selection's accounts, regions and times, applied to the events of
    /// files whose names carry no key to select by.
    keyless_filter: CompiledFilter,
    predicate: Option<Box<dyn EventPredicate>>,
    source_filter: Option<Box<dyn SourceFilter>>,
    sinks: Vec<SinkSlot>,
    /// Held for reading while an object's events are delivered (from its
    /// decoding to `file_done` or `file_failed`), and for writing by a
    /// checkpoint's commit: a commit never falls between two batches of one
    /// object. A sink that records which objects a commit holds (the
    /// Iceberg ledger) would otherwise record an object whose later batches
    /// come after the commit, and take them for a redo.
    deliveries: RwLock<()>,
    fail_fast: bool,
    verify: Option<(Box<dyn Attestation>, VerifyMode)>,
}

/// A sink and its name: one instance every worker locks in turn, or one
/// per worker ([`PipelineBuilder::sink_per_worker`]), which only a
/// checkpoint's commit ever contends for.
struct SinkSlot {
    name: String,
    lanes: Vec<Mutex<Box<dyn Sink>>>,
}

impl SinkSlot {
    /// The instance worker `worker` writes to, locked.
    fn lane(&self, worker: usize) -> std::sync::MutexGuard<'_, Box<dyn Sink>> {
        self.lanes[worker % self.lanes.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// What the workers record as objects finish.
struct Outcomes {
    summary: RunSummary,
    progress: Option<Box<dyn ProgressReporter>>,
    errors: Option<Box<dyn ErrorHandler>>,
    reported_listed: u64,
    checkpoints: Option<Checkpoints>,
}

/// Objects waiting for the next checkpoint, and whom to tell.
struct Checkpoints {
    listener: Box<dyn CheckpointListener>,
    policy: CheckpointPolicy,
    pending: Vec<FileOutcome>,
    last: Instant,
}

impl Outcomes {
    /// Records `outcome`, and takes a checkpoint if one is due.
    fn settle(&mut self, outcome: FileOutcome, shared: &Shared, idle: bool) {
        let Some(checkpoints) = self.checkpoints.as_mut() else {
            return;
        };
        checkpoints.pending.push(outcome);
        let due = checkpoints.pending.len() >= checkpoints.policy.max_files
            || checkpoints.last.elapsed() >= checkpoints.policy.interval
            || (idle && checkpoints.policy.when_idle);
        if due {
            let commit = shared.commit_sinks();
            self.checkpoint(commit);
        }
    }

    /// Hands the pending objects to the listener, after the sinks' commit
    /// (whose result is `commit`): a failed commit fails every object in it.
    fn checkpoint(&mut self, commit: Result<(), (String, String)>) {
        let Some(checkpoints) = self.checkpoints.as_mut() else {
            // Without checkpoints the sinks are committed only at the end,
            // so a failed final commit covered every object read: none of
            // them is stored. The objects are not kept (a run without a
            // state may list millions), so only the counts change; the sink's
            // error names the cause.
            if commit.is_err() {
                self.summary.files_failed += self.summary.files_ok;
                self.summary.files_ok = 0;
            }
            return;
        };
        let mut files = std::mem::take(&mut checkpoints.pending);
        checkpoints.last = Instant::now();
        if let Err((sink, reason)) = commit {
            for outcome in files.iter_mut().filter(|o| o.result.is_ok()) {
                let error = FileError {
                    name: outcome.object.name.clone(),
                    kind: FileErrorKind::Sink {
                        sink: sink.clone(),
                        error: SinkError::new(format!("commit failed: {reason}")),
                    },
                };
                self.summary.files_ok -= 1;
                self.summary.files_failed += 1;
                match self.errors.as_mut() {
                    Some(h) => h.handle(&error),
                    None => tracing::error!(file = %error.name, "{}", error.kind),
                }
                outcome.result = Err(error);
            }
        }
        self.summary.checkpoints += 1;
        checkpoints.listener.checkpoint(&files);
    }

    fn record(&mut self, outcome: &FileOutcome, listed: u64, fail_fast: bool) {
        let summary = &mut self.summary;
        summary.bytes_read += outcome.bytes_read;
        summary.bytes_uncompressed += outcome.bytes_uncompressed;
        summary.events_in += outcome.events_in;
        summary.events_out += outcome.events_out;
        summary.records_without_core_fields += outcome.records_without_core_fields;
        for w in &outcome.warnings {
            tracing::warn!(file = %outcome.object.name, "{w}");
        }
        match &outcome.result {
            Ok(()) => summary.files_ok += 1,
            Err(e) => {
                summary.files_failed += 1;
                match self.errors.as_mut() {
                    Some(h) => h.handle(e),
                    None => tracing::error!(file = %e.name, "{}", e.kind),
                }
                summary.stopped_early |= fail_fast;
            }
        }
        if let Some(p) = self.progress.as_mut() {
            if listed != self.reported_listed {
                self.reported_listed = listed;
                p.listed(listed);
            }
            p.finished(outcome);
        }
    }
}

impl Pipeline {
    /// A builder with the defaults: all cores, no filters, no sinks.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// Processes every object `source` lists, then finishes every sink.
    pub fn run(mut self, source: &dyn Source) -> RunSummary {
        let started = Instant::now();
        let stop = &*self.stop;
        let listed = AtomicU64::new(0);
        let in_flight = AtomicU64::new(0);
        // Objects are names, not bytes: a deep queue lets the lister finish
        // early instead of waking up for every object a worker takes.
        let (object_tx, object_rx) = crossbeam_channel::bounded::<SourceObject>(4096);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.shared.threads)
            .thread_name(|i| format!("trailmill-worker-{i}"))
            .build();
        // Outcomes are recorded by the workers themselves, one at a time: no
        // thread has to be woken for each finished object.
        let outcomes = Mutex::new(Outcomes {
            summary: RunSummary::default(),
            progress: self.progress.take(),
            errors: self.errors.take(),
            reported_listed: 0,
            checkpoints: self.checkpoints.take().map(|listener| Checkpoints {
                listener,
                policy: self.checkpoint_policy.clone(),
                pending: Vec::new(),
                last: Instant::now(),
            }),
        });
        let this = &self.shared;
        let listing = std::thread::scope(|scope| {
            let listed = &listed;
            let lister = scope.spawn(move || {
                let mut filtered_out = 0;
                let mut stats = source.list(&this.selection, &mut |object| {
                    if stop.load(Ordering::Relaxed) {
                        return ControlFlow::Break(());
                    }
                    if let Some(f) = &this.source_filter
                        && !f.accept(&object)
                    {
                        filtered_out += 1;
                        return ControlFlow::Continue(());
                    }
                    listed.fetch_add(1, Ordering::Relaxed);
                    source.will_read(&object);
                    if object_tx.send(object).is_err() {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                });
                // What went to the workers is counted here: a custom source's
                // own count may not include what the source filter removed
                // (subtracting from it underflowed).
                stats.listed = listed.load(Ordering::Relaxed);
                stats.skipped_by_filter = filtered_out;
                stats
            });
            let work = |worker: usize| {
                let mut decoder = Decoder::new(this.decode.clone());
                while let Ok(object) = object_rx.recv() {
                    if stop.load(Ordering::Relaxed) {
                        continue; // drain so the lister can finish
                    }
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    let mut outcome = FileOutcome::new(object);
                    // A panic anywhere in this object's work (source, decoder,
                    // filter, predicate, sink) fails this object only: the
                    // sinks' locks tolerate poisoning, and the decoder, whose
                    // buffers may be half-updated, is replaced.
                    let internal = |outcome: &mut FileOutcome, payload: &(dyn Any + Send)| {
                        outcome.result = Err(FileError {
                            name: outcome.object.name.clone(),
                            kind: FileErrorKind::Internal(panic_message(payload)),
                        });
                    };
                    let data = catch_unwind(AssertUnwindSafe(|| this.read(source, &mut outcome)))
                        .unwrap_or_else(|payload| {
                            internal(&mut outcome, &*payload);
                            None
                        });
                    if let Some(data) = data {
                        // Sinks see the object from here on; a checkpoint's
                        // commit waits until they have all of it, or know it
                        // failed (see `deliveries`). The download is not
                        // waited for.
                        let delivering = this.deliveries.read().unwrap_or_else(|p| p.into_inner());
                        let mut delivered = false;
                        let run = catch_unwind(AssertUnwindSafe(|| {
                            this.deliver(worker, &mut decoder, &data, &mut outcome, &mut delivered)
                        }));
                        if let Err(payload) = run {
                            decoder = Decoder::new(this.decode.clone());
                            internal(&mut outcome, &*payload);
                        }
                        if outcome.result.is_err() && delivered {
                            for slot in &this.sinks {
                                slot.lane(worker).file_failed(&outcome.object);
                            }
                        }
                        drop(delivering);
                    }
                    if this.fail_fast && outcome.result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    let mut state = outcomes.lock().unwrap_or_else(|p| p.into_inner());
                    state.record(&outcome, listed.load(Ordering::Relaxed), this.fail_fast);
                    let idle =
                        in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && object_rx.is_empty();
                    state.settle(outcome, this, idle);
                }
            };
            match &pool {
                Ok(pool) => pool.scope(|s| {
                    for worker in 0..this.threads {
                        s.spawn(move |_| work(worker));
                    }
                }),
                // No pool could be made (thread limits): work on this thread.
                Err(_) => work(0),
            }
            // A lister that panicked listed only part of the source: that is a
            // failed run, never an empty listing that looks like success.
            lister.join().unwrap_or_else(|payload| ListStats {
                listed: listed.load(Ordering::Relaxed),
                errors: vec![SourceError::new(
                    "listing",
                    format!(
                        "internal error: the listing panicked ({}); objects after the panic were not listed or processed",
                        panic_message(&*payload)
                    ),
                )],
                ..ListStats::default()
            })
        });
        let Outcomes {
            mut summary,
            mut errors,
            checkpoints,
            ..
        } = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
        summary.interrupted = stop.load(Ordering::Relaxed) && !summary.stopped_early;
        for e in &listing.errors {
            let error = FileError {
                name: e.name.clone(),
                kind: FileErrorKind::Read(e.reason.clone()),
            };
            match errors.as_mut() {
                Some(h) => h.handle(&error),
                None => tracing::error!(file = %error.name, "{}", error.kind),
            }
        }
        summary.files_failed += listing.errors.len() as u64;
        summary.listing = listing;
        for slot in std::mem::take(&mut self.shared.sinks) {
            let mut total = SinkStats::default();
            let mut failure = None;
            for lane in slot.lanes {
                let mut sink = lane.into_inner().unwrap_or_else(|p| p.into_inner());
                match sink.finish() {
                    Ok(stats) => {
                        total.events_received += stats.events_received;
                        total.events_written += stats.events_written;
                        total.duplicates += stats.duplicates;
                        total.bytes_written += stats.bytes_written;
                    }
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            match failure {
                None => summary.sinks.push((slot.name, total)),
                Some(e) => summary.sink_errors.push((slot.name, e)),
            }
        }
        // The final checkpoint: `finish` made everything durable, or failed.
        let mut last = Outcomes {
            summary,
            progress: None,
            errors,
            reported_listed: 0,
            checkpoints,
        };
        let commit = match last.summary.sink_errors.first() {
            None => Ok(()),
            Some((name, e)) => Err((name.clone(), e.to_string())),
        };
        last.checkpoint(commit);
        let mut summary = last.summary;
        summary.elapsed = started.elapsed();
        summary
    }
}

impl Shared {
    /// Commits every sink; the first failure names its sink and reason.
    fn commit_sinks(&self) -> Result<(), (String, String)> {
        // Wait for the objects being delivered: see `deliveries`.
        let _between_objects = self.deliveries.write().unwrap_or_else(|p| p.into_inner());
        let mut first_failure = None;
        for slot in &self.sinks {
            for lane in 0..slot.lanes.len() {
                if let Err(e) = slot.lane(lane).commit()
                    && first_failure.is_none()
                {
                    first_failure = Some((slot.name.clone(), e.to_string()));
                }
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// Reads `outcome.object`; a failure is recorded in `outcome`.
    fn read(&self, source: &dyn Source, outcome: &mut FileOutcome) -> Option<ObjectData> {
        match source.read(&outcome.object) {
            Ok(data) => {
                outcome.bytes_read = data.len() as u64;
                Some(data)
            }
            Err(SourceError { reason, .. }) => {
                outcome.result = Err(FileError {
                    name: outcome.object.name.clone(),
                    kind: FileErrorKind::Read(reason),
                });
                None
            }
        }
    }

    /// Decodes, filters and delivers the `data` of `outcome.object`, and
    /// records how it went in `outcome`; sets `events_delivered` once a sink
    /// was handed an event of it (even if the object fails later, or this
    /// panics).
    fn deliver(
        &self,
        worker: usize,
        decoder: &mut Decoder,
        data: &ObjectData,
        outcome: &mut FileOutcome,
        events_delivered: &mut bool,
    ) {
        let fail = |object: &SourceObject, kind| {
            Err(FileError {
                name: object.name.clone(),
                kind,
            })
        };
        let keyless = matches!(outcome.object.classify(), Classified::Other { .. })
            && !self.keyless_filter.is_pass_all();
        let pass_all = self.filter.is_pass_all() && self.predicate.is_none() && !keyless;
        let mut events_out = 0u64;
        let mut sink_failure: Option<(String, SinkError)> = None;
        let object = &outcome.object;
        let mut warnings = Vec::new();
        let expected = match &self.verify {
            None => None,
            Some((attestation, mode)) => match (attestation.expected_sha256(object), mode) {
                (Some(hash), _) => Some(hash),
                (None, VerifyMode::Enforce) => {
                    outcome.result = fail(object, FileErrorKind::Unattested);
                    return;
                }
                (None, VerifyMode::Warn) => {
                    warnings.push("not verified: no digest whose signature verified lists this file; emitted anyway".to_owned());
                    None
                }
            },
        };
        let warn_only = matches!(self.verify, Some((_, VerifyMode::Warn)));
        let mut deliver = |batch: &[Event<'_>]| -> trailmill_core::decode::HandlerResult {
            // Events borrow the decoder's buffers for this call only, so the
            // filtered batch is collected afresh each time (one small allocation).
            let kept: Vec<Event<'_>>;
            let delivered: &[Event<'_>] = if pass_all {
                batch
            } else {
                kept = batch
                    .iter()
                    .copied()
                    .filter(|e| {
                        self.filter.matches(e)
                            && (!keyless || self.keyless_filter.matches(e))
                            && self.predicate.as_ref().is_none_or(|p| p.accept(e))
                    })
                    .collect();
                &kept
            };
            events_out += delivered.len() as u64;
            if delivered.is_empty() {
                return Ok(());
            }
            *events_delivered = true;
            for slot in &self.sinks {
                if let Err(e) = slot.lane(worker).write_batch(object, delivered) {
                    let name = &slot.name;
                    let message = format!("sink {name}: {e}");
                    sink_failure = Some((name.clone(), e));
                    return Err(message.into());
                }
            }
            Ok(())
        };
        let mut result = match &expected {
            Some(hash) => decoder.decode_verified(data, hash, &mut deliver),
            None => decoder.decode(data, &mut deliver),
        };
        if warn_only && let Err(mismatch @ DecodeError::HashMismatch { .. }) = &result {
            warnings.push(format!("not verified: {mismatch}; emitted anyway"));
            result = decoder.decode(data, &mut deliver);
        }
        outcome.events_out = events_out;
        outcome.warnings = warnings;
        match result {
            Ok(stats) => {
                outcome.events_in = stats.events;
                outcome.records_without_core_fields = stats.records_without_core_fields;
                outcome.bytes_uncompressed = stats.uncompressed_bytes;
                outcome
                    .warnings
                    .extend(stats.warnings.iter().map(ToString::to_string));
                for slot in &self.sinks {
                    if let Err(error) = slot.lane(worker).file_done(&outcome.object) {
                        outcome.result = fail(
                            &outcome.object,
                            FileErrorKind::Sink {
                                sink: slot.name.clone(),
                                error,
                            },
                        );
                        break;
                    }
                }
            }
            Err(DecodeError::Handler(_)) if sink_failure.is_some() => {
                let (sink, error) = sink_failure.take().expect("checked above");
                outcome.result = fail(&outcome.object, FileErrorKind::Sink { sink, error });
            }
            Err(e) => outcome.result = fail(&outcome.object, FileErrorKind::Decode(e)),
        }
    }
}

/// Shares one reporter between the pipeline and the caller.
impl<P: ProgressReporter> ProgressReporter for Arc<Mutex<P>> {
    fn listed(&mut self, total_listed: u64) {
        self.lock()
            .unwrap_or_else(|p| p.into_inner())
            .listed(total_listed);
    }

    fn finished(&mut self, outcome: &FileOutcome) {
        self.lock()
            .unwrap_or_else(|p| p.into_inner())
            .finished(outcome);
    }
}
