//! JSON Lines output: one event per line, each the record's original bytes.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use trailmill_core::Event;
use trailmill_pipeline::{Sink, SinkError, SinkStats, SourceObject};

/// How a JSON Lines file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip, level 6.
    Gzip,
    /// zstd, level 3.
    Zstd,
}

impl Compression {
    /// The compression a path's extension asks for: `.gz` or `.zst`, else none.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("zst" | "zstd") => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

enum Output {
    Stdout(BufWriter<io::Stdout>),
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
    Closed,
}

/// Writes each event's exact original bytes, one per line, to stdout or a file.
///
/// The only change ever made to a record: line breaks between tokens (from
/// pretty-printed input) become spaces, so that every record stays on one
/// line. Records inside delivered CloudTrail files never contain them.
///
/// JSON Lines cannot deduplicate: delivery is at-least-once, and a re-run or a
/// duplicate CloudTrail delivery writes the event again.
pub struct JsonLinesSink {
    name: String,
    out: Output,
    stats: SinkStats,
    line: Vec<u8>,
}

impl JsonLinesSink {
    /// Writes to standard output.
    pub fn stdout() -> Self {
        JsonLinesSink::with_output(
            "jsonl:-".into(),
            Output::Stdout(BufWriter::with_capacity(1 << 18, io::stdout())),
        )
    }

    /// Creates (or truncates) `path`, compressed as its extension says.
    pub fn create(path: &Path) -> Result<Self, SinkError> {
        Self::create_with(path, Compression::from_path(path))
    }

    /// Creates (or truncates) `path` with the given compression.
    pub fn create_with(path: &Path, compression: Compression) -> Result<Self, SinkError> {
        let file = File::create(path)
            .map_err(|e| SinkError::with_source(format!("cannot create {}", path.display()), e))?;
        let buffered = BufWriter::with_capacity(1 << 18, file);
        let out = match compression {
            Compression::None => Output::Plain(buffered),
            Compression::Gzip => Output::Gzip(flate2::write::GzEncoder::new(
                buffered,
                flate2::Compression::new(6),
            )),
            Compression::Zstd => Output::Zstd(
                zstd::stream::write::Encoder::new(buffered, 3)
                    .map_err(|e| SinkError::with_source("cannot start zstd", e))?,
            ),
        };
        Ok(JsonLinesSink::with_output(
            format!("jsonl:{}", path.display()),
            out,
        ))
    }

    fn with_output(name: String, out: Output) -> Self {
        JsonLinesSink {
            name,
            out,
            stats: SinkStats::default(),
            line: Vec::new(),
        }
    }

    fn writer(&mut self) -> Result<&mut dyn Write, SinkError> {
        Ok(match &mut self.out {
            Output::Stdout(w) => w,
            Output::Plain(w) => w,
            Output::Gzip(w) => w,
            Output::Zstd(w) => w,
            Output::Closed => return Err(SinkError::new("the output is already closed")),
        })
    }
}

impl Sink for JsonLinesSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write_batch(&mut self, _file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        // Assemble the batch first: one write call per batch, not per event.
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        for e in events {
            if has_line_break(e.raw) {
                line.extend(
                    e.raw
                        .iter()
                        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
                );
            } else {
                line.extend_from_slice(e.raw);
            }
            line.push(b'\n');
        }
        let result = self.writer()?.write_all(&line);
        self.stats.events_received += events.len() as u64;
        let outcome = match result {
            Ok(()) => {
                self.stats.events_written += events.len() as u64;
                self.stats.bytes_written += line.len() as u64;
                Ok(())
            }
            Err(e) => Err(SinkError::with_source(
                format!("cannot write to {}", self.name),
                e,
            )),
        };
        self.line = line;
        outcome
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        let fail = |e: io::Error| SinkError::with_source("cannot flush the output", e);
        // A compressed stream is flushed to a block boundary, so that what is
        // on disk decompresses to whole lines even if the process dies next.
        let file = match &mut self.out {
            Output::Stdout(w) => return w.flush().map_err(fail),
            Output::Plain(w) => {
                w.flush().map_err(fail)?;
                w.get_ref()
            }
            Output::Gzip(w) => {
                w.flush().map_err(fail)?;
                w.get_ref().get_ref()
            }
            Output::Zstd(w) => {
                w.flush().map_err(fail)?;
                w.get_ref().get_ref()
            }
            Output::Closed => return Ok(()),
        };
        sync_file(file)
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        let fail = |e: io::Error| SinkError::with_source("cannot finish the output", e);
        match std::mem::replace(&mut self.out, Output::Closed) {
            Output::Stdout(mut w) => w.flush().map_err(fail)?,
            Output::Plain(w) => sync(w)?,
            Output::Gzip(w) => sync(w.finish().map_err(fail)?)?,
            Output::Zstd(w) => sync(w.finish().map_err(fail)?)?,
            Output::Closed => {}
        }
        Ok(self.stats.clone())
    }
}

fn has_line_break(bytes: &[u8]) -> bool {
    memchr::memchr2(b'\n', b'\r', bytes).is_some()
}

/// Flushes and fsyncs, so `finish` returning means the events are durable.
/// Devices and pipes (`/dev/null`, `/dev/stdout`) cannot be synced and need not be.
fn sync(w: BufWriter<File>) -> Result<(), SinkError> {
    let file = w
        .into_inner()
        .map_err(|e| SinkError::with_source("cannot flush the output", e.into_error()))?;
    sync_file(&file)
}

/// Fsyncs a regular file; devices and pipes are left alone.
fn sync_file(file: &File) -> Result<(), SinkError> {
    if file.metadata().is_ok_and(|m| m.is_file()) {
        file.sync_data()
            .map_err(|e| SinkError::with_source("cannot sync the output", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use trailmill_core::{DecodeOptions, Decoder};

    fn run(sink: &mut JsonLinesSink, input: &str) {
        let object = SourceObject::new("t", "t");
        Decoder::new(DecodeOptions::default())
            .decode(input.as_bytes(), &mut |batch| {
                sink.write_batch(&object, batch).map_err(|e| e.into())
            })
            .unwrap();
    }

    #[test]
    fn writes_original_bytes_in_every_compression() {
        let input = "{\"Records\":[{\"eventVersion\":\"1.08\",\"n\":2.0},\n{\"eventTime\":\"t\",\n \"a\":\"\\u00e9\"}]}";
        let dir = tempfile::tempdir().unwrap();
        for name in ["o.jsonl", "o.jsonl.gz", "o.jsonl.zst"] {
            let path = dir.path().join(name);
            let mut sink = JsonLinesSink::create(&path).unwrap();
            run(&mut sink, input);
            let stats = sink.finish().unwrap();
            assert_eq!(stats.events_written, 2);
            let bytes = std::fs::read(&path).unwrap();
            let mut text = String::new();
            match Compression::from_path(&path) {
                Compression::None => text = String::from_utf8(bytes).unwrap(),
                Compression::Gzip => {
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_string(&mut text)
                        .unwrap();
                }
                Compression::Zstd => {
                    text = String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap()
                }
            }
            assert_eq!(
                text,
                "{\"eventVersion\":\"1.08\",\"n\":2.0}\n{\"eventTime\":\"t\",  \"a\":\"\\u00e9\"}\n",
                "{name}"
            );
        }
    }
}
