//! The SQS queue worker: CloudTrail Processing Library semantics on the
//! trailmill pipeline.
//!
//! ```text
//!  pollers (async, on the SQS runtime) ──messages──▶ list() on the pipeline's lister thread
//!     ReceiveMessage, 20 s long polls,              parse → filter → one SourceObject per log key
//!     at most `max_in_flight` messages held          (tag = the message's ledger id)
//!                                                        │
//!  pipeline workers: read() = S3 GET via the ObjectFetcher ◀┘ → decode → sinks
//!                                                        │
//!  checkpoint (every sink committed) ──▶ listener: a message whose files have all
//!     settled is deleted (or, with failures, left to return after its visibility timeout)
//!  heartbeat task: ChangeMessageVisibility on every held message, every visibility/2
//! ```
//!
//! A message is deleted only at a checkpoint that covers every one of its log
//! files: by then each sink's `commit` has made their events durable. A
//! worker that dies at any point therefore loses nothing: its undeleted
//! messages return after their visibility timeout and are processed again,
//! and sinks that deduplicate by `eventID` (SQLite) store each event once.
//!
//! What happens to each message ([`ProgressState`] names CPL's states):
//!
//! | message | outcome |
//! |---|---|
//! | every log file processed, events durable | deleted (`deleteMessage`) |
//! | some file failed | left to return after the visibility timeout; deleted with [`WorkerOptions::delete_on_failure`] |
//! | body not understood | left (an error names the message and why); deleted with `delete_on_failure` |
//! | `CloudTrail validation message.`, `s3:TestEvent` | deleted (`deleteMessage`) |
//! | rejected by the [`MessageFilter`], or no log file selected (digests, other objects, outside the selection) | deleted (`deleteFilteredMessage`) |
//! | still being processed when the worker stops | made visible again at once, for another worker |
//!
//! Unlike CPL, a message that announces no log file (only digests, say) is
//! deleted rather than left to return forever: there is nothing to redo.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use trailmill_core::key::Classified;
use trailmill_core::notification::{self, Format, Notification};
use trailmill_core::{ObjectKey, Selection};
use trailmill_pipeline::{
    CheckpointListener, FileOutcome, ListStats, ObjectData, ProgressReporter, Source, SourceError,
    SourceObject,
};

use crate::AwsError;
use crate::s3::{object_name, split_object_name};
use crate::sqs::{MAX_BATCH, ReceivedMessage, SqsClient};

/// Downloads the objects that messages announce.
///
/// The seam between the queue worker and the S3 client: the worker decides
/// what to read, and the fetcher how (concurrency, retries, timeouts).
pub trait ObjectFetcher: Send + Sync {
    /// Announces that `bucket/key` will be read soon, so that a prefetching
    /// fetcher can start. Called in the order objects are handed to the pipeline.
    fn hint(&self, bucket: &str, key: &str, size: Option<u64>) {
        let _ = (bucket, key, size);
    }

    /// Downloads `bucket/key`, or says why it could not (after any retries).
    fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String>;
}

/// CPL's progress states, which the worker reports through a [`QueueReporter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProgressState {
    /// A `ReceiveMessage` call.
    PollQueue,
    /// Parsing one message's body.
    ParseMessage,
    /// One message's log files, all settled (`success`: none failed).
    ProcessSource,
    /// Downloading one log file.
    DownloadLog,
    /// Decoding one log file and delivering its events.
    ProcessLog,
    /// Deleting a processed (or, with `delete_on_failure`, failed) message.
    DeleteMessage,
    /// Deleting a message the filter rejected or that announced no log file.
    DeleteFilteredMessage,
    /// A failure outside any one step: a visibility heartbeat or a release
    /// that SQS refused.
    UncaughtException,
}

impl ProgressState {
    /// Every state, in CPL's order.
    pub const ALL: [ProgressState; 8] = [
        ProgressState::PollQueue,
        ProgressState::ParseMessage,
        ProgressState::ProcessSource,
        ProgressState::DownloadLog,
        ProgressState::ProcessLog,
        ProgressState::DeleteMessage,
        ProgressState::DeleteFilteredMessage,
        ProgressState::UncaughtException,
    ];

    /// CPL's name for the state, such as `pollQueue`.
    pub fn name(self) -> &'static str {
        match self {
            ProgressState::PollQueue => "pollQueue",
            ProgressState::ParseMessage => "parseMessage",
            ProgressState::ProcessSource => "processSource",
            ProgressState::DownloadLog => "downloadLog",
            ProgressState::ProcessLog => "processLog",
            ProgressState::DeleteMessage => "deleteMessage",
            ProgressState::DeleteFilteredMessage => "deleteFilteredMessage",
            ProgressState::UncaughtException => "uncaughtException",
        }
    }
}

impl std::fmt::Display for ProgressState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One step's end, as a [`QueueReporter`] hears it.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// Which step.
    pub state: ProgressState,
    /// Whether it succeeded.
    pub success: bool,
    /// The SQS message it concerns, if one.
    pub message_id: Option<&'a str>,
    /// The object it concerns (`s3://bucket/key`), if one.
    pub object: Option<&'a str>,
    /// A count (messages received, files in a message) or a failure's reason.
    pub detail: Option<&'a str>,
}

/// Hears the end of every step (CPL's `ProgressReporter`). Called from
/// several threads at once.
pub trait QueueReporter: Send + Sync {
    /// A step ended.
    fn report(&self, progress: &Progress<'_>);
}

impl<F: Fn(&Progress<'_>) + Send + Sync> QueueReporter for F {
    fn report(&self, progress: &Progress<'_>) {
        self(progress)
    }
}

/// What a [`MessageFilter`] sees of a message.
#[derive(Debug)]
pub struct MessageInfo<'a> {
    /// The SQS message ID.
    pub message_id: &'a str,
    /// The message's system attributes (`ApproximateReceiveCount`,
    /// `SentTimestamp`, `SenderId`, …).
    pub attributes: &'a HashMap<String, String>,
    /// The body's shape.
    pub format: Format,
    /// The log files that would be processed (after the key selection).
    pub objects: &'a [SourceObject],
}

impl MessageInfo<'_> {
    /// The account of the first log file, from its key (CPL's `accountId`
    /// attribute).
    pub fn account(&self) -> Option<&str> {
        self.objects.iter().find_map(|o| match o.classify() {
            Classified::Trail(k) => Some(k.file.account),
            Classified::Other { .. } => None,
        })
    }

    /// How many times SQS has handed out the message, this time included.
    pub fn receive_count(&self) -> Option<u64> {
        self.attributes.get("ApproximateReceiveCount")?.parse().ok()
    }

    /// When the message was sent, in Unix milliseconds.
    pub fn sent_timestamp(&self) -> Option<i64> {
        self.attributes.get("SentTimestamp")?.parse().ok()
    }
}

/// Decides from a message whether to process it (CPL's `SourceFilter`, which
/// sees the message's attributes). A rejected message is deleted.
pub trait MessageFilter: Send + Sync {
    /// True to process `message`.
    fn accept(&self, message: &MessageInfo<'_>) -> bool;
}

impl<F: Fn(&MessageInfo<'_>) -> bool + Send + Sync> MessageFilter for F {
    fn accept(&self, message: &MessageInfo<'_>) -> bool {
        self(message)
    }
}

/// How the worker polls and deletes.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The queue's URL.
    pub queue_url: String,
    /// How long a received message stays hidden from other workers; the
    /// heartbeat renews it while the message is held.
    pub visibility_timeout: Duration,
    /// The long-poll wait of each `ReceiveMessage` (at most 20 s).
    pub wait_time: Duration,
    /// Concurrent `ReceiveMessage` calls.
    pub pollers: usize,
    /// Most messages held (received and not yet deleted or released) at once,
    /// so that a worker does not hide more of the queue than it can process.
    pub max_in_flight: usize,
    /// Delete messages whose processing failed (CPL's `deleteMessageUponFailure`).
    pub delete_on_failure: bool,
    /// Stop once the queue holds no message in any state and this worker
    /// holds none, instead of polling until stopped.
    pub until_empty: bool,
    /// How often held messages' visibility is renewed (default: half the
    /// visibility timeout).
    pub heartbeat: Option<Duration>,
}

impl WorkerOptions {
    /// Options for `queue_url` with CPL's defaults: 20 s polls, a 30 s
    /// visibility timeout, failed messages left in the queue.
    pub fn new(queue_url: impl Into<String>) -> Self {
        WorkerOptions {
            queue_url: queue_url.into(),
            visibility_timeout: Duration::from_secs(30),
            wait_time: crate::sqs::MAX_WAIT,
            pollers: 1,
            max_in_flight: 64,
            delete_on_failure: false,
            until_empty: false,
            heartbeat: None,
        }
    }

    fn heartbeat_period(&self) -> Duration {
        self.heartbeat
            .unwrap_or(self.visibility_timeout / 2)
            .max(Duration::from_millis(500))
    }
}

/// What the worker did with messages, for a summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages received.
    pub received: u64,
    /// Messages deleted after their files were processed, or as validation
    /// or test messages, or after a failure with `delete_on_failure`.
    pub deleted: u64,
    /// Messages deleted because the filter rejected them or they announced no
    /// log file.
    pub deleted_filtered: u64,
    /// Messages left in the queue after a failure, to return after their
    /// visibility timeout.
    pub left_failed: u64,
    /// Messages whose body was not understood.
    pub unparsable: u64,
    /// Held messages made visible again when the worker stopped.
    pub released: u64,
    /// Log files handed to the pipeline.
    pub objects: u64,
    /// Failed SQS calls (receive, delete, heartbeat, release).
    pub sqs_errors: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    deleted: AtomicU64,
    deleted_filtered: AtomicU64,
    left_failed: AtomicU64,
    unparsable: AtomicU64,
    released: AtomicU64,
    objects: AtomicU64,
    sqs_errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A message whose files are in the pipeline.
struct Held {
    message_id: String,
    receipt_handle: String,
    /// `s3://bucket/key` of each log file, for the deletion log.
    names: Vec<String>,
    /// Files not yet settled at a checkpoint.
    unsettled: usize,
    /// The first failure among its files, and how many failed.
    first_failure: Option<String>,
    failed: usize,
}

#[derive(Default)]
struct Ledger {
    next_tag: u64,
    held: HashMap<u64, Held>,
}

/// Everything the source, its listener and its background tasks share.
struct Inner {
    sqs: SqsClient,
    options: WorkerOptions,
    fetcher: Box<dyn ObjectFetcher>,
    filter: Option<Box<dyn MessageFilter>>,
    reporter: Option<Box<dyn QueueReporter>>,
    deletion_log: Option<Mutex<File>>,
    stop: Arc<AtomicBool>,
    ledger: Mutex<Ledger>,
    /// One permit per message the worker may still take on.
    capacity: Arc<Semaphore>,
    counters: Counters,
}

/// Optional parts of a [`QueueSource`].
#[derive(Default)]
pub struct WorkerHooks {
    /// Decides per message whether to process it.
    pub filter: Option<Box<dyn MessageFilter>>,
    /// Hears every step.
    pub reporter: Option<Box<dyn QueueReporter>>,
    /// A file that gets one JSON line per message, just before the worker
    /// asks SQS to delete it: `{"time_ms":…,"message_id":…,"objects":[…]}`.
    /// An audit trail of what was deleted when.
    pub deletion_log: Option<File>,
}

impl WorkerHooks {
    /// Opens (appending to) the deletion log at `path`.
    pub fn deletion_log_at(mut self, path: &Path) -> Result<Self, AwsError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| AwsError::new(format!("deletion log {}", path.display()), e))?;
        self.deletion_log = Some(file);
        Ok(self)
    }
}

/// A [`Source`] fed by an SQS queue: see the [module docs](self).
///
/// Give the pipeline its [`QueueSource::checkpoint_listener`] (which deletes
/// messages) and [`QueueSource::progress_reporter`], the same stop flag, and a
/// checkpoint policy with `when_idle`; after the run, call
/// [`QueueSource::finish`] to release what is still held.
pub struct QueueSource {
    inner: Arc<Inner>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl QueueSource {
    /// A worker on `options.queue_url` that reads objects with `fetcher` and
    /// stops polling when `stop` is set. Starts the visibility heartbeat.
    pub fn new(
        sqs: SqsClient,
        options: WorkerOptions,
        fetcher: Box<dyn ObjectFetcher>,
        hooks: WorkerHooks,
        stop: Arc<AtomicBool>,
    ) -> QueueSource {
        let capacity = Arc::new(Semaphore::new(options.max_in_flight.max(1)));
        let inner = Arc::new(Inner {
            sqs,
            options,
            fetcher,
            filter: hooks.filter,
            reporter: hooks.reporter,
            deletion_log: hooks.deletion_log.map(Mutex::new),
            stop,
            ledger: Mutex::new(Ledger {
                next_tag: 1,
                held: HashMap::new(),
            }),
            capacity,
            counters: Counters::default(),
        });
        let weak = Arc::downgrade(&inner);
        let period = inner.options.heartbeat_period();
        let heartbeat = inner.sqs.handle().spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await; // the first tick is immediate
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.heartbeat().await;
            }
        });
        QueueSource { inner, heartbeat }
    }

    /// The listener that deletes settled messages; give it to
    /// [`trailmill_pipeline::PipelineBuilder::on_checkpoint`].
    pub fn checkpoint_listener(&self) -> impl CheckpointListener + 'static {
        Deleter {
            inner: self.inner.clone(),
        }
    }

    /// Reports `processLog` for each finished file; give it to
    /// [`trailmill_pipeline::PipelineBuilder::progress`] (or call it from
    /// your own reporter).
    pub fn progress_reporter(&self) -> QueueProgress {
        QueueProgress {
            inner: self.inner.clone(),
        }
    }

    /// Ends the worker after the pipeline's run: stops the heartbeat and makes
    /// every message still held visible again, so another worker takes it at
    /// once. Returns what the worker did.
    pub fn finish(self) -> QueueStats {
        self.heartbeat.abort();
        let inner = &self.inner;
        let held: Vec<Held> = {
            let mut ledger = inner.lock_ledger();
            ledger.held.drain().map(|(_, h)| h).collect()
        };
        inner.release(
            held.iter()
                .map(|h| (h.message_id.as_str(), h.receipt_handle.as_str())),
        );
        inner.stats()
    }

    /// What the worker has done so far.
    pub fn stats(&self) -> QueueStats {
        self.inner.stats()
    }
}

impl Drop for QueueSource {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// The S3 source's prefetching fetcher: announced objects download ahead of
/// the pipeline's workers, with bounded concurrency and retries.
impl ObjectFetcher for crate::fetch::Fetcher {
    fn hint(&self, bucket: &str, key: &str, size: Option<u64>) {
        crate::fetch::Fetcher::hint(self, bucket, key, size);
    }

    fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        crate::fetch::Fetcher::get(self, bucket, key)
            .map(|fetched| fetched.bytes)
            .map_err(|e| e.reason)
    }
}

impl Source for QueueSource {
    fn list(
        &self,
        selection: &Selection,
        emit: &mut dyn FnMut(SourceObject) -> ControlFlow<()>,
    ) -> ListStats {
        let inner = &self.inner;
        let mut stats = ListStats::default();
        // Pollers run on the SQS runtime and hand messages over a channel, so
        // that parsing and the (blocking) hand-over to the pipeline happen
        // here, never on the runtime.
        let (tx, rx) = crossbeam_channel::unbounded::<Polled>();
        let pollers: Vec<_> = (0..inner.options.pollers.max(1))
            .map(|_| {
                let inner = inner.clone();
                let tx = tx.clone();
                inner
                    .sqs
                    .handle()
                    .clone()
                    .spawn(async move { inner.poll(tx).await })
            })
            .collect();
        drop(tx);
        let mut flow = ControlFlow::Continue(());
        while flow.is_continue() && !inner.stopped() {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Polled::Messages(messages)) => {
                    let mut messages = messages.into_iter();
                    for m in messages.by_ref() {
                        flow = inner.admit(m, selection, emit, &mut stats);
                        if flow.is_break() {
                            break;
                        }
                    }
                    // Taken from the queue but not admitted: let others have them.
                    inner.release_unadmitted(messages.collect());
                }
                Ok(Polled::Empty) => {
                    if inner.options.until_empty && inner.drained() {
                        break;
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        for p in &pollers {
            p.abort();
        }
        // A poll that finished before the abort may have left messages behind.
        inner.sqs.block_on(async {
            for p in pollers {
                let _ = p.await;
            }
        });
        let leftover: Vec<ReceivedMessage> = rx
            .try_iter()
            .flat_map(|p| match p {
                Polled::Messages(m) => m,
                Polled::Empty => Vec::new(),
            })
            .collect();
        inner.release_unadmitted(leftover);
        stats
    }

    fn read(&self, object: &SourceObject) -> Result<ObjectData, SourceError> {
        let inner = &self.inner;
        let message_id = inner.message_id(object.tag);
        let (bucket, key) = split_object_name(&object.name)
            .ok_or_else(|| SourceError::new(&object.name, "not an s3://bucket/key name"))?;
        let result = inner.fetcher.get(bucket, key);
        inner.report(Progress {
            state: ProgressState::DownloadLog,
            success: result.is_ok(),
            message_id: message_id.as_deref(),
            object: Some(&object.name),
            detail: result.as_ref().err().map(String::as_str),
        });
        result
            .map(ObjectData::Owned)
            .map_err(|reason| SourceError::new(&object.name, reason))
    }
}

/// What a poller hands to the lister.
enum Polled {
    Messages(Vec<ReceivedMessage>),
    /// A poll returned nothing.
    Empty,
}

impl Inner {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn lock_ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn report(&self, progress: Progress<'_>) {
        if let Some(r) = &self.reporter {
            r.report(&progress);
        }
    }

    fn message_id(&self, tag: u64) -> Option<String> {
        self.lock_ledger()
            .held
            .get(&tag)
            .map(|h| h.message_id.clone())
    }

    fn stats(&self) -> QueueStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        QueueStats {
            received: get(&c.received),
            deleted: get(&c.deleted),
            deleted_filtered: get(&c.deleted_filtered),
            left_failed: get(&c.left_failed),
            unparsable: get(&c.unparsable),
            released: get(&c.released),
            objects: get(&c.objects),
            sqs_errors: get(&c.sqs_errors),
        }
    }

    /// One poller: receive while there is room for more messages.
    async fn poll(self: Arc<Self>, tx: crossbeam_channel::Sender<Polled>) {
        let opts = &self.options;
        let batch = MAX_BATCH.min(opts.max_in_flight.max(1)) as u32;
        let mut backoff = Duration::from_millis(200);
        loop {
            // Room for a whole batch before asking for one, so that the worker
            // never hides messages it cannot start on.
            let Ok(permits) = self.capacity.clone().acquire_many_owned(batch).await else {
                return;
            };
            let result = self
                .sqs
                .receive(
                    &opts.queue_url,
                    batch as usize,
                    opts.wait_time,
                    opts.visibility_timeout,
                )
                .await;
            match result {
                Ok(messages) => {
                    backoff = Duration::from_millis(200);
                    let n = messages.len();
                    self.counters
                        .received
                        .fetch_add(n as u64, Ordering::Relaxed);
                    self.report(Progress {
                        state: ProgressState::PollQueue,
                        success: true,
                        message_id: None,
                        object: None,
                        detail: Some(&format!("{n} messages")),
                    });
                    // Each received message keeps one permit until it is
                    // deleted or released; the rest go back now.
                    permits.forget();
                    self.capacity
                        .add_permits((batch as usize).saturating_sub(n));
                    let polled = if n == 0 {
                        Polled::Empty
                    } else {
                        Polled::Messages(messages)
                    };
                    if tx.send(polled).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    drop(permits);
                    bump(&self.counters.sqs_errors);
                    let reason = e.to_string();
                    tracing::warn!("{reason}; retrying in {backoff:?}");
                    self.report(Progress {
                        state: ProgressState::PollQueue,
                        success: false,
                        message_id: None,
                        object: None,
                        detail: Some(&reason),
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// True when this worker holds nothing and the queue is empty in every
    /// state (so no message can come back to it).
    fn drained(&self) -> bool {
        if !self.lock_ledger().held.is_empty() {
            return false;
        }
        match self.sqs.block_on(self.sqs.counts(&self.options.queue_url)) {
            Ok(counts) => {
                tracing::debug!(?counts, "queue counts after an empty poll");
                counts.is_empty()
            }
            Err(e) => {
                bump(&self.counters.sqs_errors);
                tracing::warn!("{e}");
                false
            }
        }
    }

    /// Parses one message and hands its log files to the pipeline, or deals
    /// with it at once (delete, or leave for redelivery).
    fn admit(
        &self,
        message: ReceivedMessage,
        selection: &Selection,
        emit: &mut dyn FnMut(SourceObject) -> ControlFlow<()>,
        stats: &mut ListStats,
    ) -> ControlFlow<()> {
        let id = message.message_id.as_str();
        let parsed = notification::parse(id, &message.body);
        self.report(Progress {
            state: ProgressState::ParseMessage,
            success: parsed.is_ok(),
            message_id: Some(id),
            object: None,
            detail: parsed.as_ref().err().map(|e| e.reason.as_str()),
        });
        let (format, announced, other_events) = match parsed {
            Err(e) => {
                bump(&self.counters.unparsable);
                tracing::error!("{e}");
                if self.options.delete_on_failure {
                    self.delete_now(&message, ProgressState::DeleteMessage, &[]);
                } else {
                    self.leave(&message);
                }
                return ControlFlow::Continue(());
            }
            Ok(Notification::Validation) => {
                tracing::info!(
                    sqs_message = id,
                    "CloudTrail validation message: deleting it"
                );
                self.delete_now(&message, ProgressState::DeleteMessage, &[]);
                return ControlFlow::Continue(());
            }
            Ok(Notification::TestEvent { format }) => {
                tracing::info!(
                    sqs_message = id,
                    format = format.name(),
                    "s3:TestEvent: deleting it"
                );
                self.delete_now(&message, ProgressState::DeleteMessage, &[]);
                return ControlFlow::Continue(());
            }
            Ok(Notification::Objects {
                format,
                objects,
                other_events,
            }) => (format, objects, other_events),
        };
        if other_events > 0 {
            tracing::debug!(
                sqs_message = id,
                other_events,
                "S3 events other than ObjectCreated passed over"
            );
        }
        // Which announced keys are log files to read: CloudTrail keys of log
        // (or, if selected, Insights) files within the selection.
        let mut objects = Vec::with_capacity(announced.len());
        for a in announced {
            match ObjectKey::classify(&a.key) {
                Classified::Trail(k) => {
                    if let Err(why) = selection.check(&a.key, &k) {
                        stats.count_skip(why);
                        continue;
                    }
                }
                Classified::Other { reason } => {
                    let name = object_name(&a.bucket, &a.key);
                    match stats.admit_misnamed(&name, &a.key, &reason, selection) {
                        Some(true) => {}
                        Some(false) => continue,
                        None => {
                            stats.skipped_other += 1;
                            continue;
                        }
                    }
                }
            }
            objects.push(SourceObject {
                name: object_name(&a.bucket, &a.key),
                key: a.key,
                size: a.size,
                version: a.etag,
                tag: 0,
            });
        }
        let accepted = self.filter.as_ref().is_none_or(|f| {
            f.accept(&MessageInfo {
                message_id: id,
                attributes: &message.attributes,
                format,
                objects: &objects,
            })
        });
        if !accepted || objects.is_empty() {
            if !accepted {
                stats.skipped_by_filter += objects.len() as u64;
            }
            tracing::debug!(
                sqs_message = id,
                accepted,
                "message filtered out or without log files: deleting it"
            );
            self.delete_now(&message, ProgressState::DeleteFilteredMessage, &[]);
            return ControlFlow::Continue(());
        }
        // Into the ledger before the first file reaches a worker, which may
        // finish it before this loop ends.
        let tag = {
            let mut ledger = self.lock_ledger();
            let tag = ledger.next_tag;
            ledger.next_tag += 1;
            ledger.held.insert(
                tag,
                Held {
                    message_id: message.message_id.clone(),
                    receipt_handle: message.receipt_handle.clone(),
                    names: objects.iter().map(|o| o.name.clone()).collect(),
                    unsettled: objects.len(),
                    first_failure: None,
                    failed: 0,
                },
            );
            tag
        };
        for mut object in objects {
            object.tag = tag;
            if let Some((bucket, key)) = split_object_name(&object.name) {
                self.fetcher.hint(bucket, key, object.size);
            }
            stats.listed += 1;
            bump(&self.counters.objects);
            emit(object)?;
        }
        ControlFlow::Continue(())
    }

    /// A message that failed and is not deleted: it returns after its
    /// visibility timeout. Its permit is freed.
    fn leave(&self, message: &ReceivedMessage) {
        bump(&self.counters.left_failed);
        tracing::warn!(
            sqs_message = message.message_id,
            "left in the queue: it returns after the visibility timeout"
        );
        self.capacity.add_permits(1);
    }

    /// Deletes one message that was never in the ledger, and frees its permit.
    fn delete_now(&self, message: &ReceivedMessage, state: ProgressState, names: &[String]) {
        self.delete(
            &[(
                message.message_id.as_str(),
                message.receipt_handle.as_str(),
                names,
            )],
            state,
        );
        self.capacity.add_permits(1);
    }

    /// Deletes messages in batches, logging each to the deletion log first,
    /// and reports each deletion.
    fn delete(&self, messages: &[(&str, &str, &[String])], state: ProgressState) {
        for chunk in messages.chunks(MAX_BATCH) {
            if let Some(log) = &self.deletion_log {
                let time_ms = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let mut text = String::new();
                for (id, _, names) in chunk {
                    text.push_str(
                        &serde_json::json!({"time_ms": time_ms, "message_id": id, "objects": names})
                            .to_string(),
                    );
                    text.push('\n');
                }
                let mut file = log.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
                    tracing::warn!("cannot write the deletion log: {e}");
                }
            }
            let handles: Vec<&str> = chunk.iter().map(|(_, h, _)| *h).collect();
            let result = self
                .sqs
                .block_on(self.sqs.delete_batch(&self.options.queue_url, &handles));
            let failed: HashMap<usize, String> = match result {
                Ok(failures) => failures.into_iter().map(|f| (f.index, f.reason)).collect(),
                Err(e) => (0..chunk.len()).map(|i| (i, e.to_string())).collect(),
            };
            for (i, (id, _, _)) in chunk.iter().enumerate() {
                let failure = failed.get(&i);
                match failure {
                    None if state == ProgressState::DeleteFilteredMessage => {
                        bump(&self.counters.deleted_filtered)
                    }
                    None => bump(&self.counters.deleted),
                    Some(reason) => {
                        bump(&self.counters.sqs_errors);
                        tracing::warn!(
                            sqs_message = id,
                            "delete failed, so the message will be processed again: {reason}"
                        );
                    }
                }
                self.report(Progress {
                    state,
                    success: failure.is_none(),
                    message_id: Some(*id),
                    object: None,
                    detail: failure.map(String::as_str),
                });
            }
        }
    }

    /// Makes held messages visible again, for another worker.
    fn release<'a>(&self, messages: impl Iterator<Item = (&'a str, &'a str)>) {
        let messages: Vec<(&str, &str)> = messages.collect();
        for chunk in messages.chunks(MAX_BATCH) {
            let handles: Vec<&str> = chunk.iter().map(|(_, h)| *h).collect();
            let result = self.sqs.block_on(self.sqs.change_visibility_batch(
                &self.options.queue_url,
                &handles,
                Duration::ZERO,
            ));
            let failed: HashMap<usize, String> = match result {
                Ok(failures) => failures.into_iter().map(|f| (f.index, f.reason)).collect(),
                Err(e) => (0..chunk.len()).map(|i| (i, e.to_string())).collect(),
            };
            for (i, (id, _)) in chunk.iter().enumerate() {
                match failed.get(&i) {
                    None => {
                        bump(&self.counters.released);
                        tracing::info!(sqs_message = id, "released unfinished for another worker");
                    }
                    Some(reason) => {
                        bump(&self.counters.sqs_errors);
                        self.report(Progress {
                            state: ProgressState::UncaughtException,
                            success: false,
                            message_id: Some(*id),
                            object: None,
                            detail: Some(&format!("release failed: {reason}")),
                        });
                    }
                }
            }
        }
    }

    /// Messages received but never admitted (the listing stopped first).
    fn release_unadmitted(&self, messages: Vec<ReceivedMessage>) {
        if messages.is_empty() {
            return;
        }
        self.release(
            messages
                .iter()
                .map(|m| (m.message_id.as_str(), m.receipt_handle.as_str())),
        );
        self.capacity.add_permits(messages.len());
    }

    /// Renews the visibility of every held message.
    async fn heartbeat(&self) {
        let held: Vec<(String, String)> = self
            .lock_ledger()
            .held
            .values()
            .map(|h| (h.message_id.clone(), h.receipt_handle.clone()))
            .collect();
        for chunk in held.chunks(MAX_BATCH) {
            let handles: Vec<&str> = chunk.iter().map(|(_, h)| h.as_str()).collect();
            let result = self
                .sqs
                .change_visibility_batch(
                    &self.options.queue_url,
                    &handles,
                    self.options.visibility_timeout,
                )
                .await;
            let failed: Vec<(usize, String)> = match result {
                Ok(failures) => failures.into_iter().map(|f| (f.index, f.reason)).collect(),
                Err(e) => (0..chunk.len()).map(|i| (i, e.to_string())).collect(),
            };
            tracing::debug!(
                extended = chunk.len() - failed.len(),
                failed = failed.len(),
                "visibility heartbeat"
            );
            for (i, reason) in failed {
                bump(&self.counters.sqs_errors);
                let id = chunk.get(i).map(|(id, _)| id.as_str());
                self.report(Progress {
                    state: ProgressState::UncaughtException,
                    success: false,
                    message_id: id,
                    object: None,
                    detail: Some(&format!("visibility heartbeat failed: {reason}")),
                });
            }
        }
    }

    /// Records the files settled at a checkpoint, then deletes (or leaves)
    /// every message whose files have now all settled.
    fn settle(&self, files: &[FileOutcome]) {
        let mut done = Vec::new();
        {
            let mut ledger = self.lock_ledger();
            for f in files {
                let Some(held) = ledger.held.get_mut(&f.object.tag) else {
                    continue;
                };
                held.unsettled -= 1;
                if let Err(e) = &f.result {
                    held.failed += 1;
                    held.first_failure.get_or_insert_with(|| e.to_string());
                }
                if held.unsettled == 0 {
                    done.extend(ledger.held.remove(&f.object.tag));
                }
            }
        }
        if done.is_empty() {
            return;
        }
        let mut delete = Vec::new();
        for h in &done {
            let files = h.names.len().to_string();
            self.report(Progress {
                state: ProgressState::ProcessSource,
                success: h.failed == 0,
                message_id: Some(&h.message_id),
                object: None,
                detail: Some(h.first_failure.as_deref().unwrap_or(&files)),
            });
            if h.failed > 0 && self.options.delete_on_failure {
                tracing::warn!(
                    sqs_message = h.message_id,
                    "{} of {} files failed (first: {}); deleting the message anyway (delete on failure)",
                    h.failed,
                    h.names.len(),
                    h.first_failure.as_deref().unwrap_or_default()
                );
            }
            if h.failed == 0 || self.options.delete_on_failure {
                delete.push((
                    h.message_id.as_str(),
                    h.receipt_handle.as_str(),
                    h.names.as_slice(),
                ));
            } else {
                bump(&self.counters.left_failed);
                tracing::warn!(
                    sqs_message = h.message_id,
                    "{} of {} files failed (first: {}); the message is left to return after the visibility timeout",
                    h.failed,
                    h.names.len(),
                    h.first_failure.as_deref().unwrap_or_default()
                );
            }
        }
        self.delete(&delete, ProgressState::DeleteMessage);
        self.capacity.add_permits(done.len());
    }
}

/// Deletes messages at checkpoints; see [`QueueSource::checkpoint_listener`].
struct Deleter {
    inner: Arc<Inner>,
}

impl CheckpointListener for Deleter {
    fn checkpoint(&mut self, files: &[FileOutcome]) {
        self.inner.settle(files);
    }
}

/// Reports `processLog` for each finished file; see
/// [`QueueSource::progress_reporter`].
pub struct QueueProgress {
    inner: Arc<Inner>,
}

impl ProgressReporter for QueueProgress {
    fn finished(&mut self, outcome: &FileOutcome) {
        let message_id = self.inner.message_id(outcome.object.tag);
        let reason = outcome.result.as_ref().err().map(|e| e.kind.to_string());
        self.inner.report(Progress {
            state: ProgressState::ProcessLog,
            success: outcome.result.is_ok(),
            message_id: message_id.as_deref(),
            object: Some(&outcome.object.name),
            detail: reason.as_deref(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_carry_cpl_names() {
        let names: Vec<&str> = ProgressState::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "pollQueue",
                "parseMessage",
                "processSource",
                "downloadLog",
                "processLog",
                "deleteMessage",
                "deleteFilteredMessage",
                "uncaughtException"
            ]
        );
    }

    #[test]
    fn message_info_reads_account_and_attributes() {
        let attributes = HashMap::from([
            ("ApproximateReceiveCount".to_owned(), "3".to_owned()),
            ("SentTimestamp".to_owned(), "1704067200123".to_owned()),
        ]);
        let objects = [SourceObject::new(
            "s3://b/k",
            "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/01/123456789012_CloudTrail_us-east-1_20240101T0005Z_a1b2.json.gz",
        )];
        let info = MessageInfo {
            message_id: "m",
            attributes: &attributes,
            format: Format::S3EventSqs,
            objects: &objects,
        };
        assert_eq!(info.account(), Some("123456789012"));
        assert_eq!(info.receive_count(), Some(3));
        assert_eq!(info.sent_timestamp(), Some(1_704_067_200_123));
    }
}
