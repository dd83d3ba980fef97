//! trailmill: process AWS CloudTrail logs at the speed of the hardware.
//!
//! This facade re-exports the crates that make up the library:
//!
//! - [`core`] (`trailmill-core`): object keys ([`key`]), the event model
//!   ([`Event`]), the SIMD decoder ([`Decoder`]) and filters. Pure: no I/O
//!   runtime, no AWS.
//! - [`pipeline`] (`trailmill-pipeline`): sources ([`LocalSource`]), the
//!   parallel [`Pipeline`] and the [`Sink`] contract.
//! - [`sinks`] (`trailmill-sinks`): JSON Lines, SQLite, a Hive-partitioned
//!   Parquet lake (feature `parquet`) and PostgreSQL (feature `postgres`),
//!   each deduplicating by `eventID` where the store can.
//! - [`state`] (`trailmill-state`): the state store that makes a backfill
//!   resumable: a source filter that skips done objects, and a checkpoint
//!   listener that records them.
//!
//! # Embedding
//!
//! ```no_run
//! use trailmill::{EventFilter, LocalSource, Pipeline, sinks::SqliteSink};
//!
//! let pipeline = Pipeline::builder()
//!     .event_filter(EventFilter { event_sources: vec!["iam.amazonaws.com".into()], ..Default::default() })
//!     .event_predicate(|e: &trailmill::Event<'_>| e.error_code.is_none())
//!     .sink(SqliteSink::open("iam.db".as_ref())?)
//!     .build();
//! let summary = pipeline.run(&LocalSource::new(["./mirror"]));
//! assert!(summary.is_success());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `examples/count_by_source.rs` writes its own sink.

pub use trailmill_core as core;
pub use trailmill_core::{DecodeOptions, Decoder, Event, EventFilter, RawJson, Selection, key};
pub use trailmill_pipeline as pipeline;
pub use trailmill_pipeline::{
    LocalSource, Pipeline, RunSummary, Sink, SinkError, SinkStats, Source, SourceObject,
};
pub use trailmill_sinks as sinks;
pub use trailmill_state as state;
