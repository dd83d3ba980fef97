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

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use jsonl::{JsonLinesSink, Resumed};
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

/// The spec as it is written on the command line.
impl fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::JsonLines(None) => f.write_str("jsonl:-"),
            SinkSpec::JsonLines(Some(path)) => write!(f, "jsonl:{}", path.display()),
            SinkSpec::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
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

    /// The file the sink writes, when it writes one on the local disk.
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            SinkSpec::JsonLines(None) => None,
            SinkSpec::JsonLines(Some(path)) | SinkSpec::Sqlite(path) => Some(path),
        }
    }

    /// Where a run's state file goes by default: beside the file the sink
    /// writes (`PATH.state`). `None` for outputs that are not files on the
    /// local disk (standard output, devices such as `/dev/null`, pipes): they
    /// keep nothing to resume.
    pub fn default_state_path(&self) -> Option<PathBuf> {
        let path = self.local_path()?;
        if path.exists() && !path.is_file() {
            return None;
        }
        let mut name = path.as_os_str().to_owned();
        name.push(".state");
        Some(name.into())
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
        })
    }

    /// True when the sink recognises events it already holds (by eventID) and
    /// stores each once; false for outputs that deliver at least once.
    pub fn deduplicates(&self) -> bool {
        match self {
            SinkSpec::JsonLines(_) => false,
            SinkSpec::Sqlite(_) => true,
        }
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
    fn states_default_to_beside_the_output() {
        let state = |spec: &str| spec.parse::<SinkSpec>().unwrap().default_state_path();
        assert_eq!(state("sqlite:out/e.db"), Some("out/e.db.state".into()));
        assert_eq!(state("jsonl:o.jsonl.gz"), Some("o.jsonl.gz.state".into()));
        assert_eq!(state("jsonl:-"), None);
        assert_eq!(state("jsonl:/dev/null"), None);
    }

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
        for spec in ["jsonl:-", "jsonl:a/o.jsonl.gz", "sqlite:e.db"] {
            assert_eq!(spec.parse::<SinkSpec>().unwrap().to_string(), spec);
        }
    }
}
