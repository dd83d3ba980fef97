//! The pure core of trailmill: CloudTrail object keys, the event model and the decoder.
//!
//! Nothing here does I/O beyond reading the bytes it is handed, and nothing
//! depends on AWS, tokio or clap, so the logic that matters most is fast to test.
//!
//! - [`key`] parses and formats CloudTrail object keys (log, digest and Insights files).
//! - [`decode`] turns a file's bytes (gzip or not; `{"Records":[…]}`, a bare array or
//!   JSON Lines) into [`event::Event`] views, through its own SIMD structural index
//!   and without building a DOM or a tape.
//! - [`event`] is the borrowed, typed view of one record, which always carries the
//!   record's exact original bytes.
//! - [`filter`] selects events by field, as the CLI's filter flags do.
//! - [`time`] reads times in the one grammar every command uses, and `eventTime`.
//! - [`notification`] parses the SQS message bodies that announce new log objects
//!   (CloudTrail's SNS notification and S3 event notifications).

pub mod decode;
pub mod event;
pub mod filter;
pub mod gzip;
mod json;
pub mod key;
pub mod notification;
pub mod time;

pub use decode::{DecodeError, DecodeOptions, DecodeStats, DecodeWarning, Decoder};
pub use event::{Event, RawJson};
pub use filter::{CompiledFilter, EarlyFilter, EventFilter, Selection, Shard, Skip};
pub use key::{Classified, ObjectKey};
