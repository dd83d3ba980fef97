//! The built-in sinks, each an implementation of [`trailmill_pipeline::Sink`].
//!
//! - [`JsonLinesSink`]: each event's original bytes, one per line, to stdout or
//!   a file (plain, gzip or zstd). At-least-once: it cannot deduplicate.
//! - [`SqliteSink`]: the embedded default store, typed columns plus the raw
//!   record, deduplicated by `eventID`.
//! - [`ParquetSink`] (feature `parquet`): a Hive-partitioned Parquet lake,
//!   files appearing atomically at each commit. At-least-once.
//! - [`PostgresSink`] (feature `postgres`): a PostgreSQL table loaded with
//!   binary COPY, deduplicated by `eventID`, surviving connection losses.
//!
//! [`SinkSpec`] parses the CLI's `--sink` values (`jsonl:-`, `jsonl:PATH`,
//! `sqlite:PATH`, `parquet:DIR`, `postgres:URL`) and opens the sink they
//! name, so the CLI and config files build sinks the same way.
//!
//! Both optional stores are default features; a library user who needs
//! neither builds with `default-features = false` and skips Arrow, Parquet,
//! tokio and tokio-postgres.

pub mod common;
pub mod jsonl;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

use std::path::PathBuf;
use std::str::FromStr;

pub use jsonl::JsonLinesSink;
#[cfg(feature = "parquet")]
pub use parquet::{ParquetOptions, ParquetSink};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresSink};
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
    /// `parquet:DIR`.
    Parquet(PathBuf),
    /// `postgres:URL` (also `postgresql:URL`, or the bare URL
    /// `postgres://…` / `postgresql://…`); the URL may also be a libpq
    /// `key=value` connection string.
    Postgres(String),
}

impl FromStr for SinkSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(SinkSpec::Postgres(s.to_owned()));
        }
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
            "parquet" => Ok(SinkSpec::Parquet(target.into())),
            "postgres" | "postgresql" => Ok(SinkSpec::Postgres(target.to_owned())),
            other => Err(format!(
                "unknown sink kind {other:?}; expected jsonl, sqlite, parquet or postgres"
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
            #[cfg(feature = "parquet")]
            SinkSpec::Parquet(dir) => Box::new(ParquetSink::open(dir)?),
            #[cfg(not(feature = "parquet"))]
            SinkSpec::Parquet(_) => return Err(missing_feature("parquet")),
            #[cfg(feature = "postgres")]
            SinkSpec::Postgres(url) => Box::new(PostgresSink::connect(url)?),
            #[cfg(not(feature = "postgres"))]
            SinkSpec::Postgres(_) => return Err(missing_feature("postgres")),
        })
    }

    /// True when the sink writes to standard output.
    pub fn is_stdout(&self) -> bool {
        matches!(self, SinkSpec::JsonLines(None))
    }
}

#[cfg(not(all(feature = "parquet", feature = "postgres")))]
fn missing_feature(kind: &str) -> SinkError {
    SinkError::new(format!(
        "{kind} sinks are not in this build (trailmill-sinks feature `{kind}`)"
    ))
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
        assert_eq!("parquet:lake".parse(), Ok(SinkSpec::Parquet("lake".into())));
        for spec in [
            "postgres:postgres://u@127.0.0.1:5432/db",
            "postgresql:postgres://u@127.0.0.1:5432/db",
        ] {
            assert_eq!(
                spec.parse(),
                Ok(SinkSpec::Postgres("postgres://u@127.0.0.1:5432/db".into()))
            );
        }
        for url in ["postgres://u@h/db?sslmode=require", "postgresql://u@h/db"] {
            assert_eq!(url.parse(), Ok(SinkSpec::Postgres(url.into())));
        }
        assert!(
            "orc:x"
                .parse::<SinkSpec>()
                .unwrap_err()
                .contains("unknown sink kind")
        );
        assert!("sqlite:".parse::<SinkSpec>().is_err());
        assert!("jsonl".parse::<SinkSpec>().is_err());
    }
}
