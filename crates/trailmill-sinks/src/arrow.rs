//! Events as a stream of Arrow record batches, for a consumer on another
//! thread: the sink under Python's `trailmill.scan`.
//!
//! [`arrow_stream`] returns an [`ArrowStream`], which makes the
//! [`ArrowStreamSink`]s to give a [`trailmill_pipeline::Pipeline`] (one per
//! worker, with [`PipelineBuilder::sink_per_worker`], so that rows are built
//! on every core), and the [`Receiver`] their batches arrive on; it is
//! disconnected once every sink is dropped. Each batch has the lake's columns ([`crate::parquet::schema_for`]) and
//! holds at most [`StreamOptions::batch_rows`] rows or about
//! [`StreamOptions::batch_bytes`] bytes of records. The channel holds at
//! most [`StreamOptions::depth`] batches: a slow consumer stalls the
//! pipeline instead of letting batches pile up, so memory stays bounded.
//!
//! Every event is a row: nothing is deduplicated (a scan reads what the
//! files hold). A commit hands the buffered rows over, so at every
//! checkpoint and at the end the consumer has every event received. If the
//! receiver is dropped, the next hand-over fails and the pipeline reports
//! the file being written as failed.

use crossbeam_channel::{Receiver, Sender};
use trailmill_core::Event;
use trailmill_pipeline::{Sink, SinkError, SinkStats, SourceObject};

use arrow_array::RecordBatch;

use crate::parquet::{EventBatchBuilder, ParquetOptions};

#[cfg(doc)]
use trailmill_pipeline::PipelineBuilder;

/// Batch sizes and depth of an [`arrow_stream`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Which columns the batches hold (only [`ParquetOptions::json_columns`]
    /// and [`ParquetOptions::raw_column`] matter here).
    pub columns: ParquetOptions,
    /// A batch is handed over once it holds this many rows.
    pub batch_rows: usize,
    /// … or once its records' original bytes reach this.
    pub batch_bytes: usize,
    /// Batches the channel holds before the sink waits for the consumer.
    pub depth: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            columns: ParquetOptions::default(),
            batch_rows: 8192,
            batch_bytes: 8 << 20,
            depth: 2,
        }
    }
}

/// The sending end of an [`arrow_stream`]. See the module docs.
pub struct ArrowStreamSink {
    builder: EventBatchBuilder,
    tx: Sender<RecordBatch>,
    batch_rows: usize,
    batch_bytes: usize,
    stats: SinkStats,
}

/// Makes the sinks of one stream. See the module docs.
#[derive(Clone)]
pub struct ArrowStream {
    opts: StreamOptions,
    tx: Sender<RecordBatch>,
}

/// A stream of record batches: the maker of its sinks, and the receiver
/// their batches arrive on, in order of arrival.
pub fn arrow_stream(opts: StreamOptions) -> (ArrowStream, Receiver<RecordBatch>) {
    let (tx, rx) = crossbeam_channel::bounded(opts.depth.max(1));
    (ArrowStream { opts, tx }, rx)
}

impl ArrowStream {
    /// The schema of every batch of this stream.
    pub fn schema(&self) -> arrow_schema::SchemaRef {
        crate::parquet::schema_for(&self.opts.columns)
    }

    /// A sink that sends to this stream.
    pub fn sink(&self) -> ArrowStreamSink {
        ArrowStreamSink {
            builder: EventBatchBuilder::new(&self.opts.columns),
            tx: self.tx.clone(),
            batch_rows: self.opts.batch_rows.max(1),
            batch_bytes: self.opts.batch_bytes.max(1),
            stats: SinkStats::default(),
        }
    }
}

impl ArrowStreamSink {
    /// Hands the buffered rows to the consumer, waiting for room.
    fn hand_over(&mut self) -> Result<(), SinkError> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let batch = self
            .builder
            .finish()
            .map_err(|e| SinkError::with_source("arrow: cannot build a record batch", e))?;
        self.stats.bytes_written += batch.get_array_memory_size() as u64;
        self.tx
            .send(batch)
            .map_err(|_| SinkError::new("arrow: the reader was closed"))
    }
}

impl Sink for ArrowStreamSink {
    fn name(&self) -> String {
        "arrow".into()
    }

    fn write_batch(&mut self, file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        for e in events {
            self.builder.append(e, &file.name);
            if self.builder.len() >= self.batch_rows
                || self.builder.buffered_bytes() >= self.batch_bytes
            {
                self.hand_over()?;
            }
        }
        self.stats.events_received += events.len() as u64;
        self.stats.events_written += events.len() as u64;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.hand_over()
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        self.hand_over()?;
        Ok(self.stats.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use arrow_array::{Array, StringArray};
    use trailmill_pipeline::{LocalSource, Pipeline};

    use super::*;

    fn trail() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/trail")
    }

    /// Every event of the bundled trail arrives once, in batches within the
    /// row limit, with the lake's schema and each record's exact text.
    #[test]
    fn a_stream_delivers_every_event_once_in_bounded_batches() {
        let (stream, rx) = arrow_stream(StreamOptions {
            batch_rows: 37,
            ..StreamOptions::default()
        });
        let schema = stream.schema();
        let reader = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
        let summary = Pipeline::builder()
            .threads(3)
            .sink_per_worker(move || Box::new(stream.sink()))
            .build()
            .run(&LocalSource::new([trail()]));
        assert!(summary.is_success(), "{summary:?}");
        let batches = reader.join().unwrap();
        let mut ids = Vec::new();
        for batch in &batches {
            assert!(batch.num_rows() <= 37 && batch.num_rows() > 0);
            assert_eq!(batch.schema(), schema);
            let id = batch.column_by_name("event_id").unwrap();
            let id = id.as_any().downcast_ref::<StringArray>().unwrap();
            let raw = batch.column_by_name("raw").unwrap();
            let raw = raw.as_any().downcast_ref::<StringArray>().unwrap();
            for row in 0..batch.num_rows() {
                let record: serde_json::Value = serde_json::from_str(raw.value(row)).unwrap();
                assert_eq!(record["eventID"], id.value(row));
                ids.push(id.value(row).to_owned());
            }
        }
        assert_eq!(ids.len(), 400);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 400);
        assert_eq!(summary.sinks[0].1.events_written, 400);
    }

    /// A reader that goes away fails the files still being written, with a
    /// reason, instead of blocking the pipeline.
    #[test]
    fn a_closed_reader_fails_the_files_being_written() {
        let (stream, rx) = arrow_stream(StreamOptions {
            batch_rows: 1,
            ..StreamOptions::default()
        });
        drop(rx);
        let summary = Pipeline::builder()
            .threads(2)
            .sink_per_worker(move || Box::new(stream.sink()))
            .build()
            .run(&LocalSource::new([trail()]));
        assert_eq!(summary.files_failed, 16);
    }
}
