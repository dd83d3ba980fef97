//! Checkpoints: the moments when every sink has made its events durable.
//!
//! A [`FileOutcome`] says that an object was processed; it does not say that
//! its events survive a crash, since sinks buffer and batch. At a checkpoint
//! the pipeline calls [`Sink::commit`](crate::Sink::commit) on every sink, and
//! only then hands the objects that finished before it to the
//! [`CheckpointListener`]. A listener can therefore act on them as final: the
//! state store marks them done, the SQS worker deletes their messages.
//!
//! ```text
//!  worker: decode → write_batch… → file_done → outcome ──▶ pending
//!  checkpoint (policy due):  take pending → commit every sink → listener(pending)
//! ```
//!
//! Without a listener there are no checkpoints: sinks commit on their own
//! schedule and at [`Sink::finish`](crate::Sink::finish).

use std::time::Duration;

use crate::run::FileOutcome;

/// Hears which objects are settled, at each checkpoint.
///
/// Called from one thread at a time, in checkpoint order. Every outcome in
/// `files` finished before the checkpoint's commit:
///
/// - an `Ok` outcome's events are durable in every sink;
/// - an `Err` outcome failed (possibly in the commit itself); some of its
///   events may be stored, and redoing it is safe for sinks that deduplicate.
pub trait CheckpointListener: Send {
    /// `files` have settled since the previous checkpoint.
    fn checkpoint(&mut self, files: &[FileOutcome]);
}

impl<F: FnMut(&[FileOutcome]) + Send> CheckpointListener for F {
    fn checkpoint(&mut self, files: &[FileOutcome]) {
        self(files)
    }
}

/// When checkpoints happen; the end of a run is always one.
///
/// Each commit has a cost (an fsync, a transaction, a closed Parquet file), so
/// a backfill checkpoints rarely; a queue worker, whose messages wait for it,
/// checkpoints as soon as it runs out of work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Checkpoint once this many objects have finished since the last one.
    pub max_files: usize,
    /// Checkpoint once this long has passed since the last one, at the next
    /// finished object.
    pub interval: Duration,
    /// Also checkpoint whenever no object is queued or in progress.
    pub when_idle: bool,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            max_files: 10_000,
            interval: Duration::from_secs(30),
            when_idle: false,
        }
    }
}
