//! PostgreSQL: a shared store, deduplicated by `eventID`.
//!
//! # Table
//!
//! [`TABLE`] (default `events`) has the SQLite sink's typed columns, with
//! `event_time` as `timestamptz`, plus `event jsonb` (the record, for JSON
//! queries and indexes) and `raw text` (the record's exact text). Both are
//! kept because jsonb normalises what CloudTrail wrote: it reorders keys,
//! drops duplicate keys and rewrites numbers (`2.0` becomes `2.0`, but
//! `1E2` becomes `100`), and the project's promise is the original bytes.
//! Rows up to 8160 bytes stay inline and uncompressed (`toast_tuple_target`),
//! larger values are compressed with lz4 where the server has it: with the
//! default 2 KB threshold and pglz, compressing most rows took more server
//! time than everything else in the load.
//! `trailmill_schema` records the schema version; opening the sink creates
//! or migrates the table under an advisory lock, and refuses a database
//! that a newer trailmill migrated.
//!
//! # Loading
//!
//! [`Sink::write_batch`] encodes rows straight from the borrowed views into
//! PostgreSQL's binary COPY format (the format `BinaryCopyInWriter` writes,
//! without a `ToSql` call per value). Full chunks go to loader threads
//! ([`PostgresOptions::connections`], default 2), each owning one connection
//! on a private current-thread tokio runtime, so the pipeline's workers go on
//! decoding while the server ingests on several cores. A row goes to the
//! loader its key hashes to: two copies of one event then never sit in two
//! open transactions, where the second would wait for the first to commit.
//! Each chunk is copied into a session-temporary staging table, then
//! `INSERT … SELECT … ON CONFLICT (event_id) DO NOTHING` moves it into the
//! table: re-runs and CloudTrail's duplicate deliveries collapse, and
//! rows staged minus rows inserted is [`SinkStats::duplicates`]. A record
//! without an `eventID` is keyed `sha256:` and the hex SHA-256 of its bytes.
//!
//! # Commit, and connection loss
//!
//! All chunks since the last commit load in one transaction per connection;
//! [`Sink::commit`] returns once every connection has committed. (If one
//! commit fails after another succeeded, the objects are redone and the
//! committed rows collapse as duplicates.) Those chunks stay in
//! memory until then (at most [`PostgresOptions::max_uncommitted_bytes`]:
//! beyond that the sink commits on its own). When the connection fails (the
//! server restarts, the backend is terminated, the network drops), the loader
//! reconnects with backoff, opens a new transaction and replays the chunks:
//! the aborted transaction left nothing behind, so nothing is lost or
//! doubled. If the connection fails during `COMMIT` itself, the outcome is
//! unknown; the replay then finds the rows present and counts them as
//! duplicates, which is the only way the statistics can be off.
//!
//! Any other failure (a rejected row, a full disk, reconnecting for too
//! long) loses the open transaction. The sink then stays failed: every later
//! call returns the error, so no later commit can report those events durable.
//!
//! # Memory
//!
//! The sink holds the uncommitted window
//! ([`PostgresOptions::max_uncommitted_bytes`], 64 MiB, overshot by at most
//! one chunk per connection), and per connection a chunk being filled and
//! two queued ([`PostgresOptions::chunk_bytes`], 4 MiB): about 100 MiB in
//! all, which keeps a run under the project's 256 MB bound. Each chunk's
//! buffer is allocated at its full size up front (`chunk_capacity`).
//! The earlier 48 MiB chunks and 512 MiB window loaded the 618 MB corpus
//! no faster (13.8 s against 13.6-13.9 s) and peaked at 1.09 GB.
//!
//! # TLS
//!
//! The URL is read by [`tokio_postgres::Config`], with libpq's default,
//! `sslmode=prefer`. TLS is rustls.
//!
//! - `disable`: no TLS.
//! - `prefer` (the default), as libpq: TLS whenever the server offers it,
//!   without verifying its certificate (encryption against eavesdroppers,
//!   not against an active man in the middle; a server with a self-signed
//!   certificate works, as with `psql`). When the server offers no TLS,
//!   libpq goes on in clear text; trailmill does too, **unless the URL holds
//!   a password**: a password travels in clear text only when the user asked
//!   for it with `sslmode=disable`, so the connection is refused instead,
//!   with a message saying so.
//! - `require`, `verify-ca`, `verify-full`: TLS, and rustls verifies the
//!   certificate and host name (stricter than libpq's `require`): against
//!   the system's roots, or the CA in `sslrootcert=PATH`.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use futures_util::SinkExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config};
use trailmill_core::Event;
use trailmill_core::filter::fnv1a64;
use trailmill_pipeline::{Sink, SinkError, SinkStats, SourceObject};

use crate::common::{event_key, parse_time_micros};

/// The default table name.
pub const TABLE: &str = "events";

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i32 = 2;

/// The columns, in table (and COPY) order, with their SQL types.
pub const COLUMNS: &[(&str, &str)] = &[
    ("event_id", "text PRIMARY KEY"),
    ("event_time", "timestamptz"),
    ("event_source", "text"),
    ("event_name", "text"),
    ("aws_region", "text"),
    ("source_ip_address", "text"),
    ("user_agent", "text"),
    ("error_code", "text"),
    ("error_message", "text"),
    ("request_id", "text"),
    ("event_type", "text"),
    ("event_category", "text"),
    ("read_only", "boolean"),
    ("management_event", "boolean"),
    ("recipient_account_id", "text"),
    ("user_type", "text"),
    ("user_arn", "text"),
    ("user_account_id", "text"),
    ("user_principal_id", "text"),
    ("user_name", "text"),
    ("access_key_id", "text"),
    ("session_issuer_arn", "text"),
    ("source_object", "text NOT NULL"),
    ("event", "jsonb NOT NULL"),
    ("raw", "text NOT NULL"),
];

/// Tuning for [`PostgresSink`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The table (created if missing). A plain identifier: letters, digits, `_`.
    pub table: String,
    /// Rows per COPY.
    pub chunk_rows: u64,
    /// Encoded bytes per COPY.
    pub chunk_bytes: usize,
    /// Uncommitted bytes kept for replay, across all connections, before the
    /// sink commits on its own.
    pub max_uncommitted_bytes: usize,
    /// Reconnection attempts after a connection loss, before giving up.
    pub reconnect_attempts: u32,
    /// The first wait before reconnecting; it doubles up to 5 s.
    pub reconnect_delay: Duration,
    /// Connections loading in parallel, each with its own loader thread,
    /// staging table and transaction. One backend parses jsonb and maintains
    /// the indexes on one server core, so a single connection leaves the
    /// server's other cores idle.
    pub connections: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            table: TABLE.to_owned(),
            chunk_rows: 25_000,
            chunk_bytes: 4 << 20,
            max_uncommitted_bytes: 64 << 20,
            reconnect_attempts: 10,
            reconnect_delay: Duration::from_millis(200),
            connections: 2,
        }
    }
}

impl PostgresOptions {
    /// These options for a run whose `stores` stores share the memory bound
    /// (see [`crate::memory_share`]): the uncommitted window and the chunks
    /// are divided among them.
    pub fn shared(mut self, stores: usize) -> Self {
        use crate::memory_share;
        self.max_uncommitted_bytes = memory_share(self.max_uncommitted_bytes, stores, 8 << 20);
        self.chunk_bytes = memory_share(self.chunk_bytes, stores, 1 << 20);
        self
    }
}

/// Why the sink could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL or connection string does not parse.
    #[error("invalid connection URL: {0}")]
    Url(String),
    /// The table name is not a plain identifier.
    #[error("invalid table name {0:?}: use letters, digits and '_'")]
    Table(String),
    /// TLS could not be set up.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// Connecting, or creating or migrating the table, failed.
    #[error("{0}")]
    Database(String),
}

/// Stores events in a PostgreSQL table. See the module docs.
pub struct PostgresSink {
    name: String,
    opts: PostgresOptions,
    /// Encoded COPY rows not yet sent, one chunk per loader. A row goes to
    /// the loader its key hashes to, so that two copies of an event never sit
    /// in two open transactions: the second would wait on the first's row
    /// lock until that transaction commits, which only a checkpoint does,
    /// and the checkpoint could be waiting on the blocked loader.
    pending: Vec<Pending>,
    /// One channel per loader thread; empty once finished.
    loaders: Vec<Sender<Msg>>,
    threads: Vec<JoinHandle<()>>,
    failure: Arc<Mutex<Option<String>>>,
    stats: SinkStats,
}

impl PostgresSink {
    /// Connects to `url` and creates or migrates the default table.
    pub fn connect(url: &str) -> Result<Self, SinkError> {
        Self::with_options(url, PostgresOptions::default())
    }

    /// Connects to `url` with `opts`, and creates or migrates the table.
    pub fn with_options(url: &str, opts: PostgresOptions) -> Result<Self, SinkError> {
        let name = format!("postgres:{}", crate::redact_url(url));
        let fail = |e: OpenError| SinkError::with_source(format!("{name}: cannot open"), e);
        if opts.table.is_empty()
            || !opts
                .table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || opts.table.as_bytes()[0].is_ascii_digit()
        {
            return Err(fail(OpenError::Table(opts.table.clone())));
        }
        let Target { config, tls, note } = parse_url(url).map_err(fail)?;
        let failure = Arc::new(Mutex::new(None));
        let mut sink = PostgresSink {
            name: name.clone(),
            opts,
            pending: Vec::new(),
            loaders: Vec::new(),
            threads: Vec::new(),
            failure,
            stats: SinkStats::default(),
        };
        // Loaders start one after another: the first creates or migrates
        // the table, and the others find it ready. Dropping a half-built
        // sink stops the loaders already started.
        let connections = sink.opts.connections.max(1);
        // The bound on uncommitted bytes is the sink's: each loader keeps its
        // share, so more connections do not hold more memory.
        let mut loader_opts = sink.opts.clone();
        loader_opts.max_uncommitted_bytes = (sink.opts.max_uncommitted_bytes / connections).max(1);
        for i in 0..connections {
            let (tx, rx) = crossbeam_channel::bounded::<Msg>(2);
            let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
            let (config, tls) = (config.clone(), tls.clone());
            let loader_opts = loader_opts.clone();
            let loader_failure = sink.failure.clone();
            let loader_name = sink.name.clone();
            let thread = std::thread::Builder::new()
                .name(format!("trailmill-postgres-{i}"))
                .spawn(move || {
                    let loader =
                        Loader::start(config, tls, loader_opts, loader_name, loader_failure);
                    match loader {
                        Ok(mut loader) => {
                            let _ = ready_tx.send(Ok(()));
                            loader.run(rx);
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                })
                .map_err(|e| {
                    SinkError::with_source(format!("{}: cannot start a thread", sink.name), e)
                })?;
            match ready_rx.recv() {
                Ok(Ok(())) => {
                    sink.loaders.push(tx);
                    sink.threads.push(thread);
                }
                Ok(Err(e)) => {
                    let _ = thread.join();
                    return Err(fail(match (e, note) {
                        (OpenError::Database(m), Some(note))
                            if m.contains("does not support TLS") =>
                        {
                            OpenError::Database(format!("{m}: {note}"))
                        }
                        (e, _) => e,
                    }));
                }
                Err(_) => {
                    let _ = thread.join();
                    return Err(fail(OpenError::Database(
                        "the loader thread stopped".into(),
                    )));
                }
            }
        }
        sink.pending = (0..sink.loaders.len())
            .map(|_| Pending {
                data: Vec::with_capacity(chunk_capacity(&sink.opts)),
                rows: 0,
            })
            .collect();
        Ok(sink)
    }

    /// Loads every buffered row into the open transaction and waits until
    /// the server has it. Not durable (that is [`Sink::commit`]): use it to
    /// surface errors early, or to bound what is in flight.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.send_all()?;
        self.ask(Msg::Flush).map(|_| ())
    }

    fn check(&self) -> Result<(), SinkError> {
        match &*self.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(reason) => Err(SinkError::new(format!("{}: {reason}", self.name))),
            None => Ok(()),
        }
    }

    /// Sends loader `i` its pending chunk, if it has rows.
    fn send_chunk(&mut self, i: usize) -> Result<(), SinkError> {
        let pending = &mut self.pending[i];
        if pending.rows == 0 {
            return Ok(());
        }
        let next = Vec::with_capacity(chunk_capacity(&self.opts));
        let chunk = Chunk {
            rows: pending.rows,
            data: Bytes::from(std::mem::replace(&mut pending.data, next)),
        };
        pending.rows = 0;
        match self.loaders.get(i).map(|l| l.send(Msg::Load(chunk))) {
            Some(Ok(())) => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    fn send_all(&mut self) -> Result<(), SinkError> {
        (0..self.pending.len()).try_for_each(|i| self.send_chunk(i))
    }

    /// Sends a request that carries a reply channel to every loader, waits
    /// for all the replies, and returns the loaders' totals added up. Every
    /// loader gets the request even when one fails, so that a commit leaves
    /// no loader's transaction open.
    fn ask(&self, msg: fn(Sender<Reply>) -> Msg) -> Result<Totals, SinkError> {
        if self.loaders.is_empty() {
            return Err(self.stopped());
        }
        let replies: Vec<_> = self
            .loaders
            .iter()
            .map(|loader| {
                let (tx, rx) = crossbeam_channel::bounded(1);
                loader.send(msg(tx)).ok().map(|()| rx)
            })
            .collect();
        let mut sum = Totals::default();
        let mut first_error = None;
        for reply in replies {
            match reply.map(|rx| rx.recv()) {
                Some(Ok(Ok(totals))) => {
                    sum.staged += totals.staged;
                    sum.inserted += totals.inserted;
                }
                Some(Ok(Err(reason))) => {
                    first_error
                        .get_or_insert_with(|| SinkError::new(format!("{}: {reason}", self.name)));
                }
                None | Some(Err(_)) => {
                    first_error.get_or_insert_with(|| self.stopped());
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(sum),
        }
    }

    /// Closes the loaders' channels and waits for their threads; an
    /// uncommitted transaction rolls back when its loader drops its connection.
    fn stop_loaders(&mut self) {
        self.loaders.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    fn stopped(&self) -> SinkError {
        self.check()
            .err()
            .unwrap_or_else(|| SinkError::new(format!("{}: the loader thread stopped", self.name)))
    }
}

impl Sink for PostgresSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write_batch(&mut self, file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        self.check()?;
        if self.pending.is_empty() {
            return Err(self.stopped());
        }
        for e in events {
            let key = event_key(e);
            let i = (fnv1a64(key.as_bytes()) % self.pending.len() as u64) as usize;
            let pending = &mut self.pending[i];
            encode_row(&mut pending.data, e, &key, &file.name);
            pending.rows += 1;
            self.stats.bytes_written += e.raw.len() as u64;
            if pending.rows >= self.opts.chunk_rows || pending.data.len() >= self.opts.chunk_bytes {
                self.send_chunk(i)?;
            }
        }
        self.stats.events_received += events.len() as u64;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.check()?;
        self.send_all()?;
        let totals = self.ask(Msg::Commit)?;
        self.stats.events_written = totals.inserted;
        self.stats.duplicates = totals.staged - totals.inserted;
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        let result = self.commit();
        self.stop_loaders();
        result.map(|()| self.stats.clone())
    }
}

impl Drop for PostgresSink {
    fn drop(&mut self) {
        // Without a commit, the open transactions roll back when the loaders
        // drop their connections.
        self.stop_loaders();
    }
}

/// The capacity a chunk's buffer is allocated with: a chunk is sent once it
/// holds [`PostgresOptions::chunk_bytes`], so it ends at most one row past
/// that. Every buffer then has the same size and the allocator reuses freed
/// ones, where buffers grown by doubling (1, 2, 4 … 16 MiB) left the process
/// holding far more than the chunks in flight.
fn chunk_capacity(opts: &PostgresOptions) -> usize {
    opts.chunk_bytes.saturating_add(ROW_ALLOWANCE)
}

/// Room past [`PostgresOptions::chunk_bytes`] for the row that fills a
/// chunk; a larger row grows the buffer once.
const ROW_ALLOWANCE: usize = 256 << 10;

/// Rows encoded for one loader and not yet sent to it.
struct Pending {
    data: Vec<u8>,
    rows: u64,
}

/// Committed rows over the sink's life.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    staged: u64,
    inserted: u64,
}

type Reply = Result<Totals, String>;

enum Msg {
    Load(Chunk),
    Flush(Sender<Reply>),
    Commit(Sender<Reply>),
}

/// Encoded COPY rows (no header or trailer): both the COPY payload and,
/// until the commit, the replay log.
struct Chunk {
    rows: u64,
    data: Bytes,
}

/// The binary COPY header: signature, flags, header extension length.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
const COPY_TRAILER: &[u8] = &(-1i16).to_be_bytes();
/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn put_null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, v: &[u8]) {
    buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
    buf.extend_from_slice(v);
}

/// A text value. PostgreSQL text cannot hold NUL, which a JSON string may
/// (as `\u0000`); it becomes U+FFFD in the typed column (`raw` keeps the escape).
fn put_text(buf: &mut Vec<u8>, v: Option<&str>) {
    match v {
        None => put_null(buf),
        Some(s) if memchr::memchr(0, s.as_bytes()).is_some() => {
            put_bytes(buf, s.replace('\0', "\u{FFFD}").as_bytes())
        }
        Some(s) => put_bytes(buf, s.as_bytes()),
    }
}

fn put_bool(buf: &mut Vec<u8>, v: Option<bool>) {
    match v {
        None => put_null(buf),
        Some(b) => put_bytes(buf, &[u8::from(b)]),
    }
}

fn put_time(buf: &mut Vec<u8>, unix_micros: Option<i64>) {
    match unix_micros {
        None => put_null(buf),
        Some(t) => put_bytes(buf, &(t - PG_EPOCH_MICROS).to_be_bytes()),
    }
}

/// A jsonb value: version 1, then the JSON text.
fn put_jsonb(buf: &mut Vec<u8>, json: &[u8]) {
    let json = jsonb_safe(json);
    buf.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
    buf.push(1);
    buf.extend_from_slice(&json);
}

/// JSON that jsonb accepts: jsonb rejects the escapes `\u0000` and unpaired
/// surrogates (`\ud800`), which JSON allows; they become `\ufffd`. Nearly
/// every record has none, and is returned as is.
fn jsonb_safe(json: &[u8]) -> Cow<'_, [u8]> {
    let hex4 = |at: usize| -> Option<u16> {
        let digits = std::str::from_utf8(json.get(at..at + 4)?).ok()?;
        u16::from_str_radix(digits, 16).ok()
    };
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'\\', &json[i..]) {
        let at = i + off;
        if json.get(at + 1) != Some(&b'u') {
            i = at + 2; // an escaped character, such as \\ or \"
            continue;
        }
        let code = hex4(at + 2);
        let bad = match code {
            Some(0) => true,
            Some(0xD800..=0xDBFF) => {
                let low = (json.get(at + 6..at + 8) == Some(b"\\u".as_slice()))
                    .then(|| hex4(at + 8))
                    .flatten();
                if matches!(low, Some(0xDC00..=0xDFFF)) {
                    i = at + 12;
                    continue;
                }
                true
            }
            Some(0xDC00..=0xDFFF) => true,
            _ => false,
        };
        if bad {
            let o = out.get_or_insert_with(|| Vec::with_capacity(json.len()));
            o.extend_from_slice(&json[copied..at]);
            o.extend_from_slice(b"\\ufffd");
            copied = at + 6;
        }
        i = at + 6;
    }
    match out {
        None => Cow::Borrowed(json),
        Some(mut o) => {
            o.extend_from_slice(&json[copied.min(json.len())..]);
            Cow::Owned(o)
        }
    }
}

/// Appends one COPY row, in [`COLUMNS`] order.
fn encode_row(buf: &mut Vec<u8>, e: &Event<'_>, key: &str, file: &str) {
    let user = e.user_identity().unwrap_or_default();
    buf.extend_from_slice(&(COLUMNS.len() as i16).to_be_bytes());
    put_text(buf, Some(key));
    put_time(buf, e.event_time.and_then(parse_time_micros));
    put_text(buf, e.event_source);
    put_text(buf, e.event_name);
    put_text(buf, e.aws_region);
    put_text(buf, e.source_ip_address);
    put_text(buf, e.user_agent);
    put_text(buf, e.error_code);
    put_text(buf, e.error_message);
    put_text(buf, e.request_id);
    put_text(buf, e.event_type);
    put_text(buf, e.event_category);
    put_bool(buf, e.read_only);
    put_bool(buf, e.management_event);
    put_text(buf, e.recipient_account_id);
    put_text(buf, user.identity_type);
    put_text(buf, user.arn);
    put_text(buf, user.account_id);
    put_text(buf, user.principal_id);
    put_text(buf, user.user_name);
    put_text(buf, user.access_key_id);
    put_text(
        buf,
        user.session_context
            .and_then(|c| c.session_issuer)
            .and_then(|i| i.arn),
    );
    put_text(buf, Some(file));
    put_jsonb(buf, e.raw.as_bytes());
    // The decoder hands out validated UTF-8 JSON, which holds no raw NUL.
    put_bytes(buf, e.raw.as_bytes());
}

/// A parsed connection URL: where to connect, and how to do TLS.
struct Target {
    config: Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    /// Said when the server turns TLS down: why trailmill then refuses.
    note: Option<&'static str>,
}

/// Why a `prefer` connection with a password needs TLS.
const PASSWORD_NEEDS_TLS: &str = "the URL holds a password and sslmode is prefer (the default), \
     and trailmill sends a password in clear text only when asked to: \
     enable TLS on the server, or add sslmode=disable to the URL to send it in clear text";

/// Parses the URL with [`Config`] (libpq's default, `sslmode=prefer`, when it
/// names none). Our own `sslrootcert` parameter comes out, and libpq's
/// `verify-ca`/`verify-full` become `require`, which rustls verifies. See the
/// module docs for what each mode does.
fn parse_url(url: &str) -> Result<Target, OpenError> {
    use tokio_postgres::config::SslMode;

    let mut root_cert = None;
    let cleaned = match url.split_once('?') {
        Some((base, query)) if url.contains("://") => {
            let mut kept = Vec::new();
            for pair in query.split('&') {
                match pair.split_once('=') {
                    Some(("sslrootcert", path)) => root_cert = Some(path.to_owned()),
                    Some(("sslmode", "verify-ca" | "verify-full")) => kept.push("sslmode=require"),
                    _ => kept.push(pair),
                }
            }
            if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        }
        _ => url.to_owned(),
    };
    let mut config: Config = cleaned
        .parse()
        .map_err(|e: tokio_postgres::Error| OpenError::Url(e.to_string()))?;
    if config.get_application_name().is_none() {
        config.application_name("trailmill");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let (verify, note) = match config.get_ssl_mode() {
        SslMode::Disable => (false, None),
        SslMode::Prefer if config.get_password().is_some() => {
            // tokio-postgres's `prefer` goes on in clear text when the server
            // declines TLS, and would then send the password: insist on TLS
            // (still unverified, as `prefer` is).
            config.ssl_mode(SslMode::Require);
            (false, Some(PASSWORD_NEEDS_TLS))
        }
        SslMode::Prefer => (false, None),
        _ => (true, None),
    };
    let tls = if verify {
        tls_connector(root_cert.as_deref())?
    } else {
        unverified_tls_connector()?
    };
    Ok(Target { config, tls, note })
}

/// TLS that accepts any server certificate (libpq's `prefer`): the handshake
/// signatures are still checked, so the session is encrypted with the holder
/// of the certificate shown, whoever that is.
fn unverified_tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, OpenError> {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| OpenError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn tls_connector(
    root_cert: Option<&str>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, OpenError> {
    let config = crate::tls::client_config(root_cert)
        .map_err(|e| OpenError::Tls(format!("sslrootcert: {e}")))?;
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The loader thread: owns the connection and the uncommitted chunks.
struct Loader {
    name: String,
    config: Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    opts: PostgresOptions,
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    in_transaction: bool,
    /// Chunks of the open transaction, kept for replay until committed.
    window: Vec<Chunk>,
    window_bytes: usize,
    /// How many of `window` the current transaction holds.
    loaded: usize,
    /// Rows the current transaction inserted.
    inserted: u64,
    totals: Totals,
    failure: Arc<Mutex<Option<String>>>,
    insert_sql: String,
}

impl Loader {
    fn start(
        config: Config,
        tls: tokio_postgres_rustls::MakeRustlsConnect,
        opts: PostgresOptions,
        name: String,
        failure: Arc<Mutex<Option<String>>>,
    ) -> Result<Self, OpenError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| OpenError::Database(format!("cannot start a runtime: {e}")))?;
        let columns = COLUMNS.iter().map(|c| c.0).collect::<Vec<_>>().join(", ");
        let insert_sql = format!(
            "INSERT INTO {t} ({columns}) SELECT {columns} FROM trailmill_staging \
             ON CONFLICT (event_id) DO NOTHING",
            t = opts.table
        );
        let mut loader = Loader {
            name,
            config,
            tls,
            opts,
            rt,
            client: None,
            in_transaction: false,
            window: Vec::new(),
            window_bytes: 0,
            loaded: 0,
            inserted: 0,
            totals: Totals::default(),
            failure,
            insert_sql,
        };
        loader
            .connect()
            .and_then(|()| loader.migrate())
            .map_err(|e| OpenError::Database(describe(&e)))?;
        Ok(loader)
    }

    fn run(&mut self, messages: Receiver<Msg>) {
        for msg in messages {
            let failed = self.failure();
            match msg {
                Msg::Load(chunk) => {
                    if failed.is_none() {
                        self.window_bytes += chunk.data.len();
                        self.window.push(chunk);
                        let result = self.retrying("load", Self::sync).and_then(|()| {
                            if self.window_bytes >= self.opts.max_uncommitted_bytes {
                                self.commit()
                            } else {
                                Ok(())
                            }
                        });
                        if let Err(e) = result {
                            self.fail(e);
                        }
                    }
                }
                Msg::Flush(reply) => {
                    let result = match failed {
                        Some(e) => Err(e),
                        None => self.retrying("load", Self::sync).map(|()| self.totals),
                    };
                    let _ = reply.send(result.inspect_err(|e| self.fail(e.clone())));
                }
                Msg::Commit(reply) => {
                    let result = match failed {
                        Some(e) => Err(e),
                        None => self.commit().map(|()| self.totals),
                    };
                    let _ = reply.send(result.inspect_err(|e| self.fail(e.clone())));
                }
            }
        }
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records a failure that lost the open transaction; the sink stays failed.
    fn fail(&mut self, reason: String) {
        self.window.clear();
        self.window_bytes = 0;
        self.client = None;
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(reason);
    }

    fn commit(&mut self) -> Result<(), String> {
        self.retrying("commit", |this| {
            this.sync()?;
            if this.in_transaction {
                let client = this.client.as_ref().ok_or(LoadError::NoConnection)?;
                this.rt.block_on(client.batch_execute("COMMIT"))?;
                this.in_transaction = false;
            }
            Ok(())
        })?;
        self.totals.staged += self.window.iter().map(|c| c.rows).sum::<u64>();
        self.totals.inserted += self.inserted;
        self.inserted = 0;
        self.window.clear();
        self.window_bytes = 0;
        self.loaded = 0;
        Ok(())
    }

    /// Runs `step`, reconnecting and retrying it after a connection loss.
    fn retrying(
        &mut self,
        what: &str,
        mut step: impl FnMut(&mut Self) -> Result<(), LoadError>,
    ) -> Result<(), String> {
        let mut attempt = 0;
        loop {
            match step(self) {
                Ok(()) => return Ok(()),
                Err(e) if is_transient(&e) && attempt < self.opts.reconnect_attempts => {
                    attempt += 1;
                    let wait = self
                        .opts
                        .reconnect_delay
                        .saturating_mul(1 << (attempt - 1).min(5))
                        .min(Duration::from_secs(5));
                    tracing::warn!(
                        sink = %self.name,
                        attempt,
                        "connection lost during {what} ({}); reconnecting in {wait:?} and replaying {} uncommitted chunks",
                        describe(&e),
                        self.window.len()
                    );
                    // The aborted transaction left nothing: start over.
                    self.client = None;
                    self.in_transaction = false;
                    std::thread::sleep(wait);
                }
                Err(e) => {
                    return Err(format!("{what} failed: {}", describe(&e)));
                }
            }
        }
    }

    fn connect(&mut self) -> Result<(), LoadError> {
        let (client, connection) = self.rt.block_on(self.config.connect(self.tls.clone()))?;
        self.rt.spawn(async move {
            // Errors surface on the client's next call.
            let _ = connection.await;
        });
        // The staging table lives in the session's temporary schema, which
        // WAL does not log; large temp buffers keep a chunk in memory.
        // (Two statements: one simple query would run them in one implicit
        // transaction, and a missing table would undo the SET too.)
        self.rt
            .block_on(client.batch_execute("SET temp_buffers = '128MB'"))?;
        // lz4 compresses the large rows that still get toasted several
        // times faster than the default pglz. Servers before 14, or built
        // without lz4, refuse the setting and keep pglz.
        if let Err(e) = self
            .rt
            .block_on(client.batch_execute("SET default_toast_compression = 'lz4'"))
        {
            tracing::debug!(sink = %self.name, "no lz4 TOAST compression: {e}");
        }
        self.rt
            .block_on(client.batch_execute(&staging_sql(&self.opts.table)))
            .or_else(|e| {
                // The events table does not exist yet on a first open: the
                // staging table is created after the migration.
                if e.code() == Some(&SqlState::UNDEFINED_TABLE) {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
        self.client = Some(client);
        self.in_transaction = false;
        self.loaded = 0;
        self.inserted = 0;
        Ok(())
    }

    /// Creates or migrates the table, under an advisory lock so that sinks
    /// opening together do not race.
    fn migrate(&mut self) -> Result<(), LoadError> {
        let client = self.client.as_ref().ok_or(LoadError::NoConnection)?;
        let table = &self.opts.table;
        let columns: Vec<String> = COLUMNS.iter().map(|(n, t)| format!("{n} {t}")).collect();
        self.rt.block_on(async {
            client
                .batch_execute(
                    "BEGIN;
                     SELECT pg_advisory_xact_lock(7426563117);
                     CREATE TABLE IF NOT EXISTS trailmill_schema (
                         name text PRIMARY KEY,
                         version integer NOT NULL,
                         migrated_at timestamptz NOT NULL DEFAULT now())",
                )
                .await?;
            let row = client
                .query_opt(
                    "SELECT version FROM trailmill_schema WHERE name = $1",
                    &[table],
                )
                .await?;
            let version: i32 = row.map_or(0, |r| r.get(0));
            if version > SCHEMA_VERSION {
                client.batch_execute("ROLLBACK").await?;
                return Ok(Some(version));
            }
            // Version 1: the table and its indexes.
            if version < 1 {
                client
                    .batch_execute(&format!(
                        "CREATE TABLE IF NOT EXISTS {table} ({cols});
                         CREATE INDEX IF NOT EXISTS {table}_by_time ON {table} (event_time);
                         CREATE INDEX IF NOT EXISTS {table}_by_source_name ON {table} (event_source, event_name);",
                        cols = columns.join(", ")
                    ))
                    .await?;
            }
            // Version 2: rows up to a page stay inline and uncompressed
            // (CloudTrail records are mostly 1 to 3 KB, and the default 2 KB
            // threshold compressed most rows, which dominated load time);
            // larger ones are compressed with lz4 where the server has it.
            if version < 2 {
                client
                    .batch_execute(&format!(
                        "ALTER TABLE {table} SET (toast_tuple_target = {TOAST_TUPLE_TARGET});
                         DO $$ BEGIN
                             EXECUTE 'ALTER TABLE {table} ALTER COLUMN event SET COMPRESSION lz4, \
                                 ALTER COLUMN raw SET COMPRESSION lz4';
                         EXCEPTION WHEN feature_not_supported OR syntax_error THEN NULL;
                         END $$;"
                    ))
                    .await?;
            }
            client
                .execute(
                    "INSERT INTO trailmill_schema (name, version) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET version = $2, migrated_at = now()",
                    &[table, &SCHEMA_VERSION],
                )
                .await?;
            client.batch_execute("COMMIT").await?;
            client.batch_execute(&staging_sql(table)).await?;
            Ok::<_, tokio_postgres::Error>(None)
        })?
        .map_or(Ok(()), |v| Err(LoadError::NewerSchema(v)))
    }

    /// Brings the transaction up to date: reconnects if needed, and loads
    /// the chunks it does not hold yet (after a reconnect: all of them).
    fn sync(&mut self) -> Result<(), LoadError> {
        if self.client.is_none() {
            self.connect()?;
        }
        if self.loaded == self.window.len() {
            return Ok(());
        }
        let client = self.client.as_ref().ok_or(LoadError::NoConnection)?;
        if !self.in_transaction {
            self.rt.block_on(client.batch_execute("BEGIN"))?;
            self.in_transaction = true;
        }
        while self.loaded < self.window.len() {
            let chunk = &self.window[self.loaded];
            let inserted = self.rt.block_on(async {
                let sink = client
                    .copy_in::<_, Bytes>("COPY trailmill_staging FROM STDIN (FORMAT binary)")
                    .await?;
                futures_util::pin_mut!(sink);
                sink.send(Bytes::from_static(COPY_HEADER)).await?;
                sink.send(chunk.data.clone()).await?;
                sink.send(Bytes::from_static(COPY_TRAILER)).await?;
                sink.as_mut().finish().await?;
                let n = client.execute(self.insert_sql.as_str(), &[]).await?;
                client.batch_execute("TRUNCATE trailmill_staging").await?;
                Ok::<u64, tokio_postgres::Error>(n)
            })?;
            self.inserted += inserted;
            self.loaded += 1;
        }
        Ok(())
    }
}

/// The largest row kept inline and uncompressed (just under PostgreSQL's
/// 8 KB page); the default, 2 KB, would compress most CloudTrail rows.
const TOAST_TUPLE_TARGET: u32 = 8160;

/// Creates the session's staging table: the events table's columns, no
/// indexes (a chunk may repeat an eventID), the same inline-row threshold.
fn staging_sql(table: &str) -> String {
    format!(
        "CREATE TEMP TABLE IF NOT EXISTS trailmill_staging (LIKE {table} INCLUDING DEFAULTS) \
         WITH (toast_tuple_target = {TOAST_TUPLE_TARGET})"
    )
}

/// A loader step's failure.
#[derive(Debug)]
enum LoadError {
    /// From the client or the server.
    Pg(tokio_postgres::Error),
    /// A call with no connection (after a loss): reconnect.
    NoConnection,
    /// The table was migrated by a newer trailmill.
    NewerSchema(i32),
}

impl From<tokio_postgres::Error> for LoadError {
    fn from(e: tokio_postgres::Error) -> Self {
        LoadError::Pg(e)
    }
}

/// True for failures a new connection can cure: a closed connection, I/O
/// errors, server shutdown or restart, and too many connections.
fn is_transient(e: &LoadError) -> bool {
    let e = match e {
        LoadError::Pg(e) => e,
        LoadError::NoConnection => return true,
        LoadError::NewerSchema(_) => return false,
    };
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || matches!(c, "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01")
        }
        // No SQLSTATE: the failure was below the protocol (I/O, timeout, TLS).
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

fn describe(e: &LoadError) -> String {
    match e {
        LoadError::NoConnection => "not connected".to_owned(),
        LoadError::NewerSchema(v) => format!(
            "the table is at schema version {v}, newer than this trailmill's {SCHEMA_VERSION}"
        ),
        LoadError::Pg(e) => match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => match std::error::Error::source(e) {
                Some(s) => format!("{e}: {s}"),
                None => e.to_string(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonb_safe_replaces_only_what_jsonb_rejects() {
        let same = br#"{"a":"\\u0000 is text","b":"\ud83d\ude00","c":"\u00e9"}"#;
        assert!(matches!(jsonb_safe(same), Cow::Borrowed(_)));
        let fixed =
            jsonb_safe(br#"{"a":"x\u0000y","b":"\ud800","c":"\udc00z","d":"\ud800\u0041"}"#);
        assert_eq!(
            std::str::from_utf8(&fixed).unwrap(),
            r#"{"a":"x\ufffdy","b":"\ufffd","c":"\ufffdz","d":"\ufffd\u0041"}"#
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            crate::redact_url("postgres://u:secret@h:5432/db?sslmode=require"),
            "postgres://u:***@h:5432/db?sslmode=require"
        );
        assert_eq!(crate::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            crate::redact_url("host=h password=secret"),
            "host=h password=***"
        );
    }

    fn mode(url: &str) -> (tokio_postgres::config::SslMode, bool) {
        let t = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        (t.config.get_ssl_mode(), t.note.is_some())
    }

    /// Regression (issue 11, item 6): a URL without `sslmode` meant
    /// `sslmode=disable`, so TLS was never tried. The default is libpq's,
    /// `prefer`, read by tokio-postgres's own parser.
    #[test]
    fn urls_default_to_prefer_and_keep_the_mode_asked_for() {
        use tokio_postgres::config::SslMode;
        assert_eq!(
            mode("postgres://u@127.0.0.1:5432/db"),
            (SslMode::Prefer, false)
        );
        assert_eq!(
            mode("postgresql://u@127.0.0.1/db?application_name=x"),
            (SslMode::Prefer, false)
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=disable"),
            (SslMode::Disable, false)
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=prefer"),
            (SslMode::Prefer, false)
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=require"),
            (SslMode::Require, false)
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=verify-full"),
            (SslMode::Require, false)
        );
        // A root certificate is read when TLS verifies, and must exist.
        let e = parse_url("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
            .err()
            .expect("a missing root certificate is an error");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        // A substring is not a parameter: the old check saw "sslmode=" here.
        assert_eq!(
            mode("postgres://u@h/db?application_name=no_sslmode=here"),
            (SslMode::Prefer, false)
        );
        // libpq key=value strings go through the same parser.
        assert_eq!(
            mode("host=127.0.0.1 user=u dbname=db"),
            (SslMode::Prefer, false)
        );
        assert_eq!(
            mode("host=127.0.0.1 user=u sslmode=disable"),
            (SslMode::Disable, false)
        );
        assert!(matches!(
            parse_url("postgres://u@h/db?sslmode=sometimes"),
            Err(OpenError::Url(_))
        ));
    }

    /// Regression (issue 11, item 6): with `prefer`, a server that declines
    /// TLS would get the password in clear text. A URL with a password and
    /// `prefer` (said or default) insists on TLS; only `sslmode=disable`
    /// sends it in clear.
    #[test]
    fn a_password_never_goes_in_clear_text_unless_asked() {
        use tokio_postgres::config::SslMode;
        assert_eq!(mode("postgres://u:pw@h/db"), (SslMode::Require, true));
        assert_eq!(
            mode("postgres://u:pw@h/db?sslmode=prefer"),
            (SslMode::Require, true)
        );
        assert_eq!(mode("host=h user=u password=pw"), (SslMode::Require, true));
        assert_eq!(
            mode("postgres://u:pw@h/db?sslmode=disable"),
            (SslMode::Disable, false)
        );
        assert_eq!(
            mode("postgres://u:pw@h/db?sslmode=require"),
            (SslMode::Require, false)
        );
    }

    /// The end-to-end check of the rule above: a server that answers the
    /// TLS request with "no" (as a server without `ssl = on` does) never
    /// receives the startup message, let alone the password, and the error
    /// says why and what to do.
    #[test]
    fn a_server_without_tls_never_sees_the_password() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut ssl_request = [0u8; 8];
            conn.read_exact(&mut ssl_request).unwrap();
            assert_eq!(ssl_request, [0, 0, 0, 8, 4, 210, 22, 47], "an SSLRequest");
            conn.write_all(b"N").unwrap();
            // Whatever the client sends next (a startup message in clear
            // text, then a password if asked for one) is recorded.
            let mut after = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 {
                    break;
                }
                after.extend_from_slice(&buf[..n]);
                // Ask for the password in clear text, as a hostile server would.
                conn.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).ok();
            }
            after
        });
        let url = format!("postgres://u:hunter2@127.0.0.1:{port}/db");
        let err = PostgresSink::connect(&url).err().expect("refused");
        let sent = server.join().unwrap();
        assert!(
            !sent.windows(7).any(|w| w == b"hunter2"),
            "the password went in clear text: {:?}",
            String::from_utf8_lossy(&sent)
        );
        assert!(
            sent.is_empty(),
            "nothing after the refused TLS request: {sent:?}"
        );
        let shown = format!("{err:#}");
        let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        assert!(chain.contains("sslmode=disable"), "{shown} / {chain}");
        assert!(!chain.contains("hunter2"), "{chain}");
    }
}
