//! `trailmill worker`: process the log files that SQS notifications announce,
//! deleting each message once its events are durable in every sink.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use trailmill_aws::worker::{MessageInfo, Progress, ProgressState};
use trailmill_aws::{Fetcher, QueueSource, SqsClient, WorkerHooks, WorkerOptions};
use trailmill_core::DecodeOptions;
use trailmill_pipeline::{CheckpointPolicy, FileError, Pipeline};

use crate::args::{FilterArgs, S3Args, SelectionArgs, SinkArgs};

/// Arguments of `trailmill worker`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The SQS queue URL.
    #[arg(long, value_name = "URL")]
    pub queue: String,
    #[command(flatten)]
    pub sinks: SinkArgs,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Seconds between checkpoints while busy (each commits every sink, then
    /// deletes the messages it settled); one is also taken whenever the
    /// worker runs out of work. Lake sinks write a file per partition per
    /// checkpoint, so a longer interval gives larger files; messages are
    /// deleted only at a checkpoint, so they wait for it.
    #[arg(long, default_value_t = 1, value_name = "SECS")]
    pub checkpoint_interval: u64,
    /// Seconds a received message stays hidden from other workers; renewed
    /// every half of it while the message's files are being processed.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub visibility_timeout: u64,
    /// Long-poll wait of each receive, in seconds (at most 20).
    #[arg(long, default_value_t = 20, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait_seconds: u64,
    /// Receives running at once.
    #[arg(long, default_value_t = 1)]
    pub pollers: usize,
    /// Most messages held at once (default: 8 per thread, at least 10).
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Delete a message even when some of its files failed or its body is not
    /// understood (CPL's deleteMessageUponFailure). Without it, such a message
    /// returns after the visibility timeout.
    #[arg(long)]
    pub delete_on_failure: bool,
    /// Delete, without processing, a message that SQS has handed out more than
    /// N times (a poison message), as a source filter on the message's
    /// ApproximateReceiveCount.
    #[arg(long, value_name = "N")]
    pub max_receives: Option<u64>,
    /// Exit once the queue holds no message (visible, in flight or delayed)
    /// and this worker holds none: for draining a backfill.
    #[arg(long)]
    pub until_empty: bool,
    /// Append one JSON line per deleted message ({time_ms, message_id,
    /// objects}) to this file, written just before the deletion.
    #[arg(long, value_name = "FILE")]
    pub deletion_log: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Most events per sink call (CPL's maxEventsPerEmit), as in `process`.
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
    /// Largest uncompressed size accepted for one file, in MiB.
    #[arg(long, default_value_t = 8192, value_name = "MIB")]
    pub max_uncompressed_mib: u64,
    /// No summary at the end; errors are still reported.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

/// Counts of each progress state, as (succeeded, failed).
type StateCounts = BTreeMap<ProgressState, (u64, u64)>;

/// Runs the worker until it is stopped (SIGINT, SIGTERM) or, with
/// `--until-empty`, the queue is drained. True unless a sink failed: a failed
/// file is the queue's business (its message returns, or is deleted with
/// `--delete-on-failure`), reported on stderr and in the summary, and does not
/// make a long-running worker's exit status non-zero.
pub fn run(a: WorkerArgs) -> anyhow::Result<bool> {
    let stop = crate::signals::stop_flag()?;
    let sqs = SqsClient::connect(&a.queue)?;
    // Notifications name their buckets; the configured region serves them.
    let fetcher = Box::new(Fetcher::new(a.s3.connect(None)?));
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut options = WorkerOptions::new(a.queue.clone());
    options.visibility_timeout = Duration::from_secs(a.visibility_timeout.max(1));
    options.wait_time = Duration::from_secs(a.wait_seconds);
    options.pollers = a.pollers.max(1);
    options.max_in_flight = a.max_in_flight.unwrap_or((threads * 8).max(10));
    options.delete_on_failure = a.delete_on_failure;
    options.until_empty = a.until_empty;

    let counts = Arc::new(Mutex::new(StateCounts::new()));
    let reporter_counts = counts.clone();
    let mut hooks = WorkerHooks {
        reporter: Some(Box::new(move |p: &Progress<'_>| {
            tracing::debug!(
                state = %p.state,
                success = p.success,
                sqs_message = p.message_id,
                object = p.object,
                detail = p.detail,
            );
            let mut counts = reporter_counts.lock().unwrap_or_else(|e| e.into_inner());
            let entry = counts.entry(p.state).or_default();
            if p.success {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        })),
        ..WorkerHooks::default()
    };
    if let Some(max) = a.max_receives {
        hooks.filter = Some(Box::new(move |m: &MessageInfo<'_>| {
            let count = m.receive_count().unwrap_or(1);
            if count > max {
                tracing::warn!(
                    sqs_message = m.message_id,
                    "received {count} times (more than --max-receives {max}): deleting it unprocessed"
                );
            }
            count <= max
        }));
    }
    if let Some(path) = &a.deletion_log {
        hooks = hooks.deletion_log_at(path)?;
    }
    let source = QueueSource::new(sqs, options, fetcher, hooks, stop.clone());

    let mut builder = Pipeline::builder()
        .threads(threads)
        .decode_options(DecodeOptions {
            max_decompressed_bytes: a.max_uncompressed_mib.saturating_mul(1 << 20),
            batch_size: a.batch_size.max(1),
            ..DecodeOptions::default()
        })
        .selection(a.selection.to_selection())
        .event_filter(a.filters.to_filter())
        .stop_flag(stop.clone())
        .on_checkpoint(source.checkpoint_listener())
        // Messages wait for checkpoints, so take one whenever the worker runs
        // out of work, and at least every interval while it is busy.
        .checkpoint_policy(CheckpointPolicy {
            max_files: 256,
            interval: Duration::from_secs(a.checkpoint_interval.max(1)),
            when_idle: true,
        })
        .progress(source.progress_reporter())
        .error_handler(|e: &FileError| eprintln!("error: {e}"));
    let lake = a.sinks.lake_settings();
    for (spec, opened) in trailmill_lake::open_sinks(&a.sinks.sinks, &lake, false) {
        let (sink, _) = opened.map_err(|e| anyhow::anyhow!("cannot open sink {spec}: {e}"))?;
        builder = builder.boxed_sink(sink);
    }
    tracing::info!(queue = a.queue, "worker started");
    let summary = builder.build().run(&source);
    let stats = source.finish();
    for (name, e) in &summary.sink_errors {
        eprintln!("error: sink {name}: {e}");
    }
    if !a.quiet {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "trailmill worker: {} messages received, {} deleted, {} deleted as filtered, {} left after failures, {} not understood, {} released{}",
            stats.received,
            stats.deleted,
            stats.deleted_filtered,
            stats.left_failed,
            stats.unparsable,
            stats.released,
            if stop.load(Ordering::Relaxed) {
                " (stopped by a signal)"
            } else {
                ""
            },
        );
        let _ = writeln!(
            err,
            "trailmill worker: {} files ok, {} failed; {} events in, {} out in {:.2} s",
            summary.files_ok,
            summary.files_failed,
            summary.events_in,
            summary.events_out,
            summary.elapsed.as_secs_f64()
        );
        if summary.listing.misnamed > 0 {
            let note = crate::process::misnamed_note(summary.listing.misnamed);
            let _ = writeln!(err, "trailmill worker: {}", note.trim_start_matches("; "));
        }
        if let Some(note) = crate::process::odd_records_note(summary.records_without_core_fields) {
            let _ = writeln!(err, "trailmill worker: {note}");
        }
        let counts = counts.lock().unwrap_or_else(|e| e.into_inner());
        let states: Vec<String> = ProgressState::ALL
            .iter()
            .filter_map(|s| {
                counts
                    .get(s)
                    .map(|(ok, failed)| format!("{s} {ok} ok/{failed} failed"))
            })
            .collect();
        let _ = writeln!(err, "trailmill worker: states: {}", states.join(", "));
        for (name, s) in &summary.sinks {
            let _ = writeln!(
                err,
                "trailmill worker: sink {name}: {} written, {} duplicates collapsed",
                s.events_written, s.duplicates
            );
        }
    }
    Ok(summary.sink_errors.is_empty())
}
