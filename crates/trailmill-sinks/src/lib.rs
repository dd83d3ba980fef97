//! The built-in sinks, each an implementation of [`trailmill_pipeline::Sink`].
//!
//! - [`JsonLinesSink`]: each event's original bytes, one per line, to stdout or
//!   a file (plain, gzip or zstd). At-least-once: it cannot deduplicate.
//! - [`SqliteSink`]: the embedded default store, typed columns plus the raw
//!   record, deduplicated by `eventID`.
//!
//! [`SinkSpec`] parses the CLI's `--sink` values (`jsonl:-`, `jsonl:PATH`,
//! `sqlite:PATH`) and opens the sink they name, so the CLI and config files
//! build sinks the same way.

pub mod jsonl;
pub mod sqlite;

use std::path::PathBuf;
use std::str::FromStr;

pub use jsonl::JsonLinesSink;
pub use sqlite::SqliteSink;
use trailmill_pipeline::{Sink, SinkError};

/// A sink named by a `KIND:TARGET` string.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkSpec {
    /// `jsonl:-` (stdout) or `jsonl:PATH` (`.gz` and `.zst` compress).
    JsonLines(Option<PathBuf>),
    /// `sqlite:PATH`.
    Sqlite(PathBuf),
}

impl FromStr for SinkSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, target) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not KIND:TARGET (e.g. jsonl:-, sqlite:events.db)"))?;
        if target.is_empty() {
            return Err(format!("{s:?} has no target after '{kind}:'"));
        }
        match kind {
            "jsonl" if target == "-" => Ok(SinkSpec::JsonLines(None)),
            "jsonl" => Ok(SinkSpec::JsonLines(Some(target.into()))),
            "sqlite" => Ok(SinkSpec::Sqlite(target.into())),
            other => Err(format!(
                "unknown sink kind {other:?}; expected jsonl or sqlite"
            )),
        }
    }
}

impl SinkSpec {
    /// Opens the sink.
    pub fn open(&self) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match self {
            SinkSpec::JsonLines(None) => Box::new(JsonLinesSink::stdout()),
            SinkSpec::JsonLines(Some(path)) => Box::new(JsonLinesSink::create(path)?),
            SinkSpec::Sqlite(path) => Box::new(SqliteSink::open(path)?),
        })
    }

    /// True when the sink writes to standard output.
    pub fn is_stdout(&self) -> bool {
        matches!(self, SinkSpec::JsonLines(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!("jsonl:-".parse(), Ok(SinkSpec::JsonLines(None)));
        assert_eq!(
            "jsonl:out.jsonl.gz".parse(),
            Ok(SinkSpec::JsonLines(Some("out.jsonl.gz".into())))
        );
        assert_eq!("sqlite:e.db".parse(), Ok(SinkSpec::Sqlite("e.db".into())));
        assert!(
            "parquet:x"
                .parse::<SinkSpec>()
                .unwrap_err()
                .contains("unknown sink kind")
        );
        assert!("sqlite:".parse::<SinkSpec>().is_err());
        assert!("jsonl".parse::<SinkSpec>().is_err());
    }
}
