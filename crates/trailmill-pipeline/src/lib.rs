//! Parallel processing of CloudTrail log objects.
//!
//! The pieces, and how they fit:
//!
//! - a [`Source`] lists objects and reads their bytes ([`LocalSource`] for
//!   files and directory trees; object stores plug in the same way);
//! - a [`Pipeline`], built with [`Pipeline::builder`], spreads the objects over
//!   a pool of workers, one object per task, each worker with its own reusable
//!   [`trailmill_core::Decoder`];
//! - the key [`trailmill_core::Selection`] and an optional [`SourceFilter`]
//!   choose objects before any byte is read; the field
//!   [`trailmill_core::EventFilter`] and an optional [`EventPredicate`] choose
//!   events after decoding;
//! - every [`Sink`] receives the kept events in batches, as borrowed views
//!   with their exact original bytes;
//! - a [`ProgressReporter`] and an [`ErrorHandler`] hear about every finished
//!   or failed object, and [`Pipeline::run`] returns a [`RunSummary`];
//! - a [`CheckpointListener`] hears, at each [`checkpoint`], which objects
//!   have their events durable in every sink: what a state store or a queue
//!   worker needs before it marks an object done or deletes its message.
//!
//! These carry the concepts of the AWS CloudTrail Processing Library (source
//! filter, event filter, `maxEventsPerEmit`, progress reporter, exception
//! handler) as Rust traits, with closures accepted wherever a trait is.

pub mod checkpoint;
mod run;
pub mod sink;
pub mod source;

pub use checkpoint::{CheckpointListener, CheckpointPolicy};
pub use run::{
    Attestation, ErrorHandler, EventPredicate, FileError, FileErrorKind, FileOutcome, Pipeline,
    PipelineBuilder, ProgressReporter, RunSummary, SourceFilter, VerifyMode,
};
pub use sink::{NullSink, Sink, SinkError, SinkStats};
pub use source::{ListStats, LocalSource, ObjectData, Source, SourceError, SourceObject};
