//! `trailmill._trailmill`: the native half of the Python package.
//!
//! The Python package (`python/trailmill/__init__.py`) is the public face;
//! this module gives it three things, each running Rust with the GIL
//! released:
//!
//! - `Scan`: a pipeline run on a background thread whose per-worker
//!   [`trailmill_sinks::arrow`] sinks build record batches with the Parquet
//!   lake's columns. Python pulls batches one at a time; each crosses as a
//!   pair of Arrow C Data Interface capsules (no copy, no Python object per
//!   event), and failed files arrive in the same stream, in order.
//! - `validate`: the validator, with each verdict as the JSON object
//!   `trailmill validate --format json` prints.
//! - `process`: `trailmill process`, the command itself, with its state
//!   and resume, stopped by Ctrl-C through a flag instead of a signal
//!   handler.
//!
//! Waiting is done in short slices, between which the interpreter's pending
//! signals are checked, so Ctrl-C interrupts a long scan, validation or
//! run at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::{Array, RecordBatch, StructArray};
use arrow_schema::SchemaRef;
use arrow_schema::ffi::FFI_ArrowSchema;
use crossbeam_channel::{Receiver, RecvTimeoutError, select};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use trailmill_aws::{S3Client, S3Options, S3Source, S3Store, S3Url};
use trailmill_core::time::{Timestamp, ceil_seconds, parse_time};
use trailmill_core::{EventFilter, Selection};
use trailmill_pipeline::{
    FileError, FileErrorKind, FileOutcome, LocalSource, Pipeline, ProgressReporter, RunSummary,
    Source,
};
use trailmill_sinks::arrow::{StreamOptions, arrow_stream};

/// How often a wait wakes up to let Python run its signal handlers.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// The package's exception `name` (defined in `trailmill/_errors.py`)
/// with `message`.
fn error(py: Python<'_>, name: &str, message: String) -> PyErr {
    let class = py.import("trailmill._errors").and_then(|m| m.getattr(name));
    match class.and_then(|c| c.call1((message,))) {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// The `SourceError` raised when a source cannot be used at all.
fn source_error(py: Python<'_>, message: impl std::fmt::Display) -> PyErr {
    error(py, "SourceError", message.to_string())
}

/// A time argument: text in any form the CLI accepts (the Python layer
/// turns `datetime`s into ISO text).
fn time_arg(name: &str, text: Option<String>) -> PyResult<Option<Timestamp>> {
    text.map(|t| parse_time(&t).map_err(|e| PyValueError::new_err(format!("{name}: {e}"))))
        .transpose()
}

/// Local paths or `s3://` URLs, as a [`Source`] (never both in one call).
fn open_source(py: Python<'_>, sources: &[String]) -> PyResult<Box<dyn Source + Send>> {
    if sources.is_empty() {
        return Err(PyValueError::new_err("no source given"));
    }
    let s3 = sources.iter().filter(|s| S3Url::is_s3_url(s)).count();
    if s3 == 0 {
        for s in sources {
            if !std::path::Path::new(s).exists() {
                return Err(source_error(py, format!("{s}: no such file or directory")));
            }
        }
        return Ok(Box::new(LocalSource::new(
            sources.iter().map(PathBuf::from),
        )));
    }
    if s3 != sources.len() {
        return Err(PyValueError::new_err(
            "cannot mix local paths and s3:// URLs in one call",
        ));
    }
    let urls = sources
        .iter()
        .map(|s| {
            S3Url::parse(s).ok_or_else(|| {
                PyValueError::new_err(format!("{s:?} is not an s3://BUCKET[/PREFIX] URL"))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let client = py
        .detach(|| S3Client::connect(S3Options::default(), Some(&urls[0].bucket)))
        .map_err(|e| source_error(py, e))?;
    Ok(Box::new(S3Source::new(client, urls)))
}

/// One failed file, or one warning about a file that was read, as the
/// Python layer reports it.
struct Failure {
    path: String,
    /// `read`, `decode`, `unattested`, `sink` or `internal` for a failed
    /// file; `warning` for a file that was read with something to tell.
    kind: &'static str,
    reason: String,
}

/// Forwards the warnings of files that were read (records without core
/// fields, unexpected versions, misnamed keys) to the Python layer, which
/// has no log to print them to.
struct WarningForwarder(crossbeam_channel::Sender<Failure>);

impl ProgressReporter for WarningForwarder {
    fn finished(&mut self, outcome: &FileOutcome) {
        if outcome.result.is_err() {
            return; // its error goes to the error handler
        }
        for warning in &outcome.warnings {
            let _ = self.0.send(Failure {
                path: outcome.object.name.clone(),
                kind: "warning",
                reason: warning.clone(),
            });
        }
    }
}

impl Failure {
    fn of(e: &FileError) -> Failure {
        let kind = match &e.kind {
            FileErrorKind::Read(_) => "read",
            FileErrorKind::Decode(_) => "decode",
            FileErrorKind::Unattested => "unattested",
            FileErrorKind::Sink { .. } => "sink",
            _ => "internal",
        };
        Failure {
            path: e.name.clone(),
            kind,
            reason: e.kind.to_string(),
        }
    }
}

/// A scan in progress: batches and failures in arrival order. See the
/// module docs.
#[pyclass(module = "trailmill._trailmill")]
struct Scan {
    schema: SchemaRef,
    batches: Receiver<RecordBatch>,
    failures: Receiver<Failure>,
    stop: Arc<AtomicBool>,
    runner: Option<JoinHandle<RunSummary>>,
    summary: Option<RunSummary>,
}

/// A record batch as the Arrow C Data Interface's capsules
/// (`arrow_schema`, `arrow_array`), the form `pyarrow.RecordBatch.
/// _import_from_c_capsule` takes: a struct array of the columns.
fn batch_capsules<'py>(
    py: Python<'py>,
    batch: RecordBatch,
) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
    let data = StructArray::from(batch).into_data();
    let (array, schema) = arrow_array::ffi::to_ffi(&data)
        .map_err(|e| PyValueError::new_err(format!("cannot export a batch: {e}")))?;
    Ok((
        PyCapsule::new_with_value(py, schema, c"arrow_schema")?,
        PyCapsule::new_with_value(py, array, c"arrow_array")?,
    ))
}

#[pymethods]
impl Scan {
    /// The batches' schema, as an `arrow_schema` capsule.
    fn schema_capsule<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = FFI_ArrowSchema::try_from(self.schema.as_ref())
            .map_err(|e| PyValueError::new_err(format!("cannot export the schema: {e}")))?;
        PyCapsule::new_with_value(py, schema, c"arrow_schema")
    }

    /// The next item: `("batch", schema capsule, array capsule)`,
    /// `("error", path, kind, reason)`, or `None` once the run is over.
    /// Raises `KeyboardInterrupt` (and stops the run) on Ctrl-C.
    fn next_item<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<Option<Bound<'py, pyo3::types::PyTuple>>> {
        enum Item {
            Batch(RecordBatch),
            Failure(Failure),
            Finished,
            Waiting,
        }
        loop {
            if self.summary.is_some() {
                // After the end, only failures reported late remain.
                return match self.failures.try_recv() {
                    Ok(f) => Ok(Some(failure_tuple(py, f)?)),
                    Err(_) => Ok(None),
                };
            }
            let item = py.detach(|| {
                select! {
                    recv(self.failures) -> f => f.map_or(Item::Waiting, Item::Failure),
                    recv(self.batches) -> b => b.map_or(Item::Finished, Item::Batch),
                    default(SIGNAL_CHECK) => Item::Waiting,
                }
            });
            match item {
                Item::Batch(batch) => {
                    let (schema, array) = batch_capsules(py, batch)?;
                    return Ok(Some(("batch", schema, array).into_pyobject(py)?));
                }
                Item::Failure(f) => return Ok(Some(failure_tuple(py, f)?)),
                Item::Finished => {
                    let runner = self.runner.take();
                    let summary = py.detach(|| runner.map(|r| r.join()));
                    self.summary = Some(match summary {
                        Some(Ok(s)) => s,
                        _ => RunSummary::default(),
                    });
                }
                Item::Waiting => {
                    if let Err(e) = py.check_signals() {
                        self.stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Counts of the finished run (files, events, bytes), or `None` before
    /// the end.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.summary
            .as_ref()
            .map(|s| summary_dict(py, s))
            .transpose()
    }

    /// Stops the run: the listing ends, the files in flight finish, and
    /// what is left of the stream is dropped.
    fn close(&mut self, py: Python<'_>) {
        self.stop.store(true, Ordering::Relaxed);
        // Drain so that blocked sinks can finish, then wait for the run.
        let runner = self.runner.take();
        let (batches, failures) = (self.batches.clone(), self.failures.clone());
        let summary = py.detach(|| {
            let drain = std::thread::spawn(move || {
                for _ in batches.iter() {}
                for _ in failures.try_iter() {}
            });
            let summary = runner.and_then(|r| r.join().ok());
            let _ = drain.join();
            summary
        });
        self.summary.get_or_insert(summary.unwrap_or_default());
    }
}

impl Drop for Scan {
    fn drop(&mut self) {
        // An abandoned scan must not keep reading: stop it; its sinks fail
        // their next hand-over once the receiver is gone, and the thread ends.
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn failure_tuple<'py>(py: Python<'py>, f: Failure) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
    ("error", f.path, f.kind, f.reason).into_pyobject(py)
}

fn summary_dict<'py>(py: Python<'py>, s: &RunSummary) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("files_ok", s.files_ok)?;
    d.set_item("files_failed", s.files_failed)?;
    d.set_item("events_in", s.events_in)?;
    d.set_item("events_out", s.events_out)?;
    d.set_item("bytes_read", s.bytes_read)?;
    d.set_item("bytes_uncompressed", s.bytes_uncompressed)?;
    d.set_item("seconds", s.elapsed.as_secs_f64())?;
    d.set_item("interrupted", s.interrupted)?;
    let sinks = PyDict::new(py);
    for (name, stats) in &s.sinks {
        let d = PyDict::new(py);
        d.set_item("events_received", stats.events_received)?;
        d.set_item("events_written", stats.events_written)?;
        d.set_item("duplicates", stats.duplicates)?;
        d.set_item("bytes_written", stats.bytes_written)?;
        sinks.set_item(name, d)?;
    }
    d.set_item("sinks", sinks)?;
    let errors: Vec<(String, String)> = s
        .sink_errors
        .iter()
        .map(|(name, e)| (name.clone(), e.to_string()))
        .collect();
    d.set_item("sink_errors", errors)?;
    Ok(d)
}

/// Starts a scan. The Python layer (`trailmill.scan`) documents the
/// arguments; lists are OR-ed, fields AND-ed, as in the CLI.
#[pyfunction]
#[pyo3(signature = (
    sources, *, accounts, regions, org_ids, prefix, start, end, include_insights, shard,
    event_sources, event_names, event_accounts, event_regions, user_arns, error_codes,
    errors_only, read_only, event_categories, event_time_start, event_time_end,
    threads, batch_rows, json_columns, raw_column
))]
#[allow(clippy::too_many_arguments)]
fn scan(
    py: Python<'_>,
    sources: Vec<String>,
    accounts: Vec<String>,
    regions: Vec<String>,
    org_ids: Vec<String>,
    prefix: Option<String>,
    start: Option<String>,
    end: Option<String>,
    include_insights: bool,
    shard: Option<String>,
    event_sources: Vec<String>,
    event_names: Vec<String>,
    event_accounts: Vec<String>,
    event_regions: Vec<String>,
    user_arns: Vec<String>,
    error_codes: Vec<String>,
    errors_only: bool,
    read_only: Option<bool>,
    event_categories: Vec<String>,
    event_time_start: Option<String>,
    event_time_end: Option<String>,
    threads: Option<usize>,
    batch_rows: usize,
    json_columns: bool,
    raw_column: bool,
) -> PyResult<Scan> {
    let selection = Selection {
        accounts,
        regions,
        org_ids,
        prefix,
        start: time_arg("start", start)?.map(ceil_seconds),
        end: time_arg("end", end)?.map(ceil_seconds),
        include_insights,
        shard: shard
            .map(|s| {
                s.parse()
                    .map_err(|e: String| PyValueError::new_err(format!("shard: {e}")))
            })
            .transpose()?,
    };
    let filter = EventFilter {
        event_sources,
        event_names,
        accounts: event_accounts,
        regions: event_regions,
        user_arns,
        error_codes,
        errors_only,
        read_only,
        event_categories,
        event_time_start: time_arg("event_time_start", event_time_start)?,
        event_time_end: time_arg("event_time_end", event_time_end)?,
    };
    let source = open_source(py, &sources)?;
    let mut columns = trailmill_sinks::ParquetOptions::default();
    columns.json_columns = json_columns;
    columns.raw_column = raw_column;
    let mut opts = StreamOptions::default();
    opts.columns = columns;
    opts.batch_rows = batch_rows.max(1);
    let (stream, batches) = arrow_stream(opts);
    let schema = stream.schema();
    let (failed, failures) = crossbeam_channel::unbounded();
    let warned = failed.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut builder = Pipeline::builder()
        .selection(selection)
        .event_filter(filter)
        .stop_flag(stop.clone())
        .sink_per_worker(move || Box::new(stream.sink()))
        .progress(WarningForwarder(warned))
        .error_handler(move |e: &FileError| {
            let _ = failed.send(Failure::of(e));
        });
    if let Some(n) = threads {
        builder = builder.threads(n);
    }
    let pipeline = builder.build();
    let runner = std::thread::Builder::new()
        .name("trailmill-scan".into())
        .spawn(move || pipeline.run(source.as_ref()))
        .map_err(|e| PyValueError::new_err(format!("cannot start the scan: {e}")))?;
    Ok(Scan {
        schema,
        batches,
        failures,
        stop,
        runner: Some(runner),
        summary: None,
    })
}

/// Runs `f` on a thread of its own with the GIL released, checking for
/// Ctrl-C while it works. An interrupted call raises `KeyboardInterrupt` at
/// once; the work, which has no stop flag, finishes in the background.
fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    f: impl FnOnce() -> T + Send + 'static,
) -> PyResult<T> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("trailmill-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| PyValueError::new_err(format!("cannot start a thread: {e}")))?;
    loop {
        match py.detach(|| rx.recv_timeout(SIGNAL_CHECK)) {
            Ok(value) => return Ok(value),
            Err(RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PyValueError::new_err("internal error: the call panicked"));
            }
        }
    }
}

/// Validates digest chains like `trailmill validate`; returns
/// `(verdicts, trails, exit_code)`, each verdict and trail summary as the
/// JSON text `--format json` prints. Raises `ValidationError` when the
/// validation cannot run (bad arguments, no keys, unreadable source).
#[pyfunction]
#[pyo3(signature = (
    source, *, trail_arn, all, start_time, end_time, public_keys, bucket, s3_prefix,
    org_id, account_id, region, expect_until
))]
#[allow(clippy::too_many_arguments)]
fn validate(
    py: Python<'_>,
    source: String,
    trail_arn: Option<String>,
    all: bool,
    start_time: String,
    end_time: Option<String>,
    public_keys: Option<String>,
    bucket: Option<String>,
    s3_prefix: Option<String>,
    org_id: Option<String>,
    account_id: Option<String>,
    region: Option<String>,
    expect_until: Option<String>,
) -> PyResult<(Vec<String>, Vec<String>, i32)> {
    let url = if S3Url::is_s3_url(&source) {
        Some(S3Url::parse(&source).ok_or_else(|| {
            PyValueError::new_err(format!("{source:?} is not an s3://BUCKET[/PREFIX] URL"))
        })?)
    } else {
        None
    };
    let mut args = trailmill_validate::ValidateArgs {
        source: PathBuf::from(&source),
        trail_arn,
        all,
        start_time,
        end_time,
        bucket,
        s3_prefix,
        org_id,
        account_id,
        region,
        public_keys: public_keys.map(PathBuf::from),
        verbose: true,
        format: trailmill_validate::OutputFormat::Json,
        expect_until,
        color: false,
    };
    if let Some(url) = &url {
        args.bucket.get_or_insert_with(|| url.bucket.clone());
        if args.s3_prefix.is_none() && !url.prefix.is_empty() {
            args.s3_prefix = Some(url.prefix.trim_end_matches('/').to_owned());
        }
        // S3 sources have no keys.json beside them: the keys come from a file.
        args.source = PathBuf::from(".");
    }
    let result = interruptible(py, move || {
        let mut verdicts = Vec::new();
        let mut progress = |event: &trailmill_validate::Event| {
            if let trailmill_validate::Event::Verdict(v) = event {
                verdicts.push(trailmill_validate::verdict_json(v, None).to_string());
            }
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let report = match &url {
            Some(url) => S3Client::connect(S3Options::default(), Some(&url.bucket))
                .map_err(|e| e.to_string())
                .and_then(|client| {
                    trailmill_validate::run_validate_in(
                        &S3Store::new(client),
                        &args,
                        &mut out,
                        &mut err,
                        &mut progress,
                    )
                    .map_err(|e| e.to_string())
                }),
            None => trailmill_validate::run_validate(&args, &mut out, &mut err, &mut progress)
                .map_err(|e| e.to_string()),
        };
        report.map(|report| (verdicts, report))
    })?;
    let (verdicts, report) = result.map_err(|e| error(py, "ValidationError", e))?;
    let trails = report
        .trails
        .iter()
        .map(|(trail, summary)| {
            serde_json::json!({
                "index": trail.index,
                "arn": trail.arn,
                "account": trail.account,
                "region": trail.region,
                "bucket": trail.bucket,
                "valid_digests": summary.valid_digests,
                "invalid_digests": summary.invalid_digests,
                "valid_backfill_digests": summary.valid_backfill_digests,
                "invalid_backfill_digests": summary.invalid_backfill_digests,
                "valid_logs": summary.valid_logs,
                "invalid_logs": summary.invalid_logs,
                "unattested_logs": summary.unattested_logs,
                "gaps": summary.gaps,
                "chain_problems": summary.chain_problems,
                "valid": summary.is_valid(),
            })
            .to_string()
        })
        .collect();
    Ok((verdicts, trails, report.exit_code()))
}

/// Runs `trailmill process` with `args` (the command line after
/// `process`); returns `(ok, summary)`. Ctrl-C stops the run as SIGINT
/// stops the command (the files in flight finish and are recorded), then
/// raises `KeyboardInterrupt`.
#[pyfunction]
fn process<'py>(py: Python<'py>, args: Vec<String>) -> PyResult<(bool, Bound<'py, PyDict>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let runner = std::thread::Builder::new()
        .name("trailmill-process".into())
        .spawn(move || {
            let _ = tx.send(trailmill_cli::process(args, flag));
        })
        .map_err(|e| PyValueError::new_err(format!("cannot start the run: {e}")))?;
    let mut interrupted = None;
    let outcome = loop {
        match py.detach(|| rx.recv_timeout(SIGNAL_CHECK)) {
            Ok(outcome) => break outcome,
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    // Stop gracefully and wait: the state then records the
                    // files in flight, as after SIGINT.
                    stop.store(true, Ordering::Relaxed);
                    interrupted.get_or_insert(e);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PyValueError::new_err("internal error: the run panicked"));
            }
        }
    };
    let _ = runner.join();
    if let Some(e) = interrupted {
        return Err(e);
    }
    match outcome {
        Ok(outcome) => Ok((outcome.ok, summary_dict(py, &outcome.summary)?)),
        Err(e) => Err(error(py, "Error", format!("{e:#}"))),
    }
}

/// The module `trailmill._trailmill`.
#[pymodule]
fn _trailmill(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scan>()?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(process, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
