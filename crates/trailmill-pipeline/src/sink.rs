//! Where events go.
//!
//! # The sink contract
//!
//! - **Batches.** [`Sink::write_batch`] receives the events of one file, in
//!   batches of at most the configured batch size (CPL's `maxEventsPerEmit`),
//!   as borrowed [`Event`] views that are valid only during the call. Each event
//!   carries its exact original bytes in [`Event::raw`]. Batches of one file
//!   arrive in order; batches of different files may interleave. Calls are
//!   serialised: a sink is never entered by two workers at once, so it needs
//!   no locking of its own.
//! - **Files.** After the last batch of a file, [`Sink::file_done`] is called
//!   (also for files with no events). A sink may use it to count.
//! - **Failed files.** A file that fails after some of its events reached the
//!   sinks (a sink's error, a decode error midway through a streamed file)
//!   gets [`Sink::file_failed`] instead of `file_done`: those events are
//!   delivered, and the file will be redone.
//! - **Commit.** [`Sink::commit`] makes every event received so far durable
//!   (commit the transaction; flush, fsync and, for files that appear
//!   atomically, rename) and returns only once they are. The pipeline calls it
//!   at checkpoints and only then reports the files finished before it as
//!   durable: the state store marks them done, the SQS worker deletes their
//!   messages. A checkpoint waits for the files being delivered, so the
//!   pipeline never commits between two batches of one file: every file a
//!   commit covers is whole, done or failed. A sink may also commit on its
//!   own between checkpoints (to bound a transaction or a buffer); that is
//!   always safe, since a file counts as done only after a checkpoint's
//!   commit.
//! - **Finish.** [`Sink::finish`] is called once, after every file, and must
//!   make everything durable, like `commit`, then close the sink. Its
//!   [`SinkStats`] go into the run summary.
//!
//! A crash between checkpoints loses no event that a checkpoint reported
//! durable; files in flight are redone on the next run, and a sink with a
//! unique eventID absorbs the redo (counted in [`SinkStats::duplicates`]).
//!
//! A sink that returns an error fails the file being written (the error names
//! the sink); the run goes on with the next file.

use std::error::Error as StdError;
use std::fmt;

use trailmill_core::Event;

use crate::source::SourceObject;

/// A store or stream that receives events. See the module docs for the contract.
pub trait Sink: Send {
    /// A short label for logs and summaries, such as `sqlite:events.db`.
    fn name(&self) -> String;

    /// Receives a batch of events from `file`.
    fn write_batch(&mut self, file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError>;

    /// Called after the last batch of `file`.
    fn file_done(&mut self, file: &SourceObject) -> Result<(), SinkError> {
        let _ = file;
        Ok(())
    }

    /// Called instead of [`Sink::file_done`] when `file` failed after some
    /// of its events were delivered (to this sink or another). The file will
    /// be redone; a sink that must not store part of a file (one that
    /// records whole files, as the Iceberg ledger does) gives up what it
    /// holds of it here.
    fn file_failed(&mut self, file: &SourceObject) {
        let _ = file;
    }

    /// Makes every event received so far durable, and returns once it is.
    fn commit(&mut self) -> Result<(), SinkError>;

    /// Makes everything durable and closes the sink.
    fn finish(&mut self) -> Result<SinkStats, SinkError>;
}

/// What a sink did over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Events the sink received.
    pub events_received: u64,
    /// Events it stored or wrote.
    pub events_written: u64,
    /// Events it recognised as already present and collapsed (same eventID).
    pub duplicates: u64,
    /// Bytes it wrote, where it knows.
    pub bytes_written: u64,
}

/// A sink failure.
#[derive(Debug)]
pub struct SinkError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl SinkError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            source: None,
        }
    }

    /// A failure described by `message`, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        SinkError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl StdError for SinkError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

impl From<std::io::Error> for SinkError {
    fn from(e: std::io::Error) -> Self {
        SinkError::with_source("I/O error", e)
    }
}

/// A sink that counts and drops events: the baseline for measuring decoding.
#[derive(Debug, Default)]
pub struct NullSink {
    stats: SinkStats,
}

impl Sink for NullSink {
    fn name(&self) -> String {
        "null".into()
    }

    fn write_batch(&mut self, _file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        self.stats.events_received += events.len() as u64;
        self.stats.events_written += events.len() as u64;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        Ok(self.stats.clone())
    }
}
