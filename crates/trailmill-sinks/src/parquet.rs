//! Parquet: a Hive-partitioned data lake that Athena, DuckDB and Spark read.
//!
//! # Layout
//!
//! ```text
//! DIR/account=123456789012/region=us-east-1/date=2024-01-01/part-20240101T000000Z-1a2b3c4d-000007.parquet
//! ```
//!
//! - `account` is `recipientAccountId`, else `userIdentity.accountId`.
//! - `region` is `awsRegion`.
//! - `date` is the UTC date of `eventTime`.
//!
//! A missing value (or an `eventTime` that does not parse) is written as
//! `__HIVE_DEFAULT_PARTITION__`, the name Hive, Spark and Athena read as NULL.
//! Characters other than `A-Z a-z 0-9 . _ -` in a value are written `%XX`, as
//! Hive escapes them, so that no value can leave its directory.
//!
//! # Schema
//!
//! See [`schema`] and the README: typed columns for the top-level fields and
//! the `userIdentity` fields, `event_time` as a UTC microsecond timestamp, the
//! free-form objects as JSON text exactly as written, the source file, and
//! the record's exact text in `raw`. Files are zstd-compressed; low-cardinality
//! columns are dictionary-encoded; row groups close at
//! [`ParquetOptions::row_group_bytes`] (estimated encoded size).
//!
//! # Atomic files and the commit protocol
//!
//! A file is written under a name query engines skip (`.part-….parquet.tmp`:
//! Hive, Spark, Athena and DuckDB globs ignore dot files and other suffixes).
//! [`Sink::commit`] closes every open file (footer written), fsyncs it,
//! renames it to its final `part-<run>-<seq>.parquet` name and fsyncs the
//! directories; only then does it return. A file may also be closed earlier
//! (too many open partitions, [`ParquetOptions::target_file_bytes`],
//! [`ParquetOptions::max_file_rows`]) but is still
//! renamed only at the next commit, so no final-named file ever holds events
//! of an uncommitted window. Opening the sink deletes the `.tmp` files a
//! crashed run left behind; only one run may write a directory at a time.
//!
//! A write or close failure loses rows of the open window, so the sink then
//! stays failed: every later call returns the error, and no later commit can
//! report those events durable.
//!
//! # Duplicates
//!
//! Parquet files cannot be deduplicated on write. Delivery is at-least-once:
//! files committed by a run stay, and events redone after a crash (the files
//! in flight) are written again. Within one run, an event whose key (the
//! `eventID`, or `sha256:` of the record) was seen among the last
//! [`ParquetOptions::dedupe_window`] to 2× that many keys is dropped and
//! counted in [`SinkStats::duplicates`]; this catches CloudTrail's duplicate
//! deliveries, which arrive close together. Readers who need exactly-once
//! should `SELECT DISTINCT ON (event_id)` or group by `event_id`.
//!
//! # Threads and memory
//!
//! The pipeline calls a sink under a lock, so [`Sink::write_batch`] only
//! copies values into per-partition Arrow builders. Full buffers go to
//! encoder threads (a partition always to the same one) that encode, compress
//! and write. Memory is bounded by the buffers
//! ([`ParquetOptions::max_buffered_bytes`]), the bounded queues, and the
//! row groups in progress of at most [`ParquetOptions::max_open_files`] open
//! files: each closes at [`ParquetOptions::row_group_bytes`], and all of an
//! encoder's together are held under its share of
//! [`ParquetOptions::max_open_bytes`] by writing out the largest early.
//!
//! A partition's fixed encoder does all of a lone partition's encoding (a
//! backfill read in key order): on a one-partition corpus (618 MB) one
//! encoder thread had 56% of the run's CPU samples and the other none. Two
//! ways to use the idle encoder were measured and left out:
//! - Sending a full buffer to the least busy encoder, each encoder with its
//!   own file per partition: 2.41 s against 2.59–2.68 s (36 partitions:
//!   2.33–2.38 s against 2.46–2.52 s), for twice the files and peak RSS up
//!   to 237 MB against 225 MB, too near the 256 MB bound. (Before the JSON
//!   index made decoding twice as fast, it gained 1%.)
//! - Encoding each batch's columns on two threads within one file
//!   (parquet's `ArrowColumnWriter` API, columns balanced by size onto a
//!   scoped helper): the encoder's share fell to 34%, but the run took as
//!   long (2.62–2.68 s against 2.63–2.67 s), with 3–5% more CPU. Both cores
//!   were 85% busy throughout; the run's total CPU bounds it.
//!
//! Nor is the sink's lock. One sink per worker (each with its own builders
//! and one encoder thread, so rows are built on both workers at once) was
//! measured at 2.84–2.95 s against 3.00–3.09 s shared, for 30–60 MB more
//! RSS and twice the files. The run is bound by CPU: 4.7 s of it against
//! 1.3 s for decoding alone, spread over zstd (about a quarter, most of it
//! for `raw`, 620 MB of the 1,016 MB of column data), copies into builders
//! and pages, dictionaries and statistics of the small columns, and the
//! `userIdentity` and `tlsDetails` views.
//!
//! Compression alone keeps a load from running at half the speed of
//! decoding on two cores (measured 2026-12-07 on that corpus, whose null
//! run took 0.43 s and 0.83 CPU-s): half of it leaves 0.89 CPU-s after
//! decoding, while zstd at level 1 compresses these records at 754 MB/s on
//! one core and LZ4 at 959 MB/s (`zstd -b1`, `lz4 -b1`), so the default
//! layout's 1,016 MB of column data costs 1.35 CPU-s in zstd and 1.06 in
//! LZ4 before a single column is built. The README's lake section has the
//! figures for each layout and codec.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arrow_array::builder::{BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use crossbeam_channel::{Receiver, Sender};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use trailmill_core::Event;
use trailmill_core::event::{SessionContext, SessionIssuer, TlsDetails, UserIdentity};
use trailmill_pipeline::{Sink, SinkError, SinkStats, SourceObject};

use crate::common::{event_key, parse_time_micros};
use trailmill_core::time::civil_from_days;

/// The partition value Hive, Spark and Athena read as NULL.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Tuning for [`ParquetSink`]. The defaults suit a backfill on a few cores.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ParquetOptions {
    /// The codec of every column.
    pub codec: Codec,
    /// zstd level, when the codec is zstd (1 is fast and still compresses
    /// CloudTrail JSON about 8:1).
    pub zstd_level: i32,
    /// Write the free-form objects (`request_parameters`,
    /// `response_elements`, …) as JSON text columns. They repeat what `raw`
    /// holds, so leaving them out halves the text to compress; queries then
    /// extract from `raw` (`json_extract(raw, '$.requestParameters.x')`).
    pub json_columns: bool,
    /// Write `raw`, each record's exact text.
    pub raw_column: bool,
    /// A row group closes when its estimated encoded size reaches this.
    pub row_group_bytes: usize,
    /// A file closes after this many rows (it is renamed at the next commit).
    pub max_file_rows: u64,
    /// A file closes once its size (written plus buffered, encoded) reaches
    /// this; it becomes visible at the next commit. Query engines read
    /// files of 64–512 MiB best; a file also closes at every commit, so
    /// files reach this size only when a checkpoint interval gathers that
    /// much per partition (see the README's trade-off).
    pub target_file_bytes: u64,
    /// Rows buffered per partition before they go to an encoder.
    pub batch_rows: usize,
    /// Record bytes buffered over all partitions before all buffers go to
    /// the encoders. The builders hold about twice this (the JSON text
    /// columns repeat most of each record), and a full set may wait in the
    /// encoders' queues while the next fills: 12 MiB took an organisation
    /// trail written 36 partitions at a time to 231–252 MB peak RSS, 8 MiB
    /// to 219–222 MB, at the same speed.
    pub max_buffered_bytes: usize,
    /// Files open at once (over all encoders); the least recently written is
    /// closed to open another.
    pub max_open_files: usize,
    /// Memory the row groups in progress of all open files may hold
    /// together (split evenly between the encoders). Past it, the largest
    /// is written out early: a smaller row group in the same file. Without
    /// it, [`ParquetOptions::max_open_files`] partitions written at once
    /// held about 15 MB each (an organisation trail's 36 partitions peaked
    /// at 516 MB RSS; with 16 MiB, at 226-231 MiB, in row groups of about
    /// 4,000 events).
    pub max_open_bytes: usize,
    /// Encoder threads (default: one per core).
    pub encoder_threads: usize,
    /// Keys remembered for in-run deduplication (0: off): a key seen among
    /// the last this many to twice this many is a repeat. Memory: two
    /// tables allocated when the sink opens, each of 17-byte slots, the
    /// next power of two at or above 8/7 of this: the default, 917,504
    /// (7 × 2^17), fills 2^20 slots exactly, 36 MB for both.
    pub dedupe_window: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            codec: Codec::Zstd,
            zstd_level: 1,
            json_columns: true,
            raw_column: true,
            row_group_bytes: 8 << 20,
            max_file_rows: 2_000_000,
            target_file_bytes: 128 << 20,
            batch_rows: 2048,
            max_buffered_bytes: 8 << 20,
            max_open_files: 16,
            max_open_bytes: 16 << 20,
            encoder_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            dedupe_window: 7 << 17,
        }
    }
}

impl ParquetOptions {
    /// These options for a run whose `stores` stores share the memory bound
    /// (see [`crate::memory_share`]): the buffered records, the open
    /// files' row groups and the dedupe window are divided among them.
    pub fn shared(mut self, stores: usize) -> Self {
        use crate::memory_share;
        self.max_buffered_bytes = memory_share(self.max_buffered_bytes, stores, 2 << 20);
        self.max_open_bytes = memory_share(self.max_open_bytes, stores, 4 << 20);
        if self.dedupe_window > 0 {
            // 114,688 keys fill 2^17 slots, as the default fills 2^20.
            self.dedupe_window = memory_share(self.dedupe_window, stores, 7 << 14);
        }
        self
    }
}

/// A Parquet compression codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// zstd at [`ParquetOptions::zstd_level`]: the smallest files.
    Zstd,
    /// LZ4 (the `LZ4_RAW` codec): faster, larger files.
    Lz4,
    /// Snappy: what many older readers expect.
    Snappy,
    /// No compression.
    None,
}

impl std::str::FromStr for Codec {
    type Err = String;

    fn from_str(s: &str) -> Result<Codec, String> {
        match s {
            "zstd" => Ok(Codec::Zstd),
            "lz4" => Ok(Codec::Lz4),
            "snappy" => Ok(Codec::Snappy),
            "none" => Ok(Codec::None),
            _ => Err(format!("{s:?} is not a codec: zstd, lz4, snappy or none")),
        }
    }
}

/// The columns that hold JSON text copied from the record.
pub const JSON_COLUMNS: &[&str] = &[
    "user_identity",
    "request_parameters",
    "response_elements",
    "additional_event_data",
    "service_event_details",
    "event_context",
    "edge_device_details",
    "insight_details",
    "resources",
    "tls_details",
    "addendum",
];

/// True when `opts` keeps column `name`.
fn keeps(opts: &ParquetOptions, name: &str) -> bool {
    if JSON_COLUMNS.contains(&name) {
        opts.json_columns
    } else if name == "raw" {
        opts.raw_column
    } else {
        true
    }
}

/// What one row is made from: the event, its parsed parts, and its file.
struct Row<'r, 'a> {
    e: &'r Event<'a>,
    key: &'r str,
    time: Option<i64>,
    file: &'r str,
    user: UserIdentity<'a>,
    session: SessionContext<'a>,
    issuer: SessionIssuer<'a>,
    tls: Option<TlsDetails<'a>>,
}

impl<'r, 'a> Row<'r, 'a> {
    fn new(e: &'r Event<'a>, key: &'r str, time: Option<i64>, file: &'r str) -> Self {
        let user = e.user_identity().unwrap_or_default();
        let session = user.session_context.unwrap_or_default();
        Row {
            e,
            key,
            time,
            file,
            user,
            session,
            issuer: session.session_issuer.unwrap_or_default(),
            tls: e.tls_details(),
        }
    }
}

/// Builds events into Arrow record batches with the lake's columns
/// ([`schema_for`]), with no partitioning and no deduplication: every event
/// appended is a row. What `trailmill.scan` in Python streams, and a
/// building block for any Arrow consumer.
pub struct EventBatchBuilder {
    columns: Columns,
    schema: SchemaRef,
}

impl EventBatchBuilder {
    /// An empty builder for the columns `opts` keeps
    /// ([`ParquetOptions::json_columns`], [`ParquetOptions::raw_column`]).
    pub fn new(opts: &ParquetOptions) -> Self {
        EventBatchBuilder {
            columns: Columns::new(Keep::new(opts)),
            schema: schema_for(opts),
        }
    }

    /// The schema of the batches [`EventBatchBuilder::finish`] returns.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Appends `event`, read from the object named `file`, as one row.
    pub fn append(&mut self, event: &Event<'_>, file: &str) {
        let key = event_key(event);
        let time = event.event_time.and_then(parse_time_micros);
        self.columns.append(&Row::new(event, &key, time, file));
    }

    /// Rows appended since the last [`EventBatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.columns.rows
    }

    /// True when no row is buffered.
    pub fn is_empty(&self) -> bool {
        self.columns.rows == 0
    }

    /// The original bytes of the buffered rows' records: a measure of the
    /// memory they hold (their text columns hold about as much again).
    pub fn buffered_bytes(&self) -> usize {
        self.columns.bytes
    }

    /// The buffered rows as one batch; the builder starts empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        self.columns.finish_and_reserve(&self.schema)
    }
}

fn text_bool(s: Option<&str>) -> Option<bool> {
    match s {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    }
}

macro_rules! builder_of {
    (Str) => {
        StringBuilder
    };
    (Bool) => {
        BooleanBuilder
    };
    (Time) => {
        TimestampMicrosecondBuilder
    };
}

macro_rules! new_builder {
    (Str) => {
        StringBuilder::new()
    };
    (Bool) => {
        BooleanBuilder::new()
    };
    (Time) => {
        TimestampMicrosecondBuilder::new().with_timezone("UTC")
    };
}

/// A builder sized for a batch like `array` (the previous one), so that the
/// next batch's values are copied once instead of through repeated growth.
macro_rules! builder_like {
    (Str, $array:expr) => {
        StringBuilder::with_capacity($array.len(), $array.value_data().len())
    };
    (Bool, $array:expr) => {
        BooleanBuilder::with_capacity($array.len())
    };
    (Time, $array:expr) => {
        TimestampMicrosecondBuilder::with_capacity($array.len()).with_timezone("UTC")
    };
}

macro_rules! data_type {
    (Str) => {
        DataType::Utf8
    };
    (Bool) => {
        DataType::Boolean
    };
    (Time) => {
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    };
}

/// The columns, each defined once: name, Arrow kind, encoding (`dict`:
/// dictionary-encoded with statistics, for low-cardinality values; `plain`:
/// high-cardinality text, where a dictionary and min/max statistics only
/// cost time), nullability, and how a [`Row`] fills it.
macro_rules! columns {
    ($( $name:ident : $kind:ident, $enc:ident, $nullable:literal, |$r:ident| $value:expr; )*) => {
        /// Which columns a sink writes.
        #[derive(Clone, Copy)]
        struct Keep {
            $( $name: bool, )*
        }

        impl Keep {
            fn new(opts: &ParquetOptions) -> Self {
                Keep { $( $name: keeps(opts, stringify!($name)), )* }
            }
        }

        /// Arrow builders for a partition's buffered rows.
        struct Columns {
            $( $name: builder_of!($kind), )*
            keep: Keep,
            rows: usize,
            bytes: usize,
        }

        impl Columns {
            fn new(keep: Keep) -> Self {
                Columns { $( $name: new_builder!($kind), )* keep, rows: 0, bytes: 0 }
            }

            fn append(&mut self, row: &Row<'_, '_>) {
                $( if self.keep.$name {
                    let $r = row;
                    self.$name.append_option($value);
                } )*
                self.rows += 1;
                self.bytes += row.e.raw.len();
            }

            /// The buffered rows as one batch; the builders start empty.
            fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, arrow_schema::ArrowError> {
                let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
                $( if self.keep.$name { arrays.push(Arc::new(self.$name.finish())); } )*
                self.rows = 0;
                self.bytes = 0;
                RecordBatch::try_new(schema.clone(), arrays)
            }

            /// Like `finish`, but the builders keep room for a batch as
            /// large as this one: for a builder that makes one batch after
            /// another (a partition's buffers are dropped instead).
            fn finish_and_reserve(&mut self, schema: &SchemaRef) -> Result<RecordBatch, arrow_schema::ArrowError> {
                let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
                $( if self.keep.$name {
                    let array = self.$name.finish();
                    self.$name = builder_like!($kind, array);
                    arrays.push(Arc::new(array));
                } )*
                self.rows = 0;
                self.bytes = 0;
                RecordBatch::try_new(schema.clone(), arrays)
            }
        }

        /// The Arrow schema of every column the lake can hold: what
        /// [`ParquetSink`] writes with the default options.
        pub fn schema() -> SchemaRef {
            Arc::new(Schema::new(vec![
                $( Field::new(stringify!($name), data_type!($kind), $nullable), )*
            ]))
        }

        /// The Arrow schema of the files a sink with `opts` writes.
        pub fn schema_for(opts: &ParquetOptions) -> SchemaRef {
            let keep = Keep::new(opts);
            let mut fields = Vec::new();
            $( if keep.$name {
                fields.push(Field::new(stringify!($name), data_type!($kind), $nullable));
            } )*
            Arc::new(Schema::new(fields))
        }

        /// Column names whose values are high-cardinality text.
        const PLAIN_COLUMNS: &[&str] = &[ $( plain_name!($enc, $name), )* ];
    };
}

macro_rules! plain_name {
    (plain, $name:ident) => {
        stringify!($name)
    };
    (dict, $name:ident) => {
        ""
    };
}

columns! {
    event_id: Str, plain, false, |r| Some(r.key);
    event_time: Time, dict, true, |r| r.time;
    event_version: Str, dict, true, |r| r.e.event_version;
    event_source: Str, dict, true, |r| r.e.event_source;
    event_name: Str, dict, true, |r| r.e.event_name;
    aws_region: Str, dict, true, |r| r.e.aws_region;
    source_ip_address: Str, dict, true, |r| r.e.source_ip_address;
    user_agent: Str, dict, true, |r| r.e.user_agent;
    error_code: Str, dict, true, |r| r.e.error_code;
    error_message: Str, plain, true, |r| r.e.error_message;
    request_id: Str, plain, true, |r| r.e.request_id;
    event_type: Str, dict, true, |r| r.e.event_type;
    api_version: Str, dict, true, |r| r.e.api_version;
    read_only: Bool, dict, true, |r| r.e.read_only;
    management_event: Bool, dict, true, |r| r.e.management_event;
    recipient_account_id: Str, dict, true, |r| r.e.recipient_account_id;
    shared_event_id: Str, plain, true, |r| r.e.shared_event_id;
    vpc_endpoint_id: Str, dict, true, |r| r.e.vpc_endpoint_id;
    vpc_endpoint_account_id: Str, dict, true, |r| r.e.vpc_endpoint_account_id;
    event_category: Str, dict, true, |r| r.e.event_category;
    session_credential_from_console: Bool, dict, true, |r| text_bool(r.e.session_credential_from_console);
    user_type: Str, dict, true, |r| r.user.identity_type;
    user_principal_id: Str, dict, true, |r| r.user.principal_id;
    user_arn: Str, dict, true, |r| r.user.arn;
    user_account_id: Str, dict, true, |r| r.user.account_id;
    user_access_key_id: Str, dict, true, |r| r.user.access_key_id;
    user_name: Str, dict, true, |r| r.user.user_name;
    user_invoked_by: Str, dict, true, |r| r.user.invoked_by;
    user_identity_provider: Str, dict, true, |r| r.user.identity_provider;
    user_credential_id: Str, dict, true, |r| r.user.credential_id;
    session_creation_date: Time, dict, true, |r| r.session.creation_date.and_then(parse_time_micros);
    session_mfa_authenticated: Bool, dict, true, |r| text_bool(r.session.mfa_authenticated);
    session_source_identity: Str, dict, true, |r| r.session.source_identity;
    session_issuer_type: Str, dict, true, |r| r.issuer.issuer_type;
    session_issuer_principal_id: Str, dict, true, |r| r.issuer.principal_id;
    session_issuer_arn: Str, dict, true, |r| r.issuer.arn;
    session_issuer_account_id: Str, dict, true, |r| r.issuer.account_id;
    session_issuer_user_name: Str, dict, true, |r| r.issuer.user_name;
    tls_version: Str, dict, true, |r| r.tls.and_then(|t| t.tls_version);
    tls_cipher_suite: Str, dict, true, |r| r.tls.and_then(|t| t.cipher_suite);
    tls_client_provided_host_header: Str, dict, true, |r| r.tls.and_then(|t| t.client_provided_host_header);
    user_identity: Str, plain, true, |r| r.user.raw.map(|j| j.as_str());
    request_parameters: Str, plain, true, |r| r.e.request_parameters.map(|j| j.as_str());
    response_elements: Str, plain, true, |r| r.e.response_elements.map(|j| j.as_str());
    additional_event_data: Str, plain, true, |r| r.e.additional_event_data.map(|j| j.as_str());
    service_event_details: Str, plain, true, |r| r.e.service_event_details.map(|j| j.as_str());
    event_context: Str, plain, true, |r| r.e.event_context.map(|j| j.as_str());
    edge_device_details: Str, plain, true, |r| r.e.edge_device_details.map(|j| j.as_str());
    insight_details: Str, plain, true, |r| r.e.insight_details.map(|j| j.as_str());
    resources: Str, plain, true, |r| r.e.resources_raw().map(|j| j.as_str());
    tls_details: Str, plain, true, |r| r.e.tls_details_raw().map(|j| j.as_str());
    addendum: Str, plain, true, |r| r.e.addendum_raw().map(|j| j.as_str());
    source_object: Str, dict, false, |r| Some(r.file);
    raw: Str, plain, false, |r| Some(r.e.raw_str());
}

/// The writer settings: zstd, dictionaries and statistics only where they pay.
pub fn writer_properties(opts: &ParquetOptions) -> Result<WriterProperties, SinkError> {
    let level = ZstdLevel::try_new(opts.zstd_level).map_err(|e| {
        SinkError::with_source(format!("zstd level {} is not valid", opts.zstd_level), e)
    })?;
    let compression = match opts.codec {
        Codec::Zstd => Compression::ZSTD(level),
        Codec::Lz4 => Compression::LZ4_RAW,
        Codec::Snappy => Compression::SNAPPY,
        Codec::None => Compression::UNCOMPRESSED,
    };
    let mut b = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_bytes(Some(opts.row_group_bytes.max(1)))
        .set_max_row_group_row_count(None)
        .set_created_by(concat!("trailmill ", env!("CARGO_PKG_VERSION")).into());
    for name in PLAIN_COLUMNS.iter().filter(|n| !n.is_empty()) {
        let col = ColumnPath::from(*name);
        b = b
            .set_column_dictionary_enabled(col.clone(), false)
            .set_column_statistics_enabled(col, EnabledStatistics::None);
    }
    Ok(b.build())
}

/// What an encoder thread does with the batches of the partitions routed to
/// it. [`ParquetSink`] writes files ([`LocalFiles`]); other lake sinks, such
/// as the Iceberg one, bring their own writer and reuse the buffering,
/// partitioning and threads of [`PartitionedWriter`].
pub trait PartitionWriter: Send + 'static {
    /// What a commit of this writer hands back to the sink: bytes made
    /// durable, or the data files for a table commit.
    type Committed: Send + 'static;

    /// Appends `batch`, all of whose rows belong to the partition named
    /// `partition` (a Hive path such as `account=1/region=r/date=d`).
    fn write(&mut self, partition: &Arc<str>, batch: &RecordBatch) -> Result<(), String>;

    /// Finishes everything written since the last commit.
    fn commit(&mut self) -> Result<Self::Committed, String>;

    /// Drops everything written since the last commit, after the sink's
    /// commit failed; the writer then starts a new window.
    fn abort(&mut self) {}
}

/// Buffers events per partition in Arrow builders and hands full buffers to
/// encoder threads, each owning a [`PartitionWriter`]; a partition always
/// goes to the same thread. The engine under [`ParquetSink`] and the other
/// lake sinks. See the module docs for memory and deduplication.
pub struct PartitionedWriter<W: PartitionWriter> {
    name: String,
    opts: ParquetOptions,
    schema: SchemaRef,
    keep: Keep,
    /// Buffered partitions; cleared at each commit.
    partitions: Vec<Partition>,
    by_dir: HashMap<String, usize>,
    /// The partition of the previous event: events of one file nearly always
    /// share it, so the common case needs no lookup and no allocation.
    last: Option<usize>,
    buffered_bytes: usize,
    encoders: Vec<EncoderHandle<W::Committed>>,
    /// The first failure an encoder hit since the last commit.
    failure: Arc<Mutex<Option<String>>>,
    seen: SeenKeys,
    stats: SinkStats,
    /// Events of `stats.events_written` that are not durable yet: an abort
    /// takes them back.
    window_written: u64,
}

struct Partition {
    account: Box<str>,
    region: Box<str>,
    day: Option<i64>,
    dir: Arc<str>,
    encoder: usize,
    columns: Columns,
}

impl<W: PartitionWriter> PartitionedWriter<W> {
    /// Starts `opts.encoder_threads` encoder threads, the `i`th writing
    /// through `writer(i)`. `name` labels errors and thread names.
    pub fn start(
        name: String,
        opts: ParquetOptions,
        mut writer: impl FnMut(usize) -> W,
    ) -> Result<Self, SinkError> {
        let failure = Arc::new(Mutex::new(None));
        let threads = opts.encoder_threads.max(1);
        let mut encoders = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, rx) = crossbeam_channel::bounded(2);
            let encoder = Encoder {
                writer: writer(i),
                error: None,
                failure: failure.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("trailmill-encoder-{i}"))
                .spawn(move || encoder.run(rx))
                .map_err(|e| {
                    SinkError::with_source(format!("{name}: cannot start an encoder thread"), e)
                })?;
            encoders.push(EncoderHandle {
                tx: Some(tx),
                thread: Some(thread),
            });
        }
        Ok(PartitionedWriter {
            name,
            seen: SeenKeys::new(opts.dedupe_window),
            schema: schema_for(&opts),
            keep: Keep::new(&opts),
            opts,
            partitions: Vec::new(),
            by_dir: HashMap::new(),
            last: None,
            buffered_bytes: 0,
            encoders,
            failure,
            stats: SinkStats::default(),
            window_written: 0,
        })
    }

    /// What was received, written and collapsed so far.
    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    /// The counters, for a sink that adds what it knows (bytes, skipped
    /// events).
    pub fn stats_mut(&mut self) -> &mut SinkStats {
        &mut self.stats
    }

    /// The first encoder failure of the window, if any.
    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The index of the partition `e` belongs to, creating its buffer.
    fn partition_of(&mut self, e: &Event<'_>, time: Option<i64>) -> usize {
        let account = e
            .recipient_account_id
            .or_else(|| e.user_identity().and_then(|u| u.account_id))
            .unwrap_or(NULL_PARTITION);
        let region = e.aws_region.unwrap_or(NULL_PARTITION);
        let day = time.map(|t| t.div_euclid(86_400_000_000));
        if let Some(i) = self.last {
            let p = &self.partitions[i];
            if p.day == day && *p.account == *account && *p.region == *region {
                return i;
            }
        }
        let date = day.map_or_else(
            || NULL_PARTITION.to_owned(),
            |d| {
                let (y, m, d) = civil_from_days(d);
                format!("{y:04}-{m:02}-{d:02}")
            },
        );
        let dir = format!(
            "account={}/region={}/date={}",
            escape(account),
            escape(region),
            date
        );
        let i = match self.by_dir.get(&dir) {
            Some(&i) => i,
            None => {
                let i = self.partitions.len();
                let encoder = (fnv1a(dir.as_bytes()) % self.encoders.len() as u64) as usize;
                self.by_dir.insert(dir.clone(), i);
                self.partitions.push(Partition {
                    account: account.into(),
                    region: region.into(),
                    day,
                    dir: dir.into(),
                    encoder,
                    columns: Columns::new(self.keep),
                });
                i
            }
        };
        self.last = Some(i);
        i
    }

    /// Sends partition `i`'s buffered rows to its encoder.
    fn flush_partition(&mut self, i: usize) -> Result<(), SinkError> {
        let p = &mut self.partitions[i];
        if p.columns.rows == 0 {
            return Ok(());
        }
        self.buffered_bytes -= p.columns.bytes;
        // The builders start empty again. Keeping their room would save the
        // copies of their growth (about 3% of a load's CPU), but the room
        // of every partition seen since the last `flush_all` would stay: a
        // backfill read in key order fills one day's partitions after
        // another, up to 1,024 of them, several MB each.
        let batch = p.columns.finish(&self.schema).map_err(|e| {
            SinkError::with_source(format!("{}: cannot build a record batch", self.name), e)
        })?;
        let job = Job::Write {
            dir: p.dir.clone(),
            batch,
        };
        self.encoders[p.encoder].send(job, &self.name)
    }

    fn flush_all(&mut self) -> Result<(), SinkError> {
        for i in 0..self.partitions.len() {
            self.flush_partition(i)?;
        }
        // Buffers are rebuilt on demand: a long backfill touches many
        // partitions, and keeping every one would grow without bound.
        self.partitions.clear();
        self.by_dir.clear();
        self.last = None;
        Ok(())
    }

    /// Buffers `events` of `file`, dropping repeats within the window.
    pub fn write_batch(
        &mut self,
        file: &SourceObject,
        events: &[Event<'_>],
    ) -> Result<(), SinkError> {
        if let Some(reason) = self.failure() {
            return Err(SinkError::new(format!("{}: {reason}", self.name)));
        }
        for e in events {
            self.stats.events_received += 1;
            let key = event_key(e);
            if self.seen.is_repeat(&key) {
                self.stats.duplicates += 1;
                continue;
            }
            let time = e.event_time.and_then(parse_time_micros);
            let i = self.partition_of(e, time);
            let columns = &mut self.partitions[i].columns;
            columns.append(&Row::new(e, &key, time, &file.name));
            self.buffered_bytes += e.raw.len();
            self.stats.events_written += 1;
            self.window_written += 1;
            if columns.rows >= self.opts.batch_rows {
                self.flush_partition(i)?;
            }
        }
        if self.buffered_bytes >= self.opts.max_buffered_bytes || self.partitions.len() > 1024 {
            self.flush_all()?;
        }
        Ok(())
    }

    /// Hands every buffer to the encoders and commits each writer; returns
    /// what each committed, or the window's first failure.
    pub fn commit(&mut self) -> Result<Vec<W::Committed>, SinkError> {
        self.flush_all()?;
        let mut replies = Vec::with_capacity(self.encoders.len());
        for enc in &self.encoders {
            let (tx, rx) = crossbeam_channel::bounded(1);
            enc.send(Job::Commit(tx), &self.name)?;
            replies.push(rx);
        }
        let mut committed = Vec::with_capacity(replies.len());
        let mut first_error = None;
        for rx in replies {
            match rx.recv() {
                Ok(Ok(c)) => committed.push(c),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| "an encoder thread stopped".to_owned());
                }
            }
        }
        match first_error.or_else(|| self.failure()) {
            Some(e) => Err(SinkError::new(format!("{}: commit failed: {e}", self.name))),
            None => Ok(committed),
        }
    }

    /// Marks the window's events durable (after [`PartitionedWriter::commit`]
    /// and whatever the sink does with what it returns): a later abort no
    /// longer takes them back from [`SinkStats::events_written`].
    pub fn window_committed(&mut self) {
        self.window_written = 0;
    }

    /// Forgets the window after a failed commit: the writers drop what they
    /// wrote, the failure is cleared, the window's events no longer count as
    /// written, and the in-run deduplication forgets its keys, since the
    /// events it saw were not stored and will be redone.
    pub fn abort(&mut self) {
        self.stats.events_written -= self.window_written;
        self.window_written = 0;
        self.partitions.clear();
        self.by_dir.clear();
        self.last = None;
        self.buffered_bytes = 0;
        let mut replies = Vec::new();
        for enc in &self.encoders {
            let (tx, rx) = crossbeam_channel::bounded(1);
            if enc.send(Job::Abort(tx), &self.name).is_ok() {
                replies.push(rx);
            }
        }
        for rx in replies {
            let _ = rx.recv();
        }
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.seen.clear();
    }

    /// Stops the encoder threads (after a commit, or to give up the window).
    pub fn close(&mut self) {
        for enc in &mut self.encoders {
            enc.tx = None;
            if let Some(t) = enc.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl<W: PartitionWriter> Drop for PartitionedWriter<W> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Writes events as Hive-partitioned Parquet files under a directory, or
/// stages them there and publishes them elsewhere (`parquet:s3://`). See
/// the module docs for the layout, the commit protocol and the guarantees.
pub struct ParquetSink {
    name: String,
    inner: PartitionedWriter<LocalFiles>,
}

impl ParquetSink {
    /// Opens `dir` (creating it) with the default options.
    pub fn open(dir: &Path) -> Result<Self, SinkError> {
        Self::with_options(dir, ParquetOptions::default())
    }

    /// Opens `dir` (creating it), deletes temporary files a crashed run left
    /// behind, and starts the encoder threads.
    pub fn with_options(dir: &Path, opts: ParquetOptions) -> Result<Self, SinkError> {
        Self::start(format!("parquet:{}", dir.display()), dir, None, opts)
    }

    /// A sink that writes each file under `staging` (a local directory of
    /// its own, emptied on open) and, at each commit, hands the finished
    /// file to `publisher`, which makes it visible at its place in the lake
    /// (the same Hive path) and returns once it is durable. `name` is the
    /// sink's label, such as `parquet:s3://bucket/prefix`.
    pub fn publishing(
        name: String,
        staging: &Path,
        publisher: Arc<dyn Publisher>,
        opts: ParquetOptions,
    ) -> Result<Self, SinkError> {
        Self::start(name, staging, Some(publisher), opts)
    }

    fn start(
        name: String,
        dir: &Path,
        publisher: Option<Arc<dyn Publisher>>,
        opts: ParquetOptions,
    ) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            SinkError::with_source(format!("{name}: cannot create {}", dir.display()), e)
        })?;
        let removed = remove_temporaries(dir)
            .map_err(|e| SinkError::with_source(format!("{name}: cannot clean up"), e))?;
        if removed > 0 {
            tracing::info!(sink = %name, removed, "deleted temporary files of an unfinished run");
        }
        let props = writer_properties(&opts)?;
        let schema = schema_for(&opts);
        let run_id = run_id();
        let seq = Arc::new(AtomicU64::new(0));
        let threads = opts.encoder_threads.max(1);
        let max_open = (opts.max_open_files / threads).max(1);
        let max_open_bytes = opts.max_open_bytes / threads;
        let max_file_rows = opts.max_file_rows.max(1);
        let target_file_bytes = opts.target_file_bytes.max(1);
        let inner = PartitionedWriter::start(name.clone(), opts, |_| LocalFiles {
            root: dir.to_path_buf(),
            schema: schema.clone(),
            props: props.clone(),
            run_id: run_id.clone(),
            seq: seq.clone(),
            max_open,
            max_open_bytes,
            max_file_rows,
            target_file_bytes,
            publisher: publisher.clone(),
            open: HashMap::new(),
            closed: Vec::new(),
            tick: 0,
        })?;
        Ok(ParquetSink { name, inner })
    }

    #[cfg(test)]
    fn flush_all(&mut self) -> Result<(), SinkError> {
        self.inner.flush_all()
    }
}

impl Sink for ParquetSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write_batch(&mut self, file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        self.inner.write_batch(file, events)
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        // A failure lost rows of the window, so the sink stays failed (the
        // encoders keep the failure): no later commit can report them durable.
        let bytes: u64 = self.inner.commit()?.into_iter().sum();
        self.inner.window_committed();
        self.inner.stats_mut().bytes_written += bytes;
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        let result = self.commit();
        self.inner.close();
        result.map(|()| self.inner.stats().clone())
    }
}

/// Keys seen recently, as 128-bit hashes (a collision, which would drop an
/// event, has probability around 2^-128 per pair), in two generations so
/// that memory stays bounded.
///
/// Both sets are allocated once, at the window's size, and a full
/// generation is cleared rather than dropped: memory is then two tables of
/// 17-byte slots, whatever the corpus. (Sets that grew by doubling and
/// were dropped at each rotation held up to 89 MB on a corpus of over two
/// million events, and took the Parquet sink's run from 158 MB to 255-259 MB
/// peak RSS.)
struct SeenKeys {
    capacity: usize,
    current: HashSet<u128, BuildHasherDefault<PassThrough>>,
    previous: HashSet<u128, BuildHasherDefault<PassThrough>>,
}

impl SeenKeys {
    fn new(capacity: usize) -> Self {
        let set = || HashSet::with_capacity_and_hasher(capacity, Default::default());
        SeenKeys {
            capacity,
            current: set(),
            previous: set(),
        }
    }

    /// Forgets every key, keeping the tables.
    fn clear(&mut self) {
        self.current.clear();
        self.previous.clear();
    }

    /// True when `key` was seen within the window; remembers it otherwise.
    fn is_repeat(&mut self, key: &str) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let h = twox_hash::XxHash3_128::oneshot(key.as_bytes());
        if self.previous.contains(&h) || !self.current.insert(h) {
            return true;
        }
        if self.current.len() >= self.capacity {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        }
        false
    }
}

/// The keys are already uniform hashes: use their low bits as is.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A partition value as a directory name: Hive-style `%XX` for every byte
/// outside `A-Z a-z 0-9 . _ -`, and the NULL name for an empty value.
fn escape(value: &str) -> String {
    if value.is_empty() {
        return NULL_PARTITION.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A run identifier for file names: sortable by start time, and unique
/// between runs, on one host or many, through 64 random bits.
fn run_id() -> String {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (y, m, d) = civil_from_days((now.as_secs() / 86_400) as i64);
    let s = now.as_secs() % 86_400;
    // The standard library seeds each RandomState from the OS's randomness.
    let salt = std::collections::hash_map::RandomState::new()
        .hash_one((now.subsec_nanos(), std::process::id()));
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z-{salt:016x}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn is_temporary(name: &str) -> bool {
    name.starts_with(".part-") && name.ends_with(".parquet.tmp")
}

/// Deletes `.part-*.parquet.tmp` files under `dir`; returns how many.
fn remove_temporaries(dir: &Path) -> std::io::Result<u64> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            removed += remove_temporaries(&entry.path())?;
        } else if kind.is_file() && entry.file_name().to_str().is_some_and(is_temporary) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

enum Job<C> {
    /// Append a batch to partition `dir`.
    Write { dir: Arc<str>, batch: RecordBatch },
    /// Commit the writer; reply with what it committed.
    Commit(Sender<Result<C, String>>),
    /// Drop the window; reply when done.
    Abort(Sender<()>),
}

struct EncoderHandle<C> {
    tx: Option<Sender<Job<C>>>,
    thread: Option<JoinHandle<()>>,
}

impl<C> EncoderHandle<C> {
    fn send(&self, job: Job<C>, sink: &str) -> Result<(), SinkError> {
        match &self.tx {
            Some(tx) if tx.send(job).is_ok() => Ok(()),
            _ => Err(SinkError::new(format!("{sink}: an encoder thread stopped"))),
        }
    }
}

/// One encoder thread: its writer and the window's first failure.
struct Encoder<W: PartitionWriter> {
    writer: W,
    error: Option<String>,
    failure: Arc<Mutex<Option<String>>>,
}

impl<W: PartitionWriter> Encoder<W> {
    fn run(mut self, jobs: Receiver<Job<W::Committed>>) {
        for job in jobs {
            match job {
                Job::Write { dir, batch } => {
                    if let Err(e) = self.writer.write(&dir, &batch) {
                        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                        f.get_or_insert_with(|| e.clone());
                        self.error.get_or_insert(e);
                    }
                }
                Job::Commit(reply) => {
                    let committed = self.writer.commit();
                    let _ = reply.send(match self.error.take() {
                        Some(e) => Err(e),
                        None => committed,
                    });
                }
                Job::Abort(reply) => {
                    self.writer.abort();
                    self.error = None;
                    let _ = reply.send(());
                }
            }
        }
        // The sink was dropped without a commit: the open files stay
        // temporary, and the next open deletes them.
    }
}

/// Makes a finished file visible somewhere other than its local directory.
/// `parquet:s3://` stages each file on the local disk and publishes it to S3
/// at commit, with one PUT or a multipart upload completed at once, so that
/// no reader ever sees half a file.
pub trait Publisher: Send + Sync {
    /// Makes the file at `local` visible as `relative` (a `/`-separated Hive
    /// path such as `account=1/region=r/date=d/part-….parquet`), whole, and
    /// returns once it is durable. `local` is deleted afterwards.
    fn publish(&self, local: &Path, relative: &str) -> Result<(), String>;
}

/// The [`PartitionWriter`] of [`ParquetSink`]: one open file per partition,
/// written under a temporary name and renamed (or published) at commit.
pub struct LocalFiles {
    root: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    run_id: String,
    seq: Arc<AtomicU64>,
    max_open: usize,
    /// See [`ParquetOptions::max_open_bytes`] (this encoder's share).
    max_open_bytes: usize,
    max_file_rows: u64,
    target_file_bytes: u64,
    publisher: Option<Arc<dyn Publisher>>,
    open: HashMap<Arc<str>, OpenFile>,
    /// Closed and fsynced, waiting for the commit that renames them.
    closed: Vec<ClosedFile>,
    tick: u64,
}

struct OpenFile {
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    relative: String,
    rows: u64,
    last_used: u64,
    /// `bytes_written` when the file's writeback was last started.
    written_back: usize,
}

struct ClosedFile {
    tmp: PathBuf,
    path: PathBuf,
    relative: String,
    bytes: u64,
}

impl PartitionWriter for LocalFiles {
    /// Bytes made durable.
    type Committed = u64;

    fn write(&mut self, dir: &Arc<str>, batch: &RecordBatch) -> Result<(), String> {
        self.tick += 1;
        if !self.open.contains_key(dir) {
            if self.open.len() >= self.max_open
                && let Some(lru) = self
                    .open
                    .iter()
                    .min_by_key(|(_, f)| f.last_used)
                    .map(|(d, _)| d.clone())
            {
                self.close(&lru)?;
            }
            let file = self.create(dir)?;
            self.open.insert(dir.clone(), file);
        }
        let Some(f) = self.open.get_mut(dir) else {
            return Ok(());
        };
        f.last_used = self.tick;
        if let Err(e) = f.writer.write(batch) {
            return Err(self.discard(dir, &e));
        }
        f.rows += batch.num_rows() as u64;
        // A file to publish is read back at once and never synced.
        if self.publisher.is_none()
            && f.writer.bytes_written() - f.written_back >= crate::common::WRITEBACK_EVERY
        {
            f.written_back = f.writer.bytes_written();
            crate::common::start_writeback(f.writer.inner());
        }
        let size = f.writer.bytes_written() + f.writer.in_progress_size();
        if f.rows >= self.max_file_rows || size as u64 >= self.target_file_bytes {
            self.close(dir)?;
        }
        self.shed_row_groups()
    }

    /// Closes every open file, renames (or publishes) every closed one,
    /// fsyncs the directories; returns the bytes committed or the first
    /// error.
    fn commit(&mut self) -> Result<u64, String> {
        let mut error = None;
        let dirs: Vec<Arc<str>> = self.open.keys().cloned().collect();
        for dir in dirs {
            if let Err(e) = self.close(&dir) {
                error.get_or_insert(e);
            }
        }
        let mut bytes = 0;
        let mut synced = HashSet::new();
        for f in std::mem::take(&mut self.closed) {
            if let Some(publisher) = &self.publisher {
                let published = publisher.publish(&f.tmp, &f.relative);
                let _ = std::fs::remove_file(&f.tmp);
                match published {
                    Ok(()) => bytes += f.bytes,
                    Err(e) => {
                        error.get_or_insert(format!("cannot publish {}: {e}", f.relative));
                    }
                }
                continue;
            }
            if let Err(e) = std::fs::rename(&f.tmp, &f.path) {
                error.get_or_insert(format!(
                    "cannot rename {} to {}: {e}",
                    f.tmp.display(),
                    f.path.display()
                ));
                continue;
            }
            bytes += f.bytes;
            // The rename, and any directories created for it, must reach
            // the disk too: fsync the file's directory and its ancestors.
            let mut dir = f.path.parent();
            while let Some(d) = dir {
                if !synced.insert(d.to_path_buf()) {
                    break;
                }
                if let Err(e) = File::open(d).and_then(|h| h.sync_all()) {
                    error.get_or_insert(format!("cannot fsync {}: {e}", d.display()));
                }
                if d == self.root {
                    break;
                }
                dir = d.parent();
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(bytes),
        }
    }

    fn abort(&mut self) {
        for (_, f) in self.open.drain() {
            let _ = std::fs::remove_file(&f.tmp);
        }
        for f in self.closed.drain(..) {
            let _ = std::fs::remove_file(&f.tmp);
        }
    }
}

impl LocalFiles {
    /// Drops `dir`'s open file after a failed write: its state is unknown,
    /// so it is deleted rather than renamed at the commit, which reports
    /// the returned error.
    fn discard(&mut self, dir: &str, e: &dyn std::fmt::Display) -> String {
        let Some(f) = self.open.remove(dir) else {
            return format!("cannot write partition {dir}: {e}");
        };
        let _ = std::fs::remove_file(&f.tmp);
        format!("cannot write {}: {e}", f.tmp.display())
    }

    /// Writes out the largest row group in progress until those of the
    /// open files fit in `max_open_bytes` (see [`ParquetOptions`]).
    fn shed_row_groups(&mut self) -> Result<(), String> {
        loop {
            let mut total = 0;
            let mut largest: Option<(&Arc<str>, usize)> = None;
            for (dir, f) in &self.open {
                let size = f.writer.memory_size();
                total += size;
                if largest.is_none_or(|(_, l)| size > l) {
                    largest = Some((dir, size));
                }
            }
            let Some((dir, size)) = largest else {
                return Ok(());
            };
            if total <= self.max_open_bytes || size == 0 {
                return Ok(());
            }
            let dir = dir.clone();
            let Some(f) = self.open.get_mut(&dir) else {
                return Ok(());
            };
            if let Err(e) = f.writer.flush() {
                return Err(self.discard(&dir, &e));
            }
        }
    }

    fn create(&mut self, dir: &str) -> Result<OpenFile, String> {
        let local_dir = self.root.join(dir);
        std::fs::create_dir_all(&local_dir)
            .map_err(|e| format!("cannot create {}: {e}", local_dir.display()))?;
        let stem = format!(
            "part-{}-{:06}",
            self.run_id,
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = local_dir.join(format!(".{stem}.parquet.tmp"));
        let path = local_dir.join(format!("{stem}.parquet"));
        let file =
            File::create_new(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(self.props.clone()))
            .map_err(|e| format!("cannot start {}: {e}", tmp.display()))?;
        Ok(OpenFile {
            writer,
            tmp,
            path,
            relative: format!("{dir}/{stem}.parquet"),
            rows: 0,
            last_used: self.tick,
            written_back: 0,
        })
    }

    /// Writes the footer of `dir`'s open file and fsyncs it; it is renamed
    /// at the next commit.
    fn close(&mut self, dir: &str) -> Result<(), String> {
        let Some(mut f) = self.open.remove(dir) else {
            return Ok(());
        };
        let done = f.writer.finish().map_err(|e| e.to_string()).and_then(|_| {
            let file = f.writer.inner_mut();
            // A file to publish is read back from the page cache at once;
            // only a file that stays here must reach the disk.
            if self.publisher.is_none() {
                file.sync_all().map_err(|e| e.to_string())?;
            }
            file.metadata().map(|m| m.len()).map_err(|e| e.to_string())
        });
        match done {
            Ok(bytes) => {
                self.closed.push(ClosedFile {
                    tmp: f.tmp,
                    path: f.path,
                    relative: f.relative,
                    bytes,
                });
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&f.tmp);
                Err(format!("cannot close {}: {e}", f.tmp.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailmill_core::{DecodeOptions, Decoder};

    const LOG: &str = r#"{"Records":[
        {"eventVersion":"1.08","eventID":"a","eventTime":"2024-01-01T00:00:00Z","awsRegion":"us-east-1","recipientAccountId":"111122223333","eventName":"GetObject","readOnly":true,"userIdentity":{"type":"AssumedRole","arn":"arn:u","sessionContext":{"sessionIssuer":{"arn":"arn:role"},"attributes":{"mfaAuthenticated":"false","creationDate":"2023-12-31T23:00:00Z"}}},"requestParameters":{"bucketName":"b","n":2.0}},
        {"eventVersion":"1.08","eventID":"b","eventTime":"2024-01-02T00:00:01Z","awsRegion":"us-east-1","recipientAccountId":"111122223333","eventName":"PutObject"},
        {"eventVersion":"1.08","eventID":"a","eventTime":"2024-01-01T00:00:00Z","awsRegion":"us-east-1","recipientAccountId":"111122223333","eventName":"GetObject"},
        {"eventVersion":"1.08","eventID":"c","eventTime":"not a time","awsRegion":"../../x y","eventName":"Odd"}
    ]}"#;

    #[test]
    fn seen_keys_remember_one_to_two_windows() {
        let mut seen = SeenKeys::new(4);
        let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
        for k in &keys[..4] {
            assert!(!seen.is_repeat(k));
        }
        // k0..k3 fill the window and become the previous generation.
        assert!(seen.is_repeat("k0"));
        for k in &keys[4..8] {
            assert!(!seen.is_repeat(k));
        }
        // Two windows on, k0..k3 are forgotten and k4..k7 remembered.
        assert!(!seen.is_repeat("k1"));
        assert!(seen.is_repeat("k5"));
        seen.clear();
        assert!(!seen.is_repeat("k5"));
        assert!(!SeenKeys::new(0).is_repeat("k0"), "a window of 0 is off");
    }

    /// Regression: a full generation was dropped and the new one grew by
    /// doubling, so the sets held up to 89 MB on a corpus of over two
    /// million events (255-259 MB peak RSS for the Parquet sink).
    #[test]
    fn seen_keys_keep_their_tables_through_rotations() {
        let window = 7 << 10;
        let mut seen = SeenKeys::new(window);
        let sizes = |s: &SeenKeys| (s.current.capacity(), s.previous.capacity());
        let before = sizes(&seen);
        assert!(before.0 >= window && before.1 >= window, "{before:?}");
        for i in 0..window * 5 + 3 {
            assert!(!seen.is_repeat(&format!("e{i}")));
        }
        assert_eq!(sizes(&seen), before, "no set was reallocated");
        seen.clear();
        assert_eq!(sizes(&seen), before);
    }

    fn load(sink: &mut ParquetSink) {
        let object = SourceObject::new("f.json", "f.json");
        Decoder::new(DecodeOptions::default())
            .decode(LOG.as_bytes(), &mut |batch| {
                sink.write_batch(&object, batch).map_err(|e| e.into())
            })
            .unwrap();
    }

    /// Every file under `dir`, relative, sorted.
    fn files(dir: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    #[test]
    fn files_appear_only_at_commit_in_their_partitions() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = ParquetSink::open(tmp.path()).unwrap();
        load(&mut sink);
        // Hand the buffers to the encoders without committing: files exist,
        // but only under temporary names.
        sink.flush_all().unwrap();
        let before = files(tmp.path());
        assert!(
            before
                .iter()
                .all(|f| f.rsplit('/').next().is_some_and(is_temporary)),
            "only temporary names before the commit: {before:?}"
        );
        sink.commit().unwrap();
        let after = files(tmp.path());
        assert_eq!(after.len(), 3, "{after:?}");
        let dirs: Vec<&str> = after
            .iter()
            .map(|f| f.rsplit_once('/').unwrap().0)
            .collect();
        assert_eq!(
            dirs,
            [
                "account=111122223333/region=us-east-1/date=2024-01-01",
                "account=111122223333/region=us-east-1/date=2024-01-02",
                "account=__HIVE_DEFAULT_PARTITION__/region=..%2F..%2Fx%20y/date=__HIVE_DEFAULT_PARTITION__",
            ]
        );
        assert!(after.iter().all(|f| {
            let name = f.rsplit('/').next().unwrap();
            name.starts_with("part-") && name.ends_with(".parquet")
        }));
        let stats = sink.finish().unwrap();
        assert_eq!(
            (
                stats.events_received,
                stats.events_written,
                stats.duplicates
            ),
            (4, 3, 1)
        );
        assert!(stats.bytes_written > 0);
    }

    /// Row groups and rows of each file a sink with `max_open_bytes` makes
    /// of six events of one partition, each handed to the encoder alone.
    fn row_groups_with_budget(max_open_bytes: usize) -> Vec<(usize, i64)> {
        let tmp = tempfile::tempdir().unwrap();
        let opts = ParquetOptions {
            batch_rows: 1,
            encoder_threads: 1,
            max_open_bytes,
            ..ParquetOptions::default()
        };
        let mut sink = ParquetSink::with_options(tmp.path(), opts).unwrap();
        let records: Vec<String> = (0..6)
            .map(|i| {
                format!(
                    r#"{{"eventVersion":"1.08","eventID":"e{i}","eventTime":"2024-01-01T00:00:0{i}Z","awsRegion":"us-east-1","recipientAccountId":"111122223333","eventName":"GetObject"}}"#
                )
            })
            .collect();
        let log = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let object = SourceObject::new("f.json", "f.json");
        Decoder::new(DecodeOptions::default())
            .decode(log.as_bytes(), &mut |batch| {
                sink.write_batch(&object, batch).map_err(|e| e.into())
            })
            .unwrap();
        sink.commit().unwrap();
        sink.finish().unwrap();
        files(tmp.path())
            .iter()
            .map(|f| {
                use parquet::file::reader::{FileReader, SerializedFileReader};
                let reader =
                    SerializedFileReader::new(File::open(tmp.path().join(f)).unwrap()).unwrap();
                let meta = reader.metadata();
                (meta.num_row_groups(), meta.file_metadata().num_rows())
            })
            .collect()
    }

    #[test]
    fn open_row_groups_over_the_memory_budget_are_written_out_early() {
        // Within the budget, the six batches make one row group; with no
        // room at all, each is written out as its own, in the same file.
        assert_eq!(row_groups_with_budget(usize::MAX), [(1, 6)]);
        assert_eq!(row_groups_with_budget(1), [(6, 6)]);
    }

    #[test]
    fn leftovers_of_a_crashed_run_are_deleted_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let mut sink = ParquetSink::open(tmp.path()).unwrap();
            load(&mut sink);
            sink.flush_all().unwrap();
            // Dropped without commit, as in a crash; wait for the encoders
            // to write, so that the temporary files exist.
            sink.inner.close();
        }
        let left = files(tmp.path());
        assert!(!left.is_empty() && left.iter().all(|f| f.contains("/.part-")));
        let keep = tmp.path().join("account=1/notes.txt");
        std::fs::create_dir_all(keep.parent().unwrap()).unwrap();
        std::fs::write(&keep, "not ours").unwrap();
        let sink = ParquetSink::open(tmp.path()).unwrap();
        assert_eq!(files(tmp.path()), ["account=1/notes.txt"]);
        drop(sink);
    }

    #[test]
    fn values_land_in_their_columns() {
        use arrow_array::Array;
        use arrow_array::cast::AsArray;
        use arrow_array::types::TimestampMicrosecondType;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

        let tmp = tempfile::tempdir().unwrap();
        let mut sink = ParquetSink::open(tmp.path()).unwrap();
        load(&mut sink);
        sink.finish().unwrap();
        let dir = tmp
            .path()
            .join("account=111122223333/region=us-east-1/date=2024-01-01");
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(file).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(b.num_rows(), 1);
        let s = |name: &str| {
            b.column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .value(0)
                .to_owned()
        };
        assert_eq!(s("event_id"), "a");
        assert_eq!(s("session_issuer_arn"), "arn:role");
        assert_eq!(s("request_parameters"), r#"{"bucketName":"b","n":2.0}"#);
        assert_eq!(s("source_object"), "f.json");
        assert!(s("raw").starts_with(r#"{"eventVersion":"1.08","eventID":"a""#));
        let t = b
            .column_by_name("event_time")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        assert_eq!(t.value(0), 1_704_067_200_000_000);
        let mfa = b
            .column_by_name("session_mfa_authenticated")
            .unwrap()
            .as_boolean();
        assert!(!mfa.value(0) && mfa.is_valid(0));
        let ro = b.column_by_name("read_only").unwrap().as_boolean();
        assert!(ro.value(0));
    }

    #[test]
    fn escapes_partition_values() {
        assert_eq!(escape("us-east-1"), "us-east-1");
        assert_eq!(escape("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(escape(""), NULL_PARTITION);
    }
}
