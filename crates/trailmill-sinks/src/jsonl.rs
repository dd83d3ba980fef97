//! JSON Lines output: one event per line, each the record's original bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IoSlice, Read, Seek, SeekFrom, Write};
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
    /// A compressed file between two members (gzip) or frames (zstd): the
    /// next write starts one.
    Between(BufWriter<File>, Compression),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
    Closed,
}

impl Output {
    /// The file written to, if any.
    fn file(&self) -> Option<&File> {
        match self {
            Output::Plain(w) | Output::Between(w, _) => Some(w.get_ref()),
            Output::Gzip(w) => Some(w.get_ref().get_ref()),
            Output::Zstd(w) => Some(w.get_ref().get_ref()),
            Output::Stdout(_) | Output::Closed => None,
        }
    }
}

/// Writes each event's exact original bytes, one per line, to stdout or a file.
///
/// The only change ever made to a record: line breaks between tokens (from
/// pretty-printed input) become spaces, so that every record stays on one
/// line. Records inside delivered CloudTrail files never contain them.
///
/// JSON Lines cannot deduplicate: delivery is at-least-once, and a re-run or a
/// duplicate CloudTrail delivery writes the event again.
///
/// # Commits and resuming
///
/// [`Sink::commit`] flushes and fsyncs the file. A compressed file also ends
/// its gzip member (or zstd frame) there and starts a new one at the next
/// write, so the file is a multi-member stream (which `gzip -d`, `zstd -d`
/// and every standard decoder read as one) whose every commit is a member
/// boundary. [`JsonLinesSink::append`] relies on that to resume after a
/// crash: it keeps the complete lines (plain) or complete members (gzip,
/// zstd), cuts off the torn tail the crash left, and appends after them.
pub struct JsonLinesSink {
    name: String,
    out: Output,
    stats: SinkStats,
    line: Vec<u8>,
    /// The allocation of a batch's slices (each record, then a line break),
    /// kept empty between batches.
    parts: Vec<IoSlice<'static>>,
    resumed: Option<Resumed>,
    /// Bytes of lines written since the file's writeback was last started.
    since_writeback: usize,
}

/// What [`JsonLinesSink::append`] found in the file it resumes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resumed {
    /// Complete lines (events) kept from earlier runs.
    pub lines_kept: u64,
    /// Bytes of the file kept.
    pub bytes_kept: u64,
    /// Bytes cut off the end: a line, member or frame torn by a crash.
    pub bytes_dropped: u64,
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
        Ok(JsonLinesSink::with_output(
            format!("jsonl:{}", path.display()),
            Output::start(BufWriter::with_capacity(1 << 18, file), compression),
        ))
    }

    /// Opens `path` to add to it, creating it if missing, compressed as its
    /// extension says: what a resumed run uses instead of [`create`](Self::create).
    ///
    /// What a crash left half-written at the end (a partial line, or a gzip
    /// member or zstd frame without its end) is cut off first; its events
    /// belong to objects that were not done, which the resumed run does
    /// again. [`JsonLinesSink::resumed`] tells what was kept.
    pub fn append(path: &Path) -> Result<Self, SinkError> {
        Self::append_with(path, Compression::from_path(path))
    }

    /// Like [`append`](Self::append), with the given compression.
    pub fn append_with(path: &Path, compression: Compression) -> Result<Self, SinkError> {
        let fail = |what: &str, e: io::Error| {
            SinkError::with_source(format!("cannot {what} {}", path.display()), e)
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| fail("open", e))?;
        let len = file.metadata().map_err(|e| fail("read", e))?.len();
        let (bytes_kept, lines_kept) =
            complete_prefix(&mut file, compression).map_err(|e| fail("read", e))?;
        if bytes_kept < len {
            file.set_len(bytes_kept).map_err(|e| fail("truncate", e))?;
            tracing::warn!(
                "{}: cut off {} bytes torn by an interrupted run",
                path.display(),
                len - bytes_kept
            );
        }
        file.seek(SeekFrom::Start(bytes_kept))
            .map_err(|e| fail("seek in", e))?;
        let mut sink = JsonLinesSink::with_output(
            format!("jsonl:{}", path.display()),
            Output::start(BufWriter::with_capacity(1 << 18, file), compression),
        );
        sink.resumed = Some(Resumed {
            lines_kept,
            bytes_kept,
            bytes_dropped: len - bytes_kept,
        });
        Ok(sink)
    }

    /// What [`append`](Self::append) kept of the file; `None` for a sink that
    /// did not resume one.
    pub fn resumed(&self) -> Option<&Resumed> {
        self.resumed.as_ref()
    }

    fn with_output(name: String, out: Output) -> Self {
        JsonLinesSink {
            name,
            out,
            stats: SinkStats::default(),
            line: Vec::new(),
            parts: Vec::new(),
            resumed: None,
            since_writeback: 0,
        }
    }

    /// Writes `events`, whose records hold no line break, each followed by
    /// one, straight from the records' bytes.
    fn write_in_place(&mut self, events: &[Event<'_>]) -> Result<(), SinkError> {
        let mut parts = recycle_slices(std::mem::take(&mut self.parts));
        let mut bytes = 0;
        for e in events {
            parts.push(IoSlice::new(e.raw.as_bytes()));
            parts.push(IoSlice::new(b"\n"));
            bytes += e.raw.len() + 1;
        }
        let result = match self.writer() {
            Ok(w) => write_all_vectored(w, &mut parts)
                .map_err(|e| SinkError::with_source(format!("cannot write to {}", self.name), e)),
            Err(e) => Err(e),
        };
        self.parts = recycle_slices(parts);
        self.written(events.len(), bytes, &result);
        result
    }

    /// Counts a batch of `events` lines, `bytes` long, as written if
    /// `result` says so, and starts the file's writeback when it is due.
    fn written(&mut self, events: usize, bytes: usize, result: &Result<(), SinkError>) {
        self.stats.events_received += events as u64;
        if result.is_ok() {
            self.stats.events_written += events as u64;
            self.stats.bytes_written += bytes as u64;
            self.since_writeback += bytes;
            if self.since_writeback >= crate::common::WRITEBACK_EVERY {
                self.since_writeback = 0;
                if let Some(file) = self.out.file() {
                    crate::common::start_writeback(file);
                }
            }
        }
    }

    fn writer(&mut self) -> Result<&mut dyn Write, SinkError> {
        if let Output::Between(..) = self.out {
            let Output::Between(file, compression) =
                std::mem::replace(&mut self.out, Output::Closed)
            else {
                unreachable!("matched above")
            };
            self.out = match compression {
                Compression::None => Output::Plain(file),
                Compression::Gzip => Output::Gzip(flate2::write::GzEncoder::new(
                    file,
                    flate2::Compression::new(6),
                )),
                Compression::Zstd => Output::Zstd(
                    zstd::stream::write::Encoder::new(file, 3)
                        .map_err(|e| SinkError::with_source("cannot start zstd", e))?,
                ),
            };
        }
        Ok(match &mut self.out {
            Output::Stdout(w) => w,
            Output::Plain(w) => w,
            Output::Gzip(w) => w,
            Output::Zstd(w) => w,
            Output::Between(..) => unreachable!("replaced above"),
            Output::Closed => {
                return Err(SinkError::new(format!(
                    "{}: the output is closed (after finishing, or after a failed commit)",
                    self.name
                )));
            }
        })
    }

    /// Ends the current gzip member or zstd frame, if one is open, leaving the
    /// file between members; flushes and fsyncs. On failure the output stays
    /// closed: what it wrote since the last commit is not durable.
    fn end_member(&mut self) -> Result<(), SinkError> {
        let fail = |e: io::Error| SinkError::with_source(format!("cannot commit {}", self.name), e);
        let (file, compression) = match std::mem::replace(&mut self.out, Output::Closed) {
            Output::Stdout(mut w) => {
                w.flush().map_err(fail)?;
                self.out = Output::Stdout(w);
                return Ok(());
            }
            Output::Plain(w) => (w, Compression::None),
            Output::Between(w, c) => (w, c),
            Output::Gzip(w) => (w.finish().map_err(fail)?, Compression::Gzip),
            Output::Zstd(w) => (w.finish().map_err(fail)?, Compression::Zstd),
            Output::Closed => return Ok(()),
        };
        let mut file = file;
        file.flush().map_err(fail)?;
        sync_file(file.get_ref())?;
        self.out = Output::start(file, compression);
        Ok(())
    }
}

impl Output {
    /// A file output positioned where the next write goes.
    fn start(file: BufWriter<File>, compression: Compression) -> Output {
        match compression {
            Compression::None => Output::Plain(file),
            c => Output::Between(file, c),
        }
    }
}

/// The length of the longest prefix of `file` that ends after a complete line
/// (plain) or a complete gzip member or zstd frame that ends a line, and how
/// many lines it holds.
fn complete_prefix(file: &mut File, compression: Compression) -> io::Result<(u64, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(1 << 18, &mut *file);
    let (mut kept, mut lines) = (0u64, 0u64);
    if compression == Compression::None {
        let mut pos = 0u64;
        loop {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                return Ok((kept, lines));
            }
            let n = buf.len();
            lines += memchr::memchr_iter(b'\n', buf).count() as u64;
            if let Some(last) = memchr::memrchr(b'\n', buf) {
                kept = pos + last as u64 + 1;
            }
            pos += n as u64;
            reader.consume(n);
        }
    }
    let mut chunk = vec![0u8; 1 << 16];
    while !reader.fill_buf()?.is_empty() {
        // Decode one member (frame); the decoder consumes exactly its bytes
        // from the buffered reader, so the reader's position is its end.
        let mut member_lines = 0u64;
        let mut last_byte = None;
        let mut count = |r: &mut dyn Read| -> io::Result<()> {
            loop {
                let n = r.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                member_lines += memchr::memchr_iter(b'\n', &chunk[..n]).count() as u64;
                last_byte = Some(chunk[n - 1]);
            }
        };
        let complete = match compression {
            Compression::Gzip => count(&mut flate2::bufread::GzDecoder::new(&mut reader)),
            _ => zstd::stream::read::Decoder::with_buffer(&mut reader)
                .and_then(|d| count(&mut d.single_frame())),
        };
        // A torn member fails to decode; a member that does not end a line
        // was not written by a commit. Either way the good part ends here.
        if complete.is_err() || last_byte.is_some_and(|b| b != b'\n') {
            break;
        }
        kept = reader.stream_position()?;
        lines += member_lines;
    }
    Ok((kept, lines))
}

impl Sink for JsonLinesSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write_batch(&mut self, _file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        // Uncompressed output takes the records where they lie, with one
        // `writev` per batch (or per IOV_MAX slices): copying them into one
        // buffer first was 3% of a decode to /dev/null.
        let uncompressed = matches!(
            self.out,
            Output::Plain(_) | Output::Stdout(_) | Output::Between(_, Compression::None)
        );
        if uncompressed && !events.iter().any(Event::raw_has_line_break) {
            return self.write_in_place(events);
        }
        // Assemble the batch first: one write call per batch, not per event.
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        for e in events {
            if e.raw_has_line_break() {
                line.extend(
                    e.raw
                        .bytes()
                        .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
                );
            } else {
                line.extend_from_slice(e.raw.as_bytes());
            }
            line.push(b'\n');
        }
        let result = match self.writer() {
            Ok(w) => w
                .write_all(&line)
                .map_err(|e| SinkError::with_source(format!("cannot write to {}", self.name), e)),
            Err(e) => Err(e),
        };
        self.written(events.len(), line.len(), &result);
        self.line = line;
        result
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.end_member()
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        self.end_member()?;
        self.out = Output::Closed;
        Ok(self.stats.clone())
    }
}

/// Writes all of `parts`, in as few calls as the writer takes them.
/// (`Write::write_all_vectored` is not stable.)
fn write_all_vectored(w: &mut dyn Write, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !parts.is_empty() {
        match w.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An empty `Vec` with the allocation of `parts`, for slices of another
/// lifetime: the same type and layout, so `collect` reuses it in place.
fn recycle_slices<'b>(mut parts: Vec<IoSlice<'_>>) -> Vec<IoSlice<'b>> {
    parts.clear();
    parts
        .into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
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

    /// Records without line breaks go to an uncompressed file straight from
    /// the decoder's buffer: a batch of 1,024 records is 2,048 slices, more
    /// than one `writev` takes, and every line arrives whole and in order.
    #[test]
    fn uncompressed_output_is_written_in_place_whole() {
        let names: Vec<String> = (0..2500).map(|i| format!("e{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.jsonl");
        let mut sink = JsonLinesSink::create(&path).unwrap();
        run(&mut sink, &records(&names));
        let stats = sink.finish().unwrap();
        let want: String = names
            .iter()
            .map(|n| format!("{{\"eventVersion\":\"1.08\",\"eventID\":\"{n}\"}}\n"))
            .collect();
        assert_eq!(stats.events_written, 2500);
        assert_eq!(stats.bytes_written, want.len() as u64);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
    }

    /// A writer that takes a few bytes a call: the vectored write goes on
    /// from the middle of a slice until everything is written.
    #[test]
    fn vectored_writes_resume_after_short_writes() {
        struct Trickle(Vec<u8>);
        impl Write for Trickle {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let n = buf.len().min(7);
                self.0.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let texts = [
            "{\"a\":1}",
            "\n",
            "",
            "{\"bb\":\"long enough to split\"}",
            "\n",
        ];
        let mut parts: Vec<IoSlice<'_>> =
            texts.iter().map(|t| IoSlice::new(t.as_bytes())).collect();
        let mut out = Trickle(Vec::new());
        write_all_vectored(&mut out, &mut parts).unwrap();
        assert_eq!(out.0, texts.concat().as_bytes());
    }

    fn decompressed(path: &Path) -> String {
        let bytes = std::fs::read(path).unwrap();
        match Compression::from_path(path) {
            Compression::None => String::from_utf8(bytes).unwrap(),
            Compression::Gzip => {
                // A multi-member decoder, as gzip -d and zcat are.
                let mut text = String::new();
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_string(&mut text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                text
            }
            Compression::Zstd => String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap(),
        }
    }

    fn records(names: &[&str]) -> String {
        let records: Vec<String> = names
            .iter()
            .map(|n| format!("{{\"eventVersion\":\"1.08\",\"eventID\":\"{n}\"}}"))
            .collect();
        format!("{{\"Records\":[{}]}}", records.join(","))
    }

    /// A crash can stop a resumable file anywhere after its last commit. For
    /// every such point, appending keeps what was committed (and, in a plain
    /// file, every complete line), cuts the torn rest, and leaves a file that
    /// standard decoders read whole.
    #[test]
    fn appending_after_a_crash_at_any_point_keeps_a_valid_stream() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["o.jsonl", "o.jsonl.gz", "o.jsonl.zst"] {
            let path = dir.path().join(name);
            let mut sink = JsonLinesSink::create(&path).unwrap();
            run(&mut sink, &records(&["a1", "a2"]));
            sink.commit().unwrap();
            run(&mut sink, &records(&["b1", "b2"]));
            sink.commit().unwrap();
            let committed = std::fs::metadata(&path).unwrap().len();
            run(&mut sink, &records(&["c1", "c2", "c3"]));
            sink.finish().unwrap();
            let full = std::fs::read(&path).unwrap();
            let committed_text = "{\"eventVersion\":\"1.08\",\"eventID\":\"a1\"}\n{\"eventVersion\":\"1.08\",\"eventID\":\"a2\"}\n{\"eventVersion\":\"1.08\",\"eventID\":\"b1\"}\n{\"eventVersion\":\"1.08\",\"eventID\":\"b2\"}\n";
            assert!(decompressed(&path).starts_with(committed_text), "{name}");
            for cut in committed as usize..full.len() {
                let torn = dir.path().join(format!("torn-{cut}-{name}"));
                std::fs::write(&torn, &full[..cut]).unwrap();
                let mut sink = JsonLinesSink::append(&torn).unwrap();
                let resumed = sink.resumed().unwrap().clone();
                run(&mut sink, &records(&["d1"]));
                sink.finish().unwrap();
                let text = decompressed(&torn);
                let kept = match Compression::from_path(&torn) {
                    // Every complete line stays.
                    Compression::None => {
                        let prefix = std::str::from_utf8(&full[..cut]).unwrap();
                        &prefix[..prefix.rfind('\n').unwrap() + 1]
                    }
                    // Only complete members stay: those the commits ended.
                    _ => committed_text,
                };
                assert_eq!(
                    text,
                    format!("{kept}{{\"eventVersion\":\"1.08\",\"eventID\":\"d1\"}}\n"),
                    "{name} cut at {cut}"
                );
                assert_eq!(
                    resumed.lines_kept,
                    kept.lines().count() as u64,
                    "{name} {cut}"
                );
                assert_eq!(resumed.bytes_dropped + resumed.bytes_kept, cut as u64);
            }
        }
    }

    #[test]
    fn appending_creates_a_missing_file_and_keeps_a_finished_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.jsonl.gz");
        let mut sink = JsonLinesSink::append(&path).unwrap();
        assert_eq!(sink.resumed(), Some(&Resumed::default()));
        run(&mut sink, &records(&["x"]));
        sink.finish().unwrap();
        let mut sink = JsonLinesSink::append(&path).unwrap();
        assert_eq!(sink.resumed().unwrap().lines_kept, 1);
        assert_eq!(sink.resumed().unwrap().bytes_dropped, 0);
        run(&mut sink, &records(&["y"]));
        sink.finish().unwrap();
        assert_eq!(
            decompressed(&path),
            "{\"eventVersion\":\"1.08\",\"eventID\":\"x\"}\n{\"eventVersion\":\"1.08\",\"eventID\":\"y\"}\n"
        );
    }
}
