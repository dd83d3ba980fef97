//! Turning a file's bytes into [`Event`] views.
//!
//! A [`Decoder`] is fed one file at a time and reuses its buffers, so a worker
//! thread keeps one for its whole life. For each file it:
//!
//! 1. detects gzip by its magic bytes and inflates it with a cap on the
//!    uncompressed size (see [`crate::gzip`]); data after the gzip stream is an error;
//! 2. recognises the envelope: `{"Records":[…]}` (delivered files), a bare
//!    array of events (exports), or JSON Lines;
//! 3. indexes the text where it lies (trailmill-core's `json` module: a SIMD structural
//!    index, fully validated, never a tree or a tape) and walks it, which yields both typed,
//!    unescaped field values and the exact original bytes of every record;
//! 4. hands the events to a callback in batches of at most
//!    [`DecodeOptions::batch_size`].
//!
//! Files up to [`DecodeOptions::whole_file_limit`] uncompressed take the
//! whole-buffer fast path. Larger files are streamed: a small scanner finds
//! complete records in a sliding window and each run of records is parsed on
//! its own, so memory stays bounded by the window and the largest record,
//! whatever the file's size.
//!
//! Digest files are never parsed as events: their content is recognised and
//! rejected with [`DecodeError::DigestFile`].
//!
//! A file is judged as a whole, never by its first record: it is CloudTrail
//! when at least one of its records has one of the core fields
//! (`eventVersion`, `eventTime`, `eventName`, as a string). Then every record
//! is emitted, and each record without any core field gets a
//! [`DecodeWarning::RecordWithoutCoreFields`] (CloudTrail's format grows, and
//! one odd record must not cost a file its good ones). A file none of whose
//! records has a core field is [`DecodeError::NotCloudTrail`], and nothing of
//! it is emitted. The streaming path decides the same way: it withholds
//! records until it has seen a CloudTrail one, and if it had to withhold any,
//! it reads the file again from the start and emits everything.

use std::error::Error as StdError;

use crate::event::Event;
use crate::filter::EarlyFilter;
use crate::gzip::{self, BoundedGzReader, InflateError};
use crate::json::{self, At, Doc, Kind};
use sha2::{Digest as _, Sha256};

/// Limits and batch size for decoding.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Largest uncompressed size accepted for one file; a gzip bomb fails here.
    pub max_decompressed_bytes: u64,
    /// Files up to this uncompressed size are decoded whole (the fast path);
    /// larger ones are streamed with bounded memory.
    pub whole_file_limit: usize,
    /// Largest single record accepted when streaming.
    pub max_record_bytes: usize,
    /// Deepest JSON nesting accepted.
    pub max_depth: usize,
    /// Most events handed to the callback at once (CPL's `maxEventsPerEmit`).
    pub batch_size: usize,
    /// How many uncompressed bytes the streaming path reads at a time, and
    /// about how many it parses in one run of records. Tests make it tiny so
    /// that records straddle reads; the default suits the caches.
    pub stream_chunk_bytes: usize,
    /// When set, only records whose `eventSource` and `eventName` pass are
    /// handed over; the others are read no further than their
    /// `eventVersion`, `eventTime` and `eventName` (which the file's checks
    /// need) and, for a source condition, `eventSource`, and still count in
    /// [`DecodeStats::events`]. A pipeline sets it from its event filter:
    /// with `--event-name 'Describe*'` on a corpus where 18% of the records
    /// pass, decoding took 7% less time.
    pub early_filter: Option<crate::filter::EarlyFilter>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_decompressed_bytes: 8 << 30,
            whole_file_limit: 64 << 20,
            max_record_bytes: 64 << 20,
            max_depth: 128,
            batch_size: 1024,
            stream_chunk_bytes: 4 << 20,
            early_filter: None,
        }
    }
}

/// Why a file could not be decoded. The caller adds the file's name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The gzip stream is corrupt, truncated, too large, or followed by other data.
    #[error(transparent)]
    Inflate(#[from] InflateError),
    /// The file has no content.
    #[error("the file is empty")]
    Empty,
    /// The JSON is malformed.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON, but not CloudTrail records.
    #[error("not CloudTrail log data: {0}")]
    NotCloudTrail(String),
    /// A CloudTrail digest file, which holds hashes, not events.
    #[error("this is a CloudTrail digest file, not a log file")]
    DigestFile,
    /// A record is larger than [`DecodeOptions::max_record_bytes`].
    #[error("a record exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// The limit that was hit.
        limit: usize,
    },
    /// The events callback failed (for example a sink could not write).
    #[error("delivering events failed: {0}")]
    Handler(Box<dyn StdError + Send + Sync>),
    /// The SHA-256 of the uncompressed bytes is not the one a digest attests.
    #[error("SHA-256 of the uncompressed log is {actual}, but its digest says {expected}")]
    HashMismatch {
        /// The attested hash, hex.
        expected: String,
        /// The hash of the bytes read, hex.
        actual: String,
    },
}

/// Something worth telling about a file that was still decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeWarning {
    /// Records whose `eventVersion` major is not 1; they were still emitted.
    UnexpectedEventVersion {
        /// The first such version seen.
        version: String,
        /// How many records had an unexpected version.
        records: u64,
    },
    /// A record with none of the core fields (`eventVersion`, `eventTime`,
    /// `eventName`) in a file whose other records are CloudTrail; it was
    /// still emitted. One warning per record, for the first
    /// [`MAX_RECORD_WARNINGS`] of a file.
    RecordWithoutCoreFields {
        /// The record's index in the file, from 0.
        index: u64,
    },
    /// More records without core fields than were warned about one by one.
    MoreRecordsWithoutCoreFields {
        /// How many records beyond the first [`MAX_RECORD_WARNINGS`].
        records: u64,
    },
}

/// How many records without core fields a file reports one by one; the rest
/// are counted in one [`DecodeWarning::MoreRecordsWithoutCoreFields`], so a
/// file of a million odd records does not flood the log.
pub const MAX_RECORD_WARNINGS: u64 = 10;

impl std::fmt::Display for DecodeWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeWarning::UnexpectedEventVersion { version, records } => {
                write!(
                    f,
                    "{records} record(s) have eventVersion {version:?} (major version not 1); emitted anyway"
                )
            }
            DecodeWarning::RecordWithoutCoreFields { index } => write!(
                f,
                "record {index} has none of eventVersion, eventTime and eventName (as strings); emitted anyway"
            ),
            DecodeWarning::MoreRecordsWithoutCoreFields { records } => write!(
                f,
                "{records} more record(s) have none of eventVersion, eventTime and eventName; emitted anyway"
            ),
        }
    }
}

/// What decoding one file produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Records decoded and handed to the callback.
    pub events: u64,
    /// Uncompressed bytes read.
    pub uncompressed_bytes: u64,
    /// True when the file was streamed rather than decoded whole.
    pub streamed: bool,
    /// Warnings about records that were still emitted.
    pub warnings: Vec<DecodeWarning>,
    /// Records emitted although they have none of the core fields.
    pub records_without_core_fields: u64,
}

/// The callback's result: `Err` stops decoding with [`DecodeError::Handler`].
pub type HandlerResult = Result<(), Box<dyn StdError + Send + Sync>>;

/// A reusable decoder; keep one per worker thread.
pub struct Decoder {
    opts: DecodeOptions,
    /// Inflated bytes (whole-buffer path) or the sliding window (streaming path).
    raw: Vec<u8>,
    /// The streaming path's runs of records, copied out of the window as one array.
    scratch: Vec<u8>,
    /// The structural index of the text being walked.
    index: json::Index,
    /// Unescaped copies of the strings read from the text being walked.
    arena: json::Arena,
    spans: Vec<(usize, usize)>,
    whole: gzip::WholeInflater,
    /// The allocation of the batches handed to the handler, kept empty
    /// between files (a batch of 1,024 events is most of a megabyte, which
    /// the allocator would otherwise return to the kernel and fault back in).
    batch: Vec<Event<'static>>,
}

impl Decoder {
    /// A decoder with the given options.
    pub fn new(opts: DecodeOptions) -> Self {
        Decoder {
            opts,
            raw: Vec::new(),
            scratch: Vec::new(),
            index: json::Index::default(),
            arena: json::Arena::default(),
            spans: Vec::new(),
            whole: gzip::WholeInflater::new(),
            batch: Vec::new(),
        }
    }

    /// The options this decoder was built with.
    pub fn options(&self) -> &DecodeOptions {
        &self.opts
    }

    /// Checks that `text` (uncompressed) is one valid JSON value within the
    /// nesting limit, without decoding any record: the indexing half of what
    /// [`Decoder::decode`] does to a file's text.
    /// Returns how many structural positions the text has.
    pub fn check_json(&mut self, text: &[u8]) -> Result<usize, DecodeError> {
        with_doc(
            &mut self.index,
            &mut self.arena,
            text,
            self.opts.max_depth,
            |doc| Ok(doc.positions()),
        )
    }

    /// Decodes one whole file, gzip or not, calling `on_batch` with its events.
    pub fn decode(
        &mut self,
        input: &[u8],
        on_batch: &mut dyn FnMut(&[Event<'_>]) -> HandlerResult,
    ) -> Result<DecodeStats, DecodeError> {
        self.decode_checked(input, None, on_batch)
    }

    /// Decodes like [`Decoder::decode`], but first checks that the SHA-256 of
    /// the uncompressed bytes is `expected` (the `hashValue` a verified digest
    /// lists for this file). On a mismatch nothing is emitted and the error is
    /// [`DecodeError::HashMismatch`]. Whole files are hashed in the buffer they
    /// are parsed from; streamed files are inflated and hashed once before
    /// they are decoded.
    pub fn decode_verified(
        &mut self,
        input: &[u8],
        expected: &[u8; 32],
        on_batch: &mut dyn FnMut(&[Event<'_>]) -> HandlerResult,
    ) -> Result<DecodeStats, DecodeError> {
        self.decode_checked(input, Some(expected), on_batch)
    }

    fn decode_checked(
        &mut self,
        input: &[u8],
        expected: Option<&[u8; 32]>,
        on_batch: &mut dyn FnMut(&[Event<'_>]) -> HandlerResult,
    ) -> Result<DecodeStats, DecodeError> {
        let mut stats = DecodeStats::default();
        let mut checks = FileChecks::default();
        self.decode_into(input, expected, &mut stats, &mut checks, on_batch)?;
        checks.report(&mut stats);
        Ok(stats)
    }

    fn decode_into(
        &mut self,
        input: &[u8],
        expected: Option<&[u8; 32]>,
        stats: &mut DecodeStats,
        checks: &mut FileChecks,
        on_batch: &mut dyn FnMut(&[Event<'_>]) -> HandlerResult,
    ) -> Result<(), DecodeError> {
        if gzip::is_gzip(input)
            && let Some(claimed) = gzip::size_hint(input).filter(|&n| {
                n <= self.opts.whole_file_limit && n as u64 <= self.opts.max_decompressed_bytes
            })
        {
            // Fast path: inflate in one call into a buffer of the size the
            // trailer claims. The buffer only grows, so it is not zeroed again.
            let mut raw = std::mem::take(&mut self.raw);
            if raw.len() < claimed {
                raw.resize(claimed, 0);
            }
            let decoded = self.whole.inflate(input, &mut raw[..claimed]).map(|n| {
                stats.uncompressed_bytes = n as u64;
                check_hash(&raw[..n], expected)?;
                self.decode_whole(&raw[..n], stats, checks, on_batch)
            });
            self.raw = raw;
            if let Some(result) = decoded {
                return result;
            }
        }
        if let Some(expected) = expected {
            // Streamed or unusual files: hash everything before emitting anything.
            let actual = if gzip::is_gzip(input) {
                gzip::sha256_streaming(
                    input,
                    self.opts.max_decompressed_bytes,
                    &mut vec![0; 1 << 20],
                )?
            } else {
                Sha256::digest(input).into()
            };
            compare_hash(expected, &actual)?;
        }
        if gzip::is_gzip(input) {
            // The precise path: corrupt data, trailing data, a trailer that
            // lies about the size, and files too large to hold whole.
            let mut reader = BoundedGzReader::new(input, self.opts.max_decompressed_bytes);
            let mut raw = std::mem::take(&mut self.raw);
            raw.clear();
            let whole = fill_up_to(
                &mut reader,
                &mut raw,
                self.opts.whole_file_limit,
                gzip::size_hint(input),
            );
            let result = match whole {
                Ok(true) => {
                    stats.uncompressed_bytes = raw.len() as u64;
                    self.decode_whole(&raw, stats, checks, on_batch)
                }
                Ok(false) => {
                    stats.streamed = true;
                    let max = self.opts.max_decompressed_bytes;
                    let mut source = ChunkSource::Gzip(reader);
                    match self.decode_stream(&mut raw, &mut source, stats, checks, on_batch) {
                        Ok(StreamEnd::Restart) => {
                            raw.clear();
                            let mut source = ChunkSource::Gzip(BoundedGzReader::new(input, max));
                            self.decode_stream(&mut raw, &mut source, stats, checks, on_batch)
                                .map(drop)
                        }
                        other => other.map(drop),
                    }
                }
                Err(e) => Err(e.into()),
            };
            self.raw = raw;
            result?;
        } else if input.len() <= self.opts.whole_file_limit {
            stats.uncompressed_bytes = input.len() as u64;
            self.decode_whole(input, stats, checks, on_batch)?;
        } else {
            stats.streamed = true;
            if input.len() as u64 > self.opts.max_decompressed_bytes {
                return Err(InflateError::TooLarge {
                    limit: self.opts.max_decompressed_bytes,
                }
                .into());
            }
            let mut window = std::mem::take(&mut self.raw);
            window.clear();
            let mut source = ChunkSource::Plain(input);
            let mut result = self.decode_stream(&mut window, &mut source, stats, checks, on_batch);
            if let Ok(StreamEnd::Restart) = result {
                window.clear();
                let mut source = ChunkSource::Plain(input);
                result = self.decode_stream(&mut window, &mut source, stats, checks, on_batch);
            }
            self.raw = window;
            result?;
        }
        Ok(())
    }

    fn decode_whole(
        &mut self,
        bytes: &[u8],
        stats: &mut DecodeStats,
        checks: &mut FileChecks,
        on_batch: &mut dyn FnMut(&[Event<'_>]) -> HandlerResult,
    ) -> Result<(), DecodeError> {
        let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
        let Some(first) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
            return Err(DecodeError::Empty);
        };
        let text = &bytes[first..];
        match text[0] {
            // Files as CloudTrail delivers them are one long line: the
            // document is tried first, which spares them a search for a line
            // break through all of their text. JSON Lines is never one valid
            // document, and nothing is emitted from a refused one, so the
            // order of the two tries changes no outcome, only what it costs.
            b'{' if !text.starts_with(b"{\"Records\"") && is_json_lines(text) => {
                self.decode_lines(bytes, stats, checks, on_batch)
            }
            b'{' | b'[' => match self.parse_document(bytes, stats, checks, on_batch) {
                Err(DecodeError::InvalidJson(_)) if text[0] == b'{' && is_json_lines(text) => {
                    self.decode_lines(bytes, stats, checks, on_batch)
                }
                other => other,
            },
            other => Err(DecodeError::NotCloudTrail(format!(
                "content starts with {:?}, not '{{' or '['",
                char::from(other)
            ))),
        }
    }

    /// Decodes JSON Lines held whole, as one window, like the streaming path does.
    fn decode_lines(
        &mut self,
        bytes: &[u8],
        stats: &mut DecodeStats,
        checks: &mut FileChecks,
        on_batch: &mut dyn FnMut(&[Event<'_>]) -> HandlerResult,
    ) -> Result<(), DecodeError> {
        let mut splitter = Splitter::new(Envelope::Lines, self.opts.max_depth);
        self.spans.clear();
        splitter
            .scan(bytes, 0, &mut self.spans)
            .map_err(DecodeError::InvalidJson)?;
        splitter.finish()?;
        let spans = std::mem::take(&mut self.spans);
        let r = self.parse_run(bytes, &spans, stats, checks, on_batch);
        self.spans = spans;
        match r? {
            RunOutcome::Withheld => Err(no_cloudtrail_record(checks.withheld)),
            RunOutcome::Emitted | RunOutcome::Restart => Ok(()),
        }
    }

    /// Parses `bytes` as one JSON document holding records.
    fn parse_document(
        &mut self,
        bytes: &[u8],
        stats: &mut DecodeStats,
        checks: &mut FileChecks,
        on_batch: &mut dyn FnMut(&[Event<'_>]) -> HandlerResult,
    ) -> Result<(), DecodeError> {
        let mut emitter = Emitter {
            batch_size: self.opts.batch_size,
            early: self.opts.early_filter.as_ref(),
            spare: &mut self.batch,
        };
        let parsed = with_doc(
            &mut self.index,
            &mut self.arena,
            bytes,
            self.opts.max_depth,
            |doc| {
                let root = doc.root();
                let records = match doc.kind(root) {
                    Kind::Array => root,
                    Kind::Object => match find_records(doc, root)? {
                        Some(records) => records,
                        // A lone event object, as in a one-line JSON Lines file.
                        None => {
                            return emit_events(
                                doc,
                                root,
                                1,
                                &mut emitter,
                                stats,
                                checks,
                                on_batch,
                            );
                        }
                    },
                    _ => {
                        return Err(DecodeError::NotCloudTrail(
                            "the top-level value is not an object or array".into(),
                        ));
                    }
                };
                // Check every record is an object, and that the file is
                // CloudTrail, before emitting any: each record is skipped in one step.
                let mut len = 0;
                let mut found = Ok(());
                doc.elements(records, |record| {
                    if found.is_err() {
                        return;
                    }
                    if doc.kind(record) == Kind::Object {
                        checks.judged = checks.judged || has_core_field(doc, record);
                    } else {
                        found = Err(DecodeError::NotCloudTrail(format!(
                            "record {len} is not a JSON object"
                        )));
                    }
                    len += 1;
                });
                found?;
                if len > 0 && !checks.judged {
                    return Err(no_cloudtrail_record(len as u64));
                }
                emit_events(
                    doc,
                    At(records.0 + 1),
                    len,
                    &mut emitter,
                    stats,
                    checks,
                    on_batch,
                )
            },
        );
        match parsed {
            // Say what a person can act on when the data after a complete
            // document, or a cut-off one, is the trouble, as the streaming path does.
            Err(DecodeError::InvalidJson(_)) if let Some(why) = diagnose_invalid_json(bytes) => {
                Err(DecodeError::InvalidJson(why))
            }
            other => other,
        }
    }

    /// Parses the records at `spans` of `window` (a run of complete records) as one
    /// array: the scratch copy is `[` + the records separated by `,` + `]`.
    fn parse_run(
        &mut self,
        window: &[u8],
        spans: &[(usize, usize)],
        stats: &mut DecodeStats,
        checks: &mut FileChecks,
        on_batch: &mut dyn FnMut(&[Event<'_>]) -> HandlerResult,
    ) -> Result<RunOutcome, DecodeError> {
        let (Some(&(start, _)), Some(&(_, end))) = (spans.first(), spans.last()) else {
            return Ok(RunOutcome::Emitted);
        };
        self.scratch.clear();
        self.scratch.reserve(end - start + 2);
        self.scratch.push(b'[');
        let mut prev_end = start;
        for &(a, b) in spans {
            if a > prev_end {
                // The gap between two records (whitespace and one comma)
                // becomes one comma: events are slices of this copy, so
                // nothing needs the window's offsets.
                self.scratch.push(b',');
            }
            self.scratch.extend_from_slice(&window[a..b]);
            prev_end = b;
        }
        self.scratch.push(b']');
        let mut emitter = Emitter {
            batch_size: self.opts.batch_size,
            early: self.opts.early_filter.as_ref(),
            spare: &mut self.batch,
        };
        with_doc(
            &mut self.index,
            &mut self.arena,
            &self.scratch,
            self.opts.max_depth,
            |doc| {
                // The splitter passed only objects, so every element is one.
                if !checks.judged {
                    let mut record = At(1);
                    for _ in 0..spans.len() {
                        if has_core_field(doc, record) {
                            checks.judged = true;
                            break;
                        }
                        record = At(doc.after(record) + 1);
                    }
                    if !checks.judged {
                        checks.withheld += spans.len() as u64;
                        return Ok(RunOutcome::Withheld);
                    }
                    if checks.withheld > 0 {
                        return Ok(RunOutcome::Restart);
                    }
                }
                emit_events(
                    doc,
                    At(1),
                    spans.len(),
                    &mut emitter,
                    stats,
                    checks,
                    on_batch,
                )?;
                Ok(RunOutcome::Emitted)
            },
        )
    }

    /// Decodes the file whose first bytes are in `window` and whose rest
    /// comes from `source`, holding only a window of it. Returns
    /// [`StreamEnd::Restart`] when records were withheld before the file
    /// proved to be CloudTrail: the caller then decodes it again from the
    /// start, now judged, and everything is emitted in order.
    fn decode_stream(
        &mut self,
        window: &mut Vec<u8>,
        source: &mut ChunkSource<'_>,
        stats: &mut DecodeStats,
        checks: &mut FileChecks,
        on_batch: &mut dyn FnMut(&[Event<'_>]) -> HandlerResult,
    ) -> Result<StreamEnd, DecodeError> {
        let chunk = self.opts.stream_chunk_bytes.max(1);
        // Telling JSON Lines from one document needs the first line and the
        // start of what follows it (up to a bound, for single-line files),
        // whatever the chunk size.
        stats.uncompressed_bytes = window.len() as u64;
        loop {
            let first = window.iter().position(|b| !b.is_ascii_whitespace());
            let more_after_first_line = first
                .and_then(|i| memchr::memchr(b'\n', &window[i..]).map(|nl| i + nl))
                .is_some_and(|nl| window[nl..].iter().any(|b| !b.is_ascii_whitespace()));
            if more_after_first_line || window.len() >= ENVELOPE_PROBE_BYTES.max(chunk) {
                break;
            }
            let n = source.read_into(window, chunk)?;
            if n == 0 {
                if window.len() <= self.opts.max_record_bytes {
                    // The whole file is in the window, and within one
                    // record's bound: decode it as a whole, so that what only
                    // a whole file can be (a lone event object) decodes as
                    // on the whole-file path.
                    self.decode_whole(window, stats, checks, on_batch)?;
                    return Ok(StreamEnd::Done);
                }
                break;
            }
            stats.uncompressed_bytes += n as u64;
        }
        if window.starts_with(UTF8_BOM) {
            window.drain(..UTF8_BOM.len());
        }
        let first = window.iter().position(|b| !b.is_ascii_whitespace());
        let envelope = match first.map(|i| window[i]) {
            Some(b'[') => Envelope::Array,
            Some(b'{') if is_json_lines(&window[first.unwrap_or(0)..]) => Envelope::Lines,
            Some(b'{') => Envelope::Object,
            Some(other) => {
                return Err(DecodeError::NotCloudTrail(format!(
                    "content starts with {:?}",
                    char::from(other)
                )));
            }
            None => Envelope::Unknown,
        };
        let mut splitter = Splitter::new(envelope, self.opts.max_depth);
        let mut scanned = 0;
        loop {
            self.spans.clear();
            splitter
                .scan(window, scanned, &mut self.spans)
                .map_err(DecodeError::InvalidJson)?;
            scanned = window.len();
            if self
                .spans
                .iter()
                .any(|(a, b)| b - a > self.opts.max_record_bytes)
            {
                return Err(DecodeError::RecordTooLarge {
                    limit: self.opts.max_record_bytes,
                });
            }
            if !self.spans.is_empty() {
                let spans = std::mem::take(&mut self.spans);
                // Parse in runs of about one chunk: the index of a run is several
                // times its size, and the window may hold far more than a chunk.
                let mut r = Ok(RunOutcome::Emitted);
                let mut rest = &spans[..];
                while !rest.is_empty()
                    && matches!(r, Ok(RunOutcome::Emitted | RunOutcome::Withheld))
                {
                    let first_start = rest[0].0;
                    let n = rest
                        .iter()
                        .take_while(|(_, b)| b - first_start <= chunk)
                        .count()
                        .max(1);
                    r = self.parse_run(window, &rest[..n], stats, checks, on_batch);
                    rest = &rest[n..];
                }
                self.spans = spans;
                if let RunOutcome::Restart = r? {
                    return Ok(StreamEnd::Restart);
                }
            }
            // Keep only what an unfinished record or key still needs.
            let keep_from = splitter
                .record_start
                .or(splitter.key_start)
                .unwrap_or(scanned);
            window.drain(..keep_from);
            scanned -= keep_from;
            splitter.shift(keep_from);
            if splitter.pending_record_len(window.len()) > self.opts.max_record_bytes {
                return Err(DecodeError::RecordTooLarge {
                    limit: self.opts.max_record_bytes,
                });
            }
            let n = source.read_into(window, chunk)?;
            if n == 0 {
                break;
            }
            stats.uncompressed_bytes += n as u64;
        }
        splitter.finish()?;
        if checks.withheld > 0 && !checks.judged {
            return Err(no_cloudtrail_record(checks.withheld));
        }
        Ok(StreamEnd::Done)
    }
}

/// A UTF-8 byte order mark, which some tools write before JSON; it is skipped.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// How much of a streamed file is read, at most, to find its first line.
const ENVELOPE_PROBE_BYTES: usize = 4 << 20;

/// How a streamed file ended.
enum StreamEnd {
    /// Every record was emitted.
    Done,
    /// Records were withheld before the file proved to be CloudTrail: decode it again.
    Restart,
}

/// What [`Decoder::parse_run`] did with a run of records.
enum RunOutcome {
    /// The records were emitted.
    Emitted,
    /// None of the file's records so far has a core field: these were held
    /// back, not emitted, until the file is judged.
    Withheld,
    /// This run proved the file CloudTrail, but earlier runs were withheld:
    /// nothing of this run was emitted either.
    Restart,
}

/// The error for a file none of whose `records` records has a core field.
fn no_cloudtrail_record(records: u64) -> DecodeError {
    DecodeError::NotCloudTrail(format!(
        "none of its {records} record(s) has any of eventVersion, eventTime and eventName"
    ))
}

/// True when the record object at `record` has one of the core fields as a
/// string: the test that makes a file CloudTrail. A walk over the record's
/// top-level members (callers stop asking once one record has passed).
fn has_core_field(doc: &Doc<'_>, record: At) -> bool {
    let mut found = false;
    doc.members(record, |key, value| {
        found = found
            || (matches!(key, "eventVersion" | "eventTime" | "eventName")
                && doc.kind(value) == Kind::String);
    });
    found
}

/// Says what is wrong with `bytes`, which the JSON index refused, when it is one
/// of two things a person can act on: data after a complete first value, or
/// data that ends inside a value. Only strings, escapes and nesting are
/// tracked, which is enough to find where the first value ends.
fn diagnose_invalid_json(bytes: &[u8]) -> Option<String> {
    match first_value_end(bytes) {
        Ok(end) => {
            let rest = &bytes[end..];
            rest.iter().position(|b| !b.is_ascii_whitespace()).map(|p| {
                format!(
                    "trailing data after the JSON document (at byte {})",
                    end + p
                )
            })
        }
        Err(Unbalanced::Truncated) => {
            Some("the data ends in the middle of a value (truncated?)".into())
        }
        Err(Unbalanced::ExtraClose) => None,
    }
}

/// Why [`first_value_end`] found no end.
enum Unbalanced {
    /// The data ends inside a string, object or array.
    Truncated,
    /// A closing bracket with nothing open.
    ExtraClose,
}

/// The offset just after the first complete object or array in `bytes`.
fn first_value_end(bytes: &[u8]) -> Result<usize, Unbalanced> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1).ok_or(Unbalanced::ExtraClose)?;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
    }
    Err(Unbalanced::Truncated)
}

/// Indexes `text` with the decoder's reusable buffers and calls `f` with the document.
fn with_doc<R>(
    index: &mut json::Index,
    arena: &mut json::Arena,
    text: &[u8],
    max_depth: usize,
    f: impl FnOnce(&Doc<'_>) -> Result<R, DecodeError>,
) -> Result<R, DecodeError> {
    arena.clear();
    let arena = &*arena;
    match index.parse(text, max_depth, arena) {
        Ok(doc) => f(&doc),
        Err(e) => Err(DecodeError::InvalidJson(e.to_string())),
    }
}

fn check_hash(bytes: &[u8], expected: Option<&[u8; 32]>) -> Result<(), DecodeError> {
    match expected {
        Some(expected) => compare_hash(expected, &Sha256::digest(bytes).into()),
        None => Ok(()),
    }
}

fn compare_hash(expected: &[u8; 32], actual: &[u8; 32]) -> Result<(), DecodeError> {
    if expected == actual {
        Ok(())
    } else {
        Err(DecodeError::HashMismatch {
            expected: hex(expected),
            actual: hex(actual),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Inflates into `raw` until the stream ends (true) or `limit` bytes are held (false).
fn fill_up_to(
    reader: &mut BoundedGzReader<'_>,
    raw: &mut Vec<u8>,
    limit: usize,
    hint: Option<usize>,
) -> Result<bool, InflateError> {
    // One byte more than the limit tells "exactly at the limit" from "over it".
    let cap = limit.saturating_add(1);
    raw.resize(
        cap.min(hint.unwrap_or(1 << 20).saturating_add(1).max(64 << 10)),
        0,
    );
    let mut filled = 0;
    loop {
        if filled == raw.len() {
            if filled == cap {
                return Ok(false);
            }
            raw.resize(cap.min(raw.len().saturating_mul(2)), 0);
        }
        let n = reader.read_chunk(&mut raw[filled..])?;
        filled += n;
        if n == 0 {
            raw.truncate(filled);
            return Ok(true);
        }
    }
}

#[allow(clippy::large_enum_variant)] // one per streamed file, on the stack
enum ChunkSource<'a> {
    Gzip(BoundedGzReader<'a>),
    Plain(&'a [u8]),
}

impl ChunkSource<'_> {
    /// Appends up to `max` bytes to `window`; 0 at the end.
    fn read_into(&mut self, window: &mut Vec<u8>, max: usize) -> Result<usize, DecodeError> {
        match self {
            ChunkSource::Plain(rest) => {
                let n = rest.len().min(max);
                window.extend_from_slice(&rest[..n]);
                *rest = &rest[n..];
                Ok(n)
            }
            ChunkSource::Gzip(reader) => {
                let old = window.len();
                window.resize(old + max, 0);
                let n = reader.read_chunk(&mut window[old..]);
                window.truncate(old + *n.as_ref().unwrap_or(&0));
                Ok(n?)
            }
        }
    }
}

/// Finds the `Records` array of an envelope object; `None` for a lone event.
fn find_records(doc: &Doc<'_>, root: At) -> Result<Option<At>, DecodeError> {
    let mut records = None;
    let mut digest_keys = 0;
    let mut event_keys = 0;
    let mut wrong_type = false;
    doc.members(root, |key, value| match key {
        "Records" => match doc.kind(value) {
            Kind::Array => {
                records = records.or(Some(value));
            }
            _ => wrong_type = true,
        },
        "digestStartTime" | "digestEndTime" | "logFiles" | "digestS3Object" => digest_keys += 1,
        "eventVersion" | "eventTime" | "eventName" | "eventSource" => event_keys += 1,
        _ => {}
    });
    if wrong_type {
        return Err(DecodeError::NotCloudTrail(
            "\"Records\" is not an array".into(),
        ));
    }
    if records.is_some() {
        return Ok(records);
    }
    if digest_keys > 0 {
        return Err(DecodeError::DigestFile);
    }
    if event_keys > 0 {
        return Ok(None);
    }
    Err(DecodeError::NotCloudTrail(
        "the top-level object has no \"Records\" array".into(),
    ))
}

/// What [`emit_events`] takes from the decoder.
struct Emitter<'d> {
    /// Most events a batch holds.
    batch_size: usize,
    /// The filter's source and name conditions, when the decoder applies them.
    early: Option<&'d EarlyFilter>,
    /// The batch's allocation, lent to each file and given back.
    spare: &'d mut Vec<Event<'static>>,
}

/// Emits the `count` record objects that follow one another from `first` (the
/// elements of one array, or a lone object), in batches.
/// With the emitter's `early` filter, the records whose `eventSource` or
/// `eventName` fails it are checked but not emitted.
fn emit_events(
    doc: &Doc<'_>,
    first: At,
    count: usize,
    emitter: &mut Emitter<'_>,
    stats: &mut DecodeStats,
    checks: &mut FileChecks,
    on_batch: &mut dyn FnMut(&[Event<'_>]) -> HandlerResult,
) -> Result<(), DecodeError> {
    let (batch_size, early) = (emitter.batch_size, emitter.early);
    // The allocation goes back to `spare` unless an error cuts this short.
    let mut batch = recycle(std::mem::take(emitter.spare));
    batch.reserve(count.min(batch_size.max(1)));
    let mut at = first;
    for i in 0..count {
        let (close, wanted) = Event::push_from_doc(&mut batch, doc, at, early);
        // The next record starts after this one's `}` and the `,` after it.
        at = At(close + 2);
        if let Some(event) = batch.last() {
            checks.check(event, stats.events + i as u64);
        }
        if !wanted {
            batch.pop();
            continue;
        }
        if batch.len() >= batch_size.max(1) {
            on_batch(&batch).map_err(DecodeError::Handler)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        on_batch(&batch).map_err(DecodeError::Handler)?;
    }
    *emitter.spare = recycle(batch);
    stats.events += count as u64;
    Ok(())
}

/// An empty `Vec` with the allocation of `events`, for events of another
/// lifetime: the same type and layout, so `collect` reuses it in place.
fn recycle<'b>(mut events: Vec<Event<'_>>) -> Vec<Event<'b>> {
    events.clear();
    events
        .into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

/// What one file's records have shown so far: the warnings to give, and
/// whether the file is judged CloudTrail yet.
#[derive(Default)]
struct FileChecks {
    first_unexpected_version: Option<String>,
    unexpected_versions: u64,
    /// Indexes of the first records without core fields, for their warnings.
    odd_records: Vec<u64>,
    odd_record_count: u64,
    /// A record with a core field has been seen: the file is CloudTrail.
    judged: bool,
    /// Records held back, unemitted, while the file was not judged yet.
    withheld: u64,
}

impl FileChecks {
    /// Notes what is odd about `event`, the file's record number `index`.
    fn check(&mut self, event: &Event<'_>, index: u64) {
        if let Some(v) = event.event_version
            && event.event_version_major() != Some(1)
        {
            self.unexpected_versions += 1;
            self.first_unexpected_version
                .get_or_insert_with(|| v.to_owned());
        }
        if event.event_version.is_none() && event.event_time.is_none() && event.event_name.is_none()
        {
            self.odd_record_count += 1;
            if self.odd_records.len() < MAX_RECORD_WARNINGS as usize {
                self.odd_records.push(index);
            }
        }
    }

    /// Adds the file's warnings and counts to `stats`.
    fn report(self, stats: &mut DecodeStats) {
        if let Some(version) = self.first_unexpected_version {
            stats.warnings.push(DecodeWarning::UnexpectedEventVersion {
                version,
                records: self.unexpected_versions,
            });
        }
        stats.warnings.extend(
            self.odd_records
                .iter()
                .map(|&index| DecodeWarning::RecordWithoutCoreFields { index }),
        );
        if self.odd_record_count > MAX_RECORD_WARNINGS {
            stats
                .warnings
                .push(DecodeWarning::MoreRecordsWithoutCoreFields {
                    records: self.odd_record_count - MAX_RECORD_WARNINGS,
                });
        }
        stats.records_without_core_fields = self.odd_record_count;
    }
}

/// True when `text` (starting at `{`) holds more than one JSON value on
/// separate lines: its first line is a complete value and more follows.
fn is_json_lines(text: &[u8]) -> bool {
    let Some(nl) = memchr::memchr(b'\n', text) else {
        return false;
    };
    if text[nl..].iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    // Pretty-printed single documents have an incomplete first line.
    let mut splitter = Splitter::new(Envelope::Lines, usize::MAX);
    let mut spans = Vec::new();
    splitter.scan(&text[..nl], 0, &mut spans).is_ok() && !spans.is_empty() && splitter.depth == 0
}

/// How records are wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Envelope {
    /// Not known yet (only whitespace seen so far).
    Unknown,
    /// `{"Records":[…]}`: records are the elements of the `Records` array.
    Object,
    /// `[…]`: records are the array's elements.
    Array,
    /// JSON Lines: records are top-level values.
    Lines,
}

/// A resumable scanner that finds complete records in a growing window,
/// tracking only strings, escapes and nesting depth.
struct Splitter {
    envelope: Envelope,
    max_depth: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Inside the `Records` array (or the bare array); for lines, always true.
    in_records: bool,
    records_done: bool,
    /// Where the record being scanned started, relative to the window.
    record_start: Option<usize>,
    /// The last string that started at depth 1 of an object envelope, for spotting `Records`.
    key: Vec<u8>,
    key_start: Option<usize>,
    /// Whether a comma separated the previous record from the next (array envelopes).
    need_comma: bool,
    records_seen: usize,
    /// The top-level array or object has closed: only whitespace may follow.
    closed: bool,
    /// The envelope without its records (and without the commas between
    /// them), checked as JSON at the end: the splitter itself tracks only
    /// strings and brackets, and the whole-file path rejects malformed JSON
    /// outside the records too.
    skeleton: Vec<u8>,
    /// Where the envelope bytes not yet copied to `skeleton` start in the window.
    skeleton_from: Option<usize>,
}

/// The most envelope bytes outside the records that streaming keeps to check.
const MAX_SKELETON_BYTES: usize = 1 << 20;

impl Splitter {
    fn new(envelope: Envelope, max_depth: usize) -> Self {
        Splitter {
            envelope,
            max_depth,
            depth: 0,
            in_string: false,
            escaped: false,
            in_records: envelope == Envelope::Lines,
            records_done: false,
            record_start: None,
            key: Vec::new(),
            key_start: None,
            need_comma: false,
            records_seen: 0,
            closed: false,
            skeleton: Vec::new(),
            skeleton_from: Some(0),
        }
    }

    /// Copies the envelope bytes `window[from..to]` to the skeleton.
    fn keep_envelope(&mut self, window: &[u8], to: usize) -> Result<(), String> {
        if let Some(from) = self.skeleton_from.take()
            && self.envelope != Envelope::Lines
        {
            self.skeleton.extend_from_slice(&window[from.min(to)..to]);
            if self.skeleton.len() > MAX_SKELETON_BYTES {
                return Err(format!(
                    "more than {MAX_SKELETON_BYTES} bytes of the file lie outside its records"
                ));
            }
        }
        Ok(())
    }

    /// The depth at which a record's opening brace appears.
    fn record_depth(&self) -> usize {
        match self.envelope {
            Envelope::Lines | Envelope::Unknown => 0,
            Envelope::Array => 1,
            Envelope::Object => 2,
        }
    }

    /// Scans `window[from..]`, appending the spans of records that end in it.
    fn scan(
        &mut self,
        window: &[u8],
        from: usize,
        spans: &mut Vec<(usize, usize)>,
    ) -> Result<(), String> {
        self.scan_bytes(window, from, spans)?;
        if self.skeleton_from.is_some() {
            // The window may be drained before the next scan: copy the
            // envelope bytes it holds now.
            self.keep_envelope(window, window.len())?;
            self.skeleton_from = Some(window.len());
        }
        Ok(())
    }

    fn scan_bytes(
        &mut self,
        window: &[u8],
        from: usize,
        spans: &mut Vec<(usize, usize)>,
    ) -> Result<(), String> {
        let mut i = from;
        let n = window.len();
        while i < n {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', &window[i..]) {
                    None => {
                        // Only short strings can be the `Records` key; never hold a long one.
                        if self.key_start.is_some_and(|ks| n - ks > 16) {
                            self.key_start = None;
                        }
                        return Ok(());
                    }
                    Some(off) => {
                        i += off;
                        if window[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                            if let Some(ks) = self.key_start.take() {
                                self.key.clear();
                                self.key.extend_from_slice(&window[ks..i]);
                            }
                        }
                        i += 1;
                        continue;
                    }
                }
            }
            let b = window[i];
            if self.closed && !b.is_ascii_whitespace() {
                return Err("trailing data after the JSON document".into());
            }
            let at_record_level =
                self.in_records && self.depth == self.record_depth() && !self.records_done;
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => {}
                b'"' => {
                    if at_record_level {
                        return Err(format!("record {} is not a JSON object", self.records_seen));
                    }
                    self.in_string = true;
                    if self.envelope == Envelope::Object && self.depth == 1 {
                        // A sentinel no key equals, until the string is complete.
                        self.key.clear();
                        self.key.push(0);
                        self.key_start = Some(i + 1);
                    }
                }
                b'{' | b'[' => {
                    if self.envelope == Envelope::Unknown {
                        self.envelope = if b == b'[' {
                            Envelope::Array
                        } else {
                            Envelope::Object
                        };
                    }
                    if at_record_level {
                        if b != b'{' {
                            return Err(format!(
                                "record {} is not a JSON object",
                                self.records_seen
                            ));
                        }
                        if self.need_comma {
                            return Err(format!("missing ',' before record {}", self.records_seen));
                        }
                        self.keep_envelope(window, i)?;
                        self.record_start = Some(i);
                    }
                    self.depth += 1;
                    if self.depth > self.max_depth {
                        return Err(format!("nesting deeper than {} levels", self.max_depth));
                    }
                    let entered = match self.envelope {
                        Envelope::Array => self.depth == 1,
                        Envelope::Object => self.depth == 2 && b == b'[' && self.key == b"Records",
                        _ => false,
                    };
                    if entered && !self.records_done {
                        self.in_records = true;
                    }
                }
                b'}' | b']' => {
                    if self.depth == 0 {
                        return Err(format!("unbalanced '{}'", char::from(b)));
                    }
                    self.depth -= 1;
                    if self.depth == 0 && self.envelope != Envelope::Lines {
                        self.closed = true;
                    }
                    if self.in_records && !self.records_done && self.depth == self.record_depth() {
                        if let Some(start) = self.record_start.take() {
                            spans.push((start, i + 1));
                            self.records_seen += 1;
                            self.need_comma = self.envelope != Envelope::Lines;
                            self.skeleton_from = Some(i + 1);
                        }
                    } else if self.in_records
                        && self.envelope != Envelope::Lines
                        && self.depth + 1 == self.record_depth()
                    {
                        // The records array closed.
                        if self.records_seen > 0 && !self.need_comma {
                            return Err("a ',' after the last record".into());
                        }
                        self.records_done = true;
                        self.in_records = false;
                    }
                }
                b',' => {
                    if at_record_level {
                        if !self.need_comma {
                            return Err(format!(
                                "unexpected ',' before record {}",
                                self.records_seen
                            ));
                        }
                        self.need_comma = false;
                        // The skeleton's records array stays empty: no commas.
                        self.keep_envelope(window, i)?;
                        self.skeleton_from = Some(i + 1);
                    }
                }
                _ => {
                    if at_record_level {
                        return Err(format!("record {} is not a JSON object", self.records_seen));
                    }
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// The window dropped its first `n` bytes.
    fn shift(&mut self, n: usize) {
        if let Some(s) = self.record_start.as_mut() {
            *s -= n;
        }
        if let Some(k) = self.key_start.as_mut() {
            *k = k.saturating_sub(n);
        }
        if let Some(k) = self.skeleton_from.as_mut() {
            *k = k.saturating_sub(n);
        }
    }

    /// Bytes held for the record still being scanned.
    fn pending_record_len(&self, window_len: usize) -> usize {
        self.record_start.map_or(0, |s| window_len - s)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.in_string || self.depth != 0 {
            return Err(DecodeError::InvalidJson(
                "the data ends in the middle of a value (truncated?)".into(),
            ));
        }
        match self.envelope {
            // Valid JSON, as the whole-file path would find it, but not a log file.
            Envelope::Object if !self.records_done => Err(DecodeError::NotCloudTrail(
                "the top-level object has no \"Records\" array".into(),
            )),
            Envelope::Unknown => Err(DecodeError::InvalidJson("no JSON value found".into())),
            Envelope::Object | Envelope::Array => {
                // The whole-file path parses the envelope too: reject what it rejects.
                json::Index::default()
                    .parse(&self.skeleton, self.max_depth, &json::Arena::default())
                    .map(drop)
                    .map_err(|e| DecodeError::InvalidJson(format!("outside the records: {e}")))
            }
            Envelope::Lines => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(
        decoder: &mut Decoder,
        input: &[u8],
    ) -> Result<(Vec<Vec<u8>>, DecodeStats), DecodeError> {
        let mut raws = Vec::new();
        let stats = decoder.decode(input, &mut |batch| {
            raws.extend(batch.iter().map(|e| e.raw.as_bytes().to_vec()));
            Ok(())
        })?;
        Ok((raws, stats))
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const REC1: &str = r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"Get\"Object\u00e9","n":2.0,"requestParameters":{"a":[1,{"b":"}"}]},"readOnly":true,"x":[ ]}"#;
    const REC2: &str = r#"{ "eventVersion" : "1.09" , "eventID":"e2", "userIdentity":{"type":"AssumedRole","arn":"arn:x","sessionContext":{"sessionIssuer":{"arn":"arn:role"},"attributes":{"mfaAuthenticated":"false"}}}, "resources":[{"ARN":"arn:r","type":"AWS::S3::Object"}], "eventTime": "t" }"#;

    #[test]
    fn every_envelope_yields_the_exact_record_bytes() {
        let mut d = Decoder::new(DecodeOptions::default());
        let inputs = [
            format!("{{\"Records\":[{REC1},\n  {REC2}]}}"),
            format!("[{REC1},{REC2}]"),
            format!("{REC1}\n{REC2}\n"),
            format!(
                "{{\"other\":[1,2,{{\"Records\":3}}], \"Records\" : [ {REC1} , {REC2} ] , \"z\":{{}}}}"
            ),
        ];
        for input in &inputs {
            for bytes in [input.as_bytes().to_vec(), gz(input.as_bytes())] {
                let (raws, stats) =
                    collect(&mut d, &bytes).unwrap_or_else(|e| panic!("{input}: {e}"));
                assert_eq!(
                    raws,
                    vec![REC1.as_bytes().to_vec(), REC2.as_bytes().to_vec()],
                    "{input}"
                );
                assert_eq!(stats.events, 2);
                assert!(!stats.streamed);
            }
        }
    }

    #[test]
    fn streaming_matches_the_whole_buffer_path() {
        let mut whole = Decoder::new(DecodeOptions::default());
        let mut tiny = Decoder::new(DecodeOptions {
            whole_file_limit: 10,
            batch_size: 3,
            ..DecodeOptions::default()
        });
        let many: Vec<&str> = (0..50)
            .map(|i| if i % 2 == 0 { REC1 } else { REC2 })
            .collect();
        let inputs = [
            format!("{{\"Records\":[{}]}}", many.join(",")),
            format!("[{}]", many.join(" ,\n")),
            format!("{}\n", many.join("\n")),
            format!(
                "{{\"a\":\"Records\",\"Records\":[{}],\"b\":[[]]}}",
                many.join(",")
            ),
        ];
        for input in &inputs {
            for bytes in [input.as_bytes().to_vec(), gz(input.as_bytes())] {
                let (a, _) = collect(&mut whole, &bytes).unwrap();
                let (b, stats) =
                    collect(&mut tiny, &bytes).unwrap_or_else(|e| panic!("{e}: {}", &input[..40]));
                assert!(stats.streamed);
                assert_eq!(a.len(), 50);
                assert_eq!(a, b);
            }
        }
    }

    /// `Event::raw_has_line_break` answers from the index for a file with no
    /// control bytes, and searches the record otherwise: a line break
    /// between records must not mark them, and one inside a record must,
    /// in every envelope and on both paths.
    #[test]
    fn line_breaks_are_found_in_the_records_that_hold_them() {
        const BROKEN: &str = "{\"eventVersion\":\"1.08\",\r\n \"eventTime\":\"t\"}";
        let mut whole = Decoder::new(DecodeOptions::default());
        let mut tiny = Decoder::new(DecodeOptions {
            whole_file_limit: 10,
            ..DecodeOptions::default()
        });
        let cases = [
            (
                format!("{{\"Records\":[{REC1},{REC1}]}}"),
                vec![false, false],
            ),
            (
                format!("{{\"Records\":[{REC1},\n\t{REC1}]}}"),
                vec![false, false],
            ),
            (
                format!("[{REC1},{BROKEN},{REC1}]"),
                vec![false, true, false],
            ),
            (format!("{REC1}\n{BROKEN}\n"), vec![false, true]),
        ];
        for (input, want) in &cases {
            for decoder in [&mut whole, &mut tiny] {
                let mut got = Vec::new();
                decoder
                    .decode(input.as_bytes(), &mut |batch| {
                        got.extend(batch.iter().map(Event::raw_has_line_break));
                        Ok(())
                    })
                    .unwrap_or_else(|e| panic!("{input}: {e}"));
                assert_eq!(&got, want, "{input:?}");
            }
        }
    }

    /// `Field::of` tells keys apart by length and first eight bytes, then
    /// confirms the rest: every known key is read as known, and keys that
    /// differ from one only after the eighth byte (at the end, or in the
    /// middle of a long one) are unknown fields.
    #[test]
    fn known_keys_are_recognised_whole_and_near_misses_are_unknown() {
        let mut d = Decoder::new(DecodeOptions::default());
        for &name in crate::event::KNOWN_FIELDS {
            let mut misses = vec![format!("{name}X"), format!("{}x", &name[..name.len() - 1])];
            if name.len() > 16 {
                let mut middle = name.as_bytes().to_vec();
                middle[12] ^= 0x20;
                misses.push(String::from_utf8(middle).unwrap());
            }
            // One near miss a record, so that it alone can make the record
            // have unknown fields.
            for miss in &misses {
                let input =
                    format!(r#"{{"Records":[{{"eventVersion":"1.08","{name}":"v","{miss}":1}}]}}"#);
                d.decode(input.as_bytes(), &mut |batch| {
                    let unknown: Vec<_> = batch[0].unknown_fields().map(|(k, _)| k).collect();
                    assert_eq!(unknown, [miss.as_str()], "{input}");
                    Ok(())
                })
                .unwrap();
            }
        }
    }

    /// The batch handed to the handler keeps its allocation from one file
    /// to the next (the speed issue: each worker reuses its buffers).
    #[test]
    fn the_batch_allocation_is_kept_between_files() {
        let mut d = Decoder::new(DecodeOptions::default());
        let input = format!("{{\"Records\":[{REC1},{REC2}]}}");
        let mut seen = Vec::new();
        for _ in 0..3 {
            d.decode(input.as_bytes(), &mut |batch| {
                seen.push(batch.as_ptr() as usize);
                Ok(())
            })
            .unwrap();
            assert!(d.batch.is_empty() && d.batch.capacity() >= 2);
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    }

    #[test]
    fn typed_views_are_unescaped_and_free_form_fields_are_exact() {
        let mut d = Decoder::new(DecodeOptions::default());
        let input = format!("{{\"Records\":[{REC1},{REC2}]}}");
        d.decode(input.as_bytes(), &mut |batch| {
            let e = &batch[0];
            assert_eq!(e.event_name, Some("Get\"Objecté"));
            assert_eq!(
                e.request_parameters.unwrap().as_str(),
                r#"{"a":[1,{"b":"}"}]}"#
            );
            assert_eq!(e.read_only, Some(true));
            let unknown: Vec<_> = e.unknown_fields().map(|(k, v)| (k, v.as_str())).collect();
            assert_eq!(unknown, vec![("n", "2.0"), ("x", "[ ]")]);
            let e = &batch[1];
            assert_eq!(e.event_id, Some("e2"));
            let u = e.user_identity().unwrap();
            assert_eq!(u.identity_type, Some("AssumedRole"));
            let ctx = u.session_context.unwrap();
            assert_eq!(ctx.session_issuer.unwrap().arn, Some("arn:role"));
            assert_eq!(ctx.mfa_authenticated, Some("false"));
            let r: Vec<_> = e.resources().collect();
            assert_eq!(r[0].resource_type, Some("AWS::S3::Object"));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn json_lines_of_records_envelopes_are_lines_whichever_parse_is_tried_first() {
        // Delivered files (`{"Records"…` on one line) are tried as one document
        // before the line-break search; lines that each hold such a document
        // must still be read as JSON Lines, as before that change.
        let line = format!("{{\"Records\":[{REC1}]}}");
        let input = format!("{line}\n{line}\n");
        for opts in [
            DecodeOptions::default(),
            DecodeOptions {
                whole_file_limit: 8,
                ..DecodeOptions::default()
            },
        ] {
            match collect(&mut Decoder::new(opts), input.as_bytes()) {
                Err(DecodeError::NotCloudTrail(why)) => {
                    assert!(why.contains("none of its 2 record(s)"), "{why}");
                }
                other => panic!("expected two records without core fields, got {other:?}"),
            }
        }
        // One such line is one document, on both paths.
        let (raws, _) = collect(&mut Decoder::new(DecodeOptions::default()), line.as_bytes())
            .expect("one delivered document");
        assert_eq!(raws, [REC1.as_bytes()]);
    }

    #[test]
    fn bad_input_gives_clear_errors() {
        let mut d = Decoder::new(DecodeOptions::default());
        let mut check = |input: &[u8], want: &str| {
            let err = collect(&mut d, input).unwrap_err().to_string();
            assert!(
                err.contains(want),
                "{:?}: {err}",
                String::from_utf8_lossy(input)
            );
        };
        check(b"", "empty");
        check(b"  \n", "empty");
        check(b"{\"Records\":[{\"eventVersion\":", "invalid JSON");
        check(b"{\"foo\":1}", "no \"Records\"");
        check(b"{\"Records\":[1]}", "record 0 is not a JSON object");
        check(
            b"[{\"a\":1}]",
            "none of its 1 record(s) has any of eventVersion",
        );
        check(
            b"{\"digestStartTime\":\"x\",\"logFiles\":[]}",
            "digest file",
        );
        check(b"hello", "not CloudTrail");
        let z = gz(b"{\"Records\":[]}");
        check(&z[..z.len() - 3], "gzip");
        let mut two = z.clone();
        two.extend_from_slice(&z);
        check(&two, "after the end of the gzip stream");
    }

    #[test]
    fn streaming_bounds_records_and_reports_truncation() {
        let mut d = Decoder::new(DecodeOptions {
            whole_file_limit: 8,
            max_record_bytes: 100,
            ..DecodeOptions::default()
        });
        let big = format!(
            "{{\"Records\":[{{\"eventVersion\":\"1.0\",\"pad\":\"{}\"}}]}}",
            "x".repeat(5000)
        );
        assert!(matches!(
            collect(&mut d, big.as_bytes()),
            Err(DecodeError::RecordTooLarge { limit: 100 })
        ));
        let mut d = Decoder::new(DecodeOptions {
            whole_file_limit: 8,
            ..DecodeOptions::default()
        });
        assert!(
            collect(&mut d, format!("{{\"Records\":[{REC1},").as_bytes())
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }

    #[test]
    fn verified_decoding_emits_nothing_on_a_hash_mismatch() {
        let input = format!("{{\"Records\":[{REC1},{REC2}]}}");
        let good: [u8; 32] = Sha256::digest(input.as_bytes()).into();
        let bad = [0u8; 32];
        for opts in [
            DecodeOptions::default(),
            DecodeOptions {
                whole_file_limit: 8,
                ..DecodeOptions::default()
            },
        ] {
            let mut d = Decoder::new(opts);
            for bytes in [input.as_bytes().to_vec(), gz(input.as_bytes())] {
                let mut n = 0;
                d.decode_verified(&bytes, &good, &mut |b| {
                    n += b.len();
                    Ok(())
                })
                .unwrap();
                assert_eq!(n, 2);
                let err = d
                    .decode_verified(&bytes, &bad, &mut |_| panic!("nothing may be emitted"))
                    .unwrap_err();
                assert!(matches!(err, DecodeError::HashMismatch { .. }), "{err}");
            }
        }
    }

    #[test]
    fn gzip_bombs_hit_the_cap() {
        let z = gz(&vec![b' '; 4 << 20]);
        let mut d = Decoder::new(DecodeOptions {
            max_decompressed_bytes: 1 << 20,
            ..DecodeOptions::default()
        });
        assert!(matches!(
            collect(&mut d, &z),
            Err(DecodeError::Inflate(InflateError::TooLarge { .. }))
        ));
    }

    #[test]
    fn unexpected_event_versions_warn_but_emit() {
        let mut d = Decoder::new(DecodeOptions::default());
        let (raws, stats) =
            collect(&mut d, br#"[{"eventVersion":"2.0","eventTime":"t"}]"#).unwrap();
        assert_eq!(raws.len(), 1);
        assert_eq!(
            stats.warnings,
            vec![DecodeWarning::UnexpectedEventVersion {
                version: "2.0".into(),
                records: 1
            }]
        );
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let deep = format!(
            "{{\"Records\":[{{\"eventVersion\":\"1\",\"a\":{}1{}}}]}}",
            "[".repeat(500),
            "]".repeat(500)
        );
        let mut d = Decoder::new(DecodeOptions::default());
        assert!(collect(&mut d, deep.as_bytes()).is_err());
        let mut d = Decoder::new(DecodeOptions {
            whole_file_limit: 8,
            ..DecodeOptions::default()
        });
        assert!(collect(&mut d, deep.as_bytes()).is_err());
    }

    /// Every way the tests decode a file: whole, and streamed at chunk sizes
    /// small enough that records straddle reads.
    fn decoders() -> Vec<(String, Decoder)> {
        let mut all = vec![("whole".to_owned(), Decoder::new(DecodeOptions::default()))];
        for chunk in [1, 2, 3, 7, 64, 1000, 4 << 20] {
            all.push((
                format!("streamed, chunk {chunk}"),
                Decoder::new(DecodeOptions {
                    whole_file_limit: 0,
                    stream_chunk_bytes: chunk,
                    batch_size: 2,
                    ..DecodeOptions::default()
                }),
            ));
        }
        all
    }

    /// Each envelope around `records`, plain and gzip.
    fn envelopes(records: &[&str]) -> Vec<(String, Vec<u8>)> {
        let texts = [
            (
                "records",
                format!("{{\"Records\":[{}]}}", records.join(",")),
            ),
            (
                "pretty records",
                format!(
                    "{{\n  \"Records\": [\n    {}\n  ]\n}}\n",
                    records.join(",\n    ")
                ),
            ),
            ("array", format!("[{}]", records.join(" ,\n"))),
            ("lines", format!("{}\n", records.join("\n"))),
        ];
        texts
            .into_iter()
            .flat_map(|(name, text)| {
                [
                    (name.to_owned(), text.clone().into_bytes()),
                    (format!("{name}, gzip"), gz(text.as_bytes())),
                ]
            })
            .collect()
    }

    const ODD_NAMES: &str = r#"{"eventVersion1":"1.08","eventTime1":"2024-01-01T00:00:00Z","userIdentity1":{"type":"Root"},"eventName1":"X"}"#;
    const ALL_ODD: &str = r#"{"a":1,"b":{"eventVersion":"1.08"},"c":[{"eventTime":"t"}]}"#;

    /// Issue 16: trailmill judged a file by record 0 alone, so a first record
    /// with unexpected top-level names cost the file all its good records.
    #[test]
    fn one_odd_record_does_not_cost_a_file_its_good_records() {
        for first in [ODD_NAMES, ALL_ODD] {
            for (envelope, bytes) in envelopes(&[first, REC1, REC2]) {
                for (how, d) in &mut decoders() {
                    let (raws, stats) =
                        collect(d, &bytes).unwrap_or_else(|e| panic!("{envelope}, {how}: {e}"));
                    assert_eq!(
                        raws,
                        vec![first.as_bytes(), REC1.as_bytes(), REC2.as_bytes()],
                        "{envelope}, {how}"
                    );
                    assert_eq!(stats.events, 3);
                    assert_eq!(stats.records_without_core_fields, 1, "{envelope}, {how}");
                    assert_eq!(
                        stats.warnings,
                        vec![DecodeWarning::RecordWithoutCoreFields { index: 0 }],
                        "{envelope}, {how}"
                    );
                }
            }
        }
    }

    /// With the filter's event sources and names, the decoder drops the records that
    /// fail them, on both paths and in every envelope, but still counts
    /// them and still warns about them as it does without the filter.
    #[test]
    fn records_whose_source_or_name_fails_the_filter_are_dropped_but_still_checked() {
        const DESCRIBE: &str = r#"{"eventVersion":"1.08","eventTime":"t","eventName":"DescribeInstances","eventID":"d1","requestParameters":{"x":[1]}}"#;
        const VERSION_2: &str =
            r#"{"eventName":"ListThings","eventTime":"t","eventVersion":"2.0","eventID":"v2"}"#;
        // The name comes last: the record is read whole, and passes.
        const NAME_LAST: &str =
            r#"{"eventVersion":"1.08","eventTime":"t","x":{"y":2},"eventName":"DescribeLast"}"#;
        const EC2: &str = r#"{"eventVersion":"1.08","eventTime":"t","eventSource":"ec2.amazonaws.com","eventName":"DescribeImages","x":[{}]}"#;
        // The source comes last: read whole, and passes a source condition.
        const SOURCE_LAST: &str = r#"{"eventVersion":"1.08","eventTime":"t","eventName":"RunInstances","x":1,"eventSource":"ec2.amazonaws.com"}"#;
        let records = [
            REC1,
            DESCRIBE,
            VERSION_2,
            ALL_ODD,
            NAME_LAST,
            EC2,
            SOURCE_LAST,
        ];
        // Each filter, and the records it keeps (as `CompiledFilter::matches` would).
        let cases = [
            (
                crate::EventFilter {
                    event_names: vec!["Describe*".into()],
                    ..crate::EventFilter::default()
                },
                vec![DESCRIBE, NAME_LAST, EC2],
            ),
            (
                crate::EventFilter {
                    event_sources: vec!["ec2.amazonaws.com".into()],
                    ..crate::EventFilter::default()
                },
                vec![EC2, SOURCE_LAST],
            ),
            (
                crate::EventFilter {
                    event_sources: vec!["ec2.amazonaws.com".into()],
                    event_names: vec!["Describe*".into()],
                    ..crate::EventFilter::default()
                },
                vec![EC2],
            ),
        ];
        for (filter, want) in cases {
            let early = filter.compile().early_filter();
            assert!(early.is_some());
            let want: Vec<Vec<u8>> = want.iter().map(|r| r.as_bytes().to_vec()).collect();
            for (envelope, bytes) in envelopes(&records) {
                for ((how, plain), (_, mut filtered)) in decoders().into_iter().zip(decoders()) {
                    let mut plain = plain;
                    filtered.opts.early_filter = early.clone();
                    let (all, all_stats) = collect(&mut plain, &bytes).unwrap();
                    let (kept, stats) = collect(&mut filtered, &bytes)
                        .unwrap_or_else(|e| panic!("{envelope}, {how}: {e}"));
                    assert_eq!(all.len(), records.len(), "{envelope}, {how}");
                    assert_eq!(kept, want, "{envelope}, {how}, {filter:?}");
                    assert_eq!(stats.events, records.len() as u64, "{envelope}, {how}");
                    assert_eq!(stats.warnings, all_stats.warnings, "{envelope}, {how}");
                    assert_eq!(stats.records_without_core_fields, 1, "{envelope}, {how}");
                    assert!(
                        stats
                            .warnings
                            .contains(&DecodeWarning::UnexpectedEventVersion {
                                version: "2.0".into(),
                                records: 1
                            }),
                        "{envelope}, {how}: {:?}",
                        stats.warnings
                    );
                }
            }
        }
    }

    #[test]
    fn odd_records_anywhere_are_counted_and_warned_by_index() {
        let recs = [REC1, ALL_ODD, REC2, ODD_NAMES];
        for (envelope, bytes) in envelopes(&recs) {
            for (how, d) in &mut decoders() {
                let (raws, stats) = collect(d, &bytes).unwrap();
                assert_eq!(raws.len(), 4, "{envelope}, {how}");
                assert_eq!(
                    stats.warnings,
                    vec![
                        DecodeWarning::RecordWithoutCoreFields { index: 1 },
                        DecodeWarning::RecordWithoutCoreFields { index: 3 },
                    ],
                    "{envelope}, {how}"
                );
            }
        }
    }

    #[test]
    fn a_file_of_many_odd_records_warns_about_the_first_ten_and_counts_the_rest() {
        let mut recs = vec![ALL_ODD; 15];
        recs.push(REC1);
        for (envelope, bytes) in envelopes(&recs) {
            for (how, d) in &mut decoders() {
                let (raws, stats) = collect(d, &bytes).unwrap();
                assert_eq!(raws.len(), 16, "{envelope}, {how}");
                assert_eq!(raws[15], REC1.as_bytes(), "{envelope}, {how}");
                assert_eq!(stats.records_without_core_fields, 15);
                let mut want: Vec<_> = (0..10)
                    .map(|index| DecodeWarning::RecordWithoutCoreFields { index })
                    .collect();
                want.push(DecodeWarning::MoreRecordsWithoutCoreFields { records: 5 });
                assert_eq!(stats.warnings, want, "{envelope}, {how}");
            }
        }
    }

    #[test]
    fn a_file_with_no_cloudtrail_record_is_refused_and_emits_nothing() {
        for records in [vec![ALL_ODD], vec![ALL_ODD, ODD_NAMES, r#"{}"#]] {
            for (envelope, bytes) in envelopes(&records) {
                if envelope.starts_with("lines") && records.len() == 1 {
                    continue; // one line is one lone object, refused below
                }
                for (how, d) in &mut decoders() {
                    let err = d
                        .decode(&bytes, &mut |_| {
                            panic!("{envelope}, {how}: nothing may be emitted")
                        })
                        .unwrap_err();
                    assert!(
                        matches!(&err, DecodeError::NotCloudTrail(m) if m.contains(&format!("none of its {} record(s)", records.len()))),
                        "{envelope}, {how}: {err}"
                    );
                }
            }
        }
        // An AWS Config snapshot: valid JSON, no Records array.
        let config = br#"{"fileVersion":"1.0","configSnapshotId":"x","configurationItems":[{"configurationItemVersion":"1.3","resourceType":"AWS::S3::Bucket"}]}"#;
        for (how, d) in &mut decoders() {
            let err = collect(d, config).unwrap_err();
            assert!(matches!(err, DecodeError::NotCloudTrail(_)), "{how}: {err}");
        }
    }

    /// Issue 11, item 9: the streaming path is proven at its boundaries:
    /// whole-file and streamed decoding give identical output at chunk sizes
    /// down to one byte, with records straddling every read.
    #[test]
    fn whole_and_streamed_decoding_agree_at_tiny_chunk_sizes() {
        let many: Vec<&str> = (0..40).map(|i| [REC1, REC2, ODD_NAMES][i % 3]).collect();
        for (envelope, bytes) in envelopes(&many) {
            let mut reference = Decoder::new(DecodeOptions::default());
            let (want, want_stats) = collect(&mut reference, &bytes).unwrap();
            assert_eq!(want.len(), 40);
            for (how, d) in &mut decoders() {
                let (got, stats) =
                    collect(d, &bytes).unwrap_or_else(|e| panic!("{envelope}, {how}: {e}"));
                assert_eq!(got, want, "{envelope}, {how}");
                assert_eq!(stats.warnings, want_stats.warnings, "{envelope}, {how}");
                assert_eq!(
                    stats.uncompressed_bytes, want_stats.uncompressed_bytes,
                    "{envelope}, {how}"
                );
                assert_eq!(stats.streamed, how != "whole");
            }
        }
    }

    /// Issue 11, item 8: a byte order mark before the JSON made the file "not CloudTrail".
    #[test]
    fn a_utf8_byte_order_mark_is_skipped() {
        for (envelope, bytes) in envelopes(&[REC1, REC2]) {
            if envelope.ends_with("gzip") {
                continue;
            }
            let mut with_bom = UTF8_BOM.to_vec();
            with_bom.extend_from_slice(&bytes);
            for input in [with_bom.clone(), gz(&with_bom)] {
                for (how, d) in &mut decoders() {
                    let (raws, _) =
                        collect(d, &input).unwrap_or_else(|e| panic!("{envelope}, {how}: {e}"));
                    assert_eq!(
                        raws,
                        vec![REC1.as_bytes(), REC2.as_bytes()],
                        "{envelope}, {how}"
                    );
                }
            }
        }
    }

    /// Issue 11, item 8: data after the document was reported as simd-json's "InternalError".
    #[test]
    fn data_after_the_document_is_reported_as_trailing_data() {
        for input in [
            format!("{{\"Records\":[{REC1}]}} x"),
            format!("{{\"Records\":[{REC1}]}} {{\"Records\":[]}}"),
            format!("[{REC1}]]"),
        ] {
            for bytes in [input.as_bytes().to_vec(), gz(input.as_bytes())] {
                for (how, d) in &mut decoders() {
                    let err = collect(d, &bytes).unwrap_err().to_string();
                    assert!(
                        err.contains("trailing data after the JSON document"),
                        "{input}, {how}: {err}"
                    );
                    assert!(!err.contains("InternalError"), "{err}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut d = Decoder::new(DecodeOptions::default());
            let _ = collect(&mut d, &bytes);
            let mut s = Decoder::new(DecodeOptions { whole_file_limit: 4, ..DecodeOptions::default() });
            let _ = collect(&mut s, &bytes);
        }

        #[test]
        fn mutated_records_never_panic(pos in 0usize..400, byte in proptest::num::u8::ANY, gzip: bool) {
            let mut input = format!("{{\"Records\":[{REC1},{REC2}]}}").into_bytes();
            let p = pos % input.len();
            input[p] = byte;
            let input = if gzip { let mut z = gz(&input); let q = pos % z.len(); z[q] ^= byte; z } else { input };
            let mut d = Decoder::new(DecodeOptions::default());
            let _ = collect(&mut d, &input);
            let mut s = Decoder::new(DecodeOptions { whole_file_limit: 16, ..DecodeOptions::default() });
            let _ = collect(&mut s, &input);
        }
    }
}
