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

#[cfg(feature = "parquet")]
pub mod arrow;
pub mod common;
pub mod jsonl;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
#[cfg(feature = "tls")]
pub mod tls;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use jsonl::{JsonLinesSink, Resumed};
#[cfg(feature = "parquet")]
pub use parquet::{
    EventBatchBuilder, ParquetOptions, ParquetSink, PartitionWriter, PartitionedWriter, Publisher,
};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresSink};
pub use sqlite::SqliteSink;
use trailmill_pipeline::{Sink, SinkError};

/// The name of the state file [`SinkSpec::default_state_path`] puts inside a
/// Parquet lake.
pub const PARQUET_STATE_NAME: &str = "_trailmill.state";

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
    /// `parquet:s3://BUCKET/PREFIX`: the same lake in S3 (opened by
    /// `trailmill_lake::open_sink`).
    ParquetS3(String),
    /// `iceberg:NAMESPACE.TABLE`: an Apache Iceberg table (opened by
    /// `trailmill_lake::open_sink`, with the catalog settings).
    Iceberg(String),
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
            "parquet" if target.starts_with("s3://") => Ok(SinkSpec::ParquetS3(target.to_owned())),
            "parquet" => Ok(SinkSpec::Parquet(target.into())),
            "iceberg" => match target.rsplit_once('.') {
                Some((ns, table)) if !ns.is_empty() && !table.is_empty() => {
                    Ok(SinkSpec::Iceberg(target.to_owned()))
                }
                _ => Err(format!("{s:?}: expected iceberg:NAMESPACE.TABLE")),
            },
            "postgres" | "postgresql" => Ok(SinkSpec::Postgres(target.to_owned())),
            other => Err(format!(
                "unknown sink kind {other:?}; expected jsonl, sqlite, parquet, postgres or iceberg"
            )),
        }
    }
}

/// The spec as it is written on the command line.
impl fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::JsonLines(None) => f.write_str("jsonl:-"),
            SinkSpec::JsonLines(Some(path)) => write!(f, "jsonl:{}", path.display()),
            SinkSpec::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            SinkSpec::Parquet(dir) => write!(f, "parquet:{}", dir.display()),
            SinkSpec::ParquetS3(url) => write!(f, "parquet:{url}"),
            SinkSpec::Iceberg(table) => write!(f, "iceberg:{table}"),
            // Never a password: specs are shown in messages and kept in states.
            SinkSpec::Postgres(url) => write!(f, "postgres:{}", redact_url(url)),
        }
    }
}

/// `bytes`, one store's buffer, divided among the `stores` stores of one
/// run, and never below `floor` (nor above `bytes`: a buffer set smaller
/// than the floor stays as it is).
///
/// The process keeps one memory bound (256 MB) whatever its sinks, and
/// each store's buffers are its own: Parquet with Iceberg peaked at 279 MB,
/// and all five stores at once at 441 MB, when each took what it takes
/// alone. So a run's stores (every sink but JSON Lines, whose buffers are
/// small) each take their share: smaller batches, row groups, chunks,
/// caches and dedupe windows, for the same output.
pub fn memory_share(bytes: usize, stores: usize, floor: usize) -> usize {
    (bytes / stores.max(1)).max(floor.min(bytes))
}

impl SinkSpec {
    /// True for the sinks that buffer enough to count against the memory
    /// bound: every store, not JSON Lines.
    pub fn is_store(&self) -> bool {
        !matches!(self, SinkSpec::JsonLines(_))
    }

    /// Opens the sink.
    pub fn open(&self) -> Result<Box<dyn Sink>, SinkError> {
        self.open_shared(1)
    }

    /// Opens the sink as one of a run's `stores` stores, which share the
    /// memory bound: a store takes its share of the buffers
    /// ([`memory_share`]).
    pub fn open_shared(&self, stores: usize) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match self {
            SinkSpec::JsonLines(None) => Box::new(JsonLinesSink::stdout()),
            SinkSpec::JsonLines(Some(path)) => Box::new(JsonLinesSink::create(path)?),
            SinkSpec::Sqlite(path) => Box::new(SqliteSink::open_shared(path, stores)?),
            #[cfg(feature = "parquet")]
            SinkSpec::Parquet(dir) => Box::new(ParquetSink::with_options(
                dir,
                ParquetOptions::default().shared(stores),
            )?),
            #[cfg(not(feature = "parquet"))]
            SinkSpec::Parquet(_) => return Err(missing_feature("parquet")),
            SinkSpec::ParquetS3(_) | SinkSpec::Iceberg(_) => {
                return Err(SinkError::new(format!(
                    "{self}: lake sinks are opened by trailmill_lake::open_sink"
                )));
            }
            #[cfg(feature = "postgres")]
            SinkSpec::Postgres(url) => Box::new(PostgresSink::with_options(
                url,
                PostgresOptions::default().shared(stores),
            )?),
            #[cfg(not(feature = "postgres"))]
            SinkSpec::Postgres(_) => return Err(missing_feature("postgres")),
        })
    }

    /// Opens the sink to continue the output of an earlier, interrupted run
    /// (with a state store): a JSON Lines file is appended to, not
    /// truncated, after cutting off what the interruption tore (see
    /// [`JsonLinesSink::append`]), and what it kept is returned. Stores that
    /// deduplicate open as with [`open`](Self::open).
    pub fn open_resuming(&self) -> Result<(Box<dyn Sink>, Option<Resumed>), SinkError> {
        Ok(match self {
            SinkSpec::JsonLines(Some(path)) => {
                let sink = JsonLinesSink::append(path)?;
                let resumed = sink.resumed().cloned();
                (Box::new(sink), resumed)
            }
            _ => (self.open()?, None),
        })
    }

    /// The file or directory the sink writes, when it writes on the local disk.
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            SinkSpec::JsonLines(None)
            | SinkSpec::Postgres(_)
            | SinkSpec::ParquetS3(_)
            | SinkSpec::Iceberg(_) => None,
            SinkSpec::JsonLines(Some(path)) | SinkSpec::Sqlite(path) | SinkSpec::Parquet(path) => {
                Some(path)
            }
        }
    }

    /// Where a run's state file goes by default:
    ///
    /// - beside the file a JSON Lines or SQLite sink writes: `PATH.state`;
    /// - inside the directory of a Parquet lake: `DIR/_trailmill.state`
    ///   (query engines skip names that start with `_`), so the state moves
    ///   with the lake;
    /// - `None` for outputs with no place on the local disk to keep it
    ///   beside (standard output, devices such as `/dev/null`, pipes,
    ///   PostgreSQL).
    pub fn default_state_path(&self) -> Option<PathBuf> {
        match self {
            SinkSpec::Parquet(dir) => Some(dir.join(PARQUET_STATE_NAME)),
            _ => {
                let path = self.local_path()?;
                if path.exists() && !path.is_file() {
                    return None;
                }
                let mut name = path.as_os_str().to_owned();
                name.push(".state");
                Some(name.into())
            }
        }
    }

    /// The same spec with its path made absolute (against the current
    /// directory), so that a state can recognise its sinks from any directory.
    pub fn with_absolute_path(&self) -> std::io::Result<SinkSpec> {
        Ok(match self {
            SinkSpec::JsonLines(None) => self.clone(),
            SinkSpec::JsonLines(Some(path)) => {
                SinkSpec::JsonLines(Some(std::path::absolute(path)?))
            }
            SinkSpec::Sqlite(path) => SinkSpec::Sqlite(std::path::absolute(path)?),
            SinkSpec::Parquet(dir) => SinkSpec::Parquet(std::path::absolute(dir)?),
            SinkSpec::Postgres(_) | SinkSpec::ParquetS3(_) | SinkSpec::Iceberg(_) => self.clone(),
        })
    }

    /// True when the sink recognises events it already holds (by eventID) and
    /// stores each once, across runs: a redo after a crash adds nothing.
    /// False for outputs that deliver at least once (JSON Lines, Parquet).
    /// An Iceberg table stores each source object once (its ledger), which
    /// makes a redo add nothing too.
    pub fn deduplicates(&self) -> bool {
        match self {
            SinkSpec::JsonLines(_) | SinkSpec::Parquet(_) | SinkSpec::ParquetS3(_) => false,
            SinkSpec::Sqlite(_) | SinkSpec::Postgres(_) | SinkSpec::Iceberg(_) => true,
        }
    }

    /// True when the sink writes to standard output.
    pub fn is_stdout(&self) -> bool {
        matches!(self, SinkSpec::JsonLines(None))
    }
}

/// The URL with any password replaced by `***`, for names and messages.
pub(crate) fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            return format!("{scheme}://{}:***{}", &rest[..colon], &rest[at..]);
        }
        return url.to_owned();
    }
    // A key=value connection string.
    url.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
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
    fn stores_divide_their_buffers_down_to_a_floor() {
        assert_eq!(memory_share(64 << 20, 1, 8 << 20), 64 << 20);
        assert_eq!(memory_share(64 << 20, 4, 8 << 20), 16 << 20);
        assert_eq!(memory_share(64 << 20, 16, 8 << 20), 8 << 20);
        assert_eq!(memory_share(1 << 20, 1, 8 << 20), 1 << 20, "alone: as set");
        assert_eq!(
            memory_share(1 << 20, 4, 8 << 20),
            1 << 20,
            "under the floor"
        );
        assert_eq!(
            memory_share(64 << 20, 0, 8 << 20),
            64 << 20,
            "no store: one"
        );
        let stores = [
            "jsonl:-",
            "jsonl:o.gz",
            "sqlite:e.db",
            "parquet:lake",
            "postgres://h/db",
        ]
        .map(|s| s.parse::<SinkSpec>().unwrap().is_store());
        assert_eq!(stores, [false, false, true, true, true]);
    }

    #[cfg(all(feature = "parquet", feature = "postgres"))]
    #[test]
    fn a_store_alone_keeps_its_buffers_and_shares_them_with_others() {
        let alone = ParquetOptions::default();
        let one = ParquetOptions::default().shared(1);
        assert_eq!(
            (
                one.max_buffered_bytes,
                one.max_open_bytes,
                one.dedupe_window
            ),
            (
                alone.max_buffered_bytes,
                alone.max_open_bytes,
                alone.dedupe_window
            )
        );
        let four = ParquetOptions::default().shared(4);
        assert_eq!(four.max_buffered_bytes, alone.max_buffered_bytes / 4);
        assert_eq!(four.max_open_bytes, alone.max_open_bytes / 4);
        assert_eq!(four.dedupe_window, alone.dedupe_window / 4);
        let off = ParquetOptions {
            dedupe_window: 0,
            ..ParquetOptions::default()
        };
        assert_eq!(off.shared(4).dedupe_window, 0, "dedupe stays off");
        let pg = PostgresOptions::default().shared(4);
        let pg_alone = PostgresOptions::default();
        assert_eq!(pg.max_uncommitted_bytes, pg_alone.max_uncommitted_bytes / 4);
        assert_eq!(pg.chunk_bytes, 1 << 20);
    }

    #[test]
    fn states_default_to_beside_the_output() {
        let state = |spec: &str| spec.parse::<SinkSpec>().unwrap().default_state_path();
        assert_eq!(state("sqlite:out/e.db"), Some("out/e.db.state".into()));
        assert_eq!(state("jsonl:o.jsonl.gz"), Some("o.jsonl.gz.state".into()));
        assert_eq!(state("jsonl:-"), None);
        assert_eq!(state("jsonl:/dev/null"), None);
        assert_eq!(state("parquet:lake"), Some("lake/_trailmill.state".into()));
        assert_eq!(state("postgres://u@h/db"), None);
    }

    #[test]
    fn parses_specs() {
        assert_eq!("jsonl:-".parse(), Ok(SinkSpec::JsonLines(None)));
        assert_eq!(
            "jsonl:out.jsonl.gz".parse(),
            Ok(SinkSpec::JsonLines(Some("out.jsonl.gz".into())))
        );
        assert_eq!("sqlite:e.db".parse(), Ok(SinkSpec::Sqlite("e.db".into())));
        assert_eq!("parquet:lake".parse(), Ok(SinkSpec::Parquet("lake".into())));
        assert_eq!(
            "parquet:s3://b/p".parse(),
            Ok(SinkSpec::ParquetS3("s3://b/p".into()))
        );
        assert_eq!(
            "iceberg:db.trail".parse(),
            Ok(SinkSpec::Iceberg("db.trail".into()))
        );
        assert!("iceberg:trail".parse::<SinkSpec>().is_err());
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
        assert_eq!(
            "postgres://u:secret@h:5432/db?sslmode=require"
                .parse::<SinkSpec>()
                .unwrap()
                .to_string(),
            "postgres:postgres://u:***@h:5432/db?sslmode=require"
        );
        for spec in [
            "jsonl:-",
            "jsonl:a/o.jsonl.gz",
            "sqlite:e.db",
            "parquet:lake",
            "parquet:s3://b/p",
            "iceberg:a.b.c",
        ] {
            assert_eq!(spec.parse::<SinkSpec>().unwrap().to_string(), spec);
        }
    }
}
