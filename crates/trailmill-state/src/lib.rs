//! The state store: which source objects a backfill has finished, so that a
//! re-run resumes where the last one stopped.
//!
//! A [`StateStore`] is an SQLite file. It records each source object with its
//! identity (the object's name, plus its key), its version (S3 ETag or local
//! mtime) and size, its status (done or failed), its event counts, the
//! checkpoint it went into, timestamps, and the reason it failed.
//!
//! It plugs into a [`trailmill_pipeline::Pipeline`] twice:
//!
//! - [`StateStore::skip_done`] is a [`SourceFilter`] that passes over objects
//!   already done with the same name, version and size. An object whose
//!   version or size changed is processed again.
//! - [`StateStore::recorder`] is a [`CheckpointListener`] that records each
//!   checkpoint's outcomes in one transaction. An `Ok` outcome is marked done,
//!   which is safe because the pipeline reports it only after every sink made
//!   its events durable. An `Err` outcome is marked failed, so the next run
//!   retries it.
//!
//! ```no_run
//! use trailmill_pipeline::{LocalSource, Pipeline};
//! use trailmill_state::{Binding, StateStore};
//!
//! let binding = Binding {
//!     sources: vec!["/data/mirror".into()],
//!     sinks: vec!["my-sink".into()],
//!     event_filter: String::new(),
//!     legacy: None,
//! };
//! let state = StateStore::open("/data/backfill.state".as_ref(), &binding, false)?;
//! let summary = Pipeline::builder()
//!     .source_filter(state.skip_done()?)
//!     .on_checkpoint(state.recorder()?)
//!     // .sink(…)
//!     .build()
//!     .run(&LocalSource::new(["/data/mirror"]));
//! let record = state.finish_run(summary.interrupted)?;
//! println!("{} objects done, {} skipped", record.objects_done, record.skipped_done);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why the state may lag the sinks but never lead them
//!
//! The sinks commit first, and the state records the checkpoint afterwards. A
//! crash between the two leaves objects whose events are stored but which the
//! state does not call done; the next run does them again. Sinks that are
//! unique by eventID (SQLite, PostgreSQL) absorb that redo, and the others
//! deliver at least once. The reverse, an object marked done whose events are
//! not durable, cannot happen. For the same reason the state file itself runs
//! with `synchronous = NORMAL`: losing its latest transaction to a power
//! failure only means redoing objects.
//!
//! # Binding
//!
//! A state belongs to one job: its sources, its sinks and its event filter
//! (a [`Binding`]). Opening it for another job fails with
//! [`StateError::Bound`], because skipping objects done for another sink
//! would silently leave this sink without their events. Opening with
//! `restart` resets the state and binds it to the new job.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use trailmill_pipeline::{CheckpointListener, FileOutcome, SourceFilter, SourceObject};

/// The schema version this crate writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i32 = 1;

/// Marks an SQLite file as a trailmill state (`PRAGMA application_id`), so that
/// pointing `--state` at some other database (such as the events database
/// itself) is refused instead of written into. The bytes spell "tmST".
pub const APPLICATION_ID: i32 = 0x746D_5354;

/// The tables (also the README's reference).
pub const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    interrupted INTEGER
);
CREATE TABLE checkpoints (
    seq            INTEGER PRIMARY KEY,
    run            INTEGER NOT NULL REFERENCES runs (id),
    at             TEXT NOT NULL,
    objects_done   INTEGER NOT NULL,
    objects_failed INTEGER NOT NULL
);
CREATE TABLE objects (
    name          TEXT PRIMARY KEY NOT NULL,
    key           TEXT NOT NULL,
    version       TEXT,
    size          INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    events_in     INTEGER NOT NULL,
    events_out    INTEGER NOT NULL,
    checkpoint    INTEGER NOT NULL REFERENCES checkpoints (seq),
    attempts      INTEGER NOT NULL,
    first_seen_at TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    error         TEXT
);
CREATE INDEX objects_by_status ON objects (status);
";

/// The current time as SQLite writes it: RFC 3339, UTC, milliseconds.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// A state store failure, naming the state file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// SQLite failed while doing `what`.
    #[error("{path}: {what}: {source}")]
    Sqlite {
        /// The state file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file is an SQLite database, but not a trailmill state.
    #[error(
        "{path}: not a trailmill state file (it is another SQLite database; is it a sink's database?)"
    )]
    NotAState {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer trailmill, with a schema this one does not know.
    #[error(
        "{path}: state schema version {found} is newer than this trailmill's ({SCHEMA_VERSION})"
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i32,
    },
    /// Another run is using the state.
    #[error("{path}: another trailmill run is using this state (its lock is held)")]
    Busy {
        /// The file.
        path: PathBuf,
    },
    /// The lock beside the state cannot be taken.
    #[error("{path}: cannot lock: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state belongs to another job.
    #[error("{path}: this state belongs to a run with {what} {stored}, not {given}")]
    Bound {
        /// The file.
        path: PathBuf,
        /// What differs: `sources`, `sinks` or `event filter`.
        what: &'static str,
        /// What the state was made for.
        stored: String,
        /// What this run asks for.
        given: String,
    },
}

/// What a state belongs to: the job whose progress it records.
///
/// Each part is compared as text, so callers should spell each part the same
/// way on every run, whatever the working directory (the CLI makes local
/// paths absolute, keeps `s3://` URLs as URLs, and describes the filter with
/// `trailmill_core::EventFilter::binding_text`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// The sources read, such as directories or `s3://bucket/prefix` URLs.
    pub sources: Vec<String>,
    /// The sinks written, as specs such as `sqlite:/data/events.db`.
    pub sinks: Vec<String>,
    /// A description of the event filter. Objects done under another filter
    /// delivered other events, so they must not be skipped under this one.
    pub event_filter: String,
    /// The same job as an older version of the caller described it, when
    /// that description changed: a state bound to it is accepted, part by
    /// part, and rebound to this binding, so that upgrading does not strand
    /// a backfill. `None` accepts only this binding.
    pub legacy: Option<Box<Binding>>,
}

impl Binding {
    fn parts(&self) -> [(&'static str, &'static str, String); 3] {
        [
            ("sources", "sources", self.sources.join("\n")),
            ("sinks", "sinks", self.sinks.join("\n")),
            ("event_filter", "event filter", self.event_filter.clone()),
        ]
    }
}

/// What the state held when it was opened: what earlier runs finished.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prior {
    /// Runs recorded before this one (0 for a new or restarted state).
    pub runs: u64,
    /// Objects done.
    pub objects_done: u64,
    /// Objects whose last attempt failed.
    pub objects_failed: u64,
    /// Events delivered to the sinks by the objects done (the sum of their
    /// `events_out`): what every sink holds from them.
    pub events_done: u64,
    /// True when the latest run did not finish: it crashed or was killed.
    /// (A run stopped through the pipeline's stop flag finishes cleanly, with
    /// nothing in flight.)
    pub last_run_interrupted: bool,
}

/// What the state recorded during this run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunRecord {
    /// Checkpoints recorded.
    pub checkpoints: u64,
    /// Objects marked done.
    pub objects_done: u64,
    /// Events delivered to the sinks by the objects marked done.
    pub events_done: u64,
    /// Objects marked failed.
    pub objects_failed: u64,
    /// Objects passed over because they were done with the same version and size.
    pub skipped_done: u64,
    /// Objects done before whose version or size has changed, processed again.
    pub redone_changed: u64,
    /// Objects that had failed before, tried again.
    pub retried_failed: u64,
    /// After the run: the events delivered by all objects done, by this run
    /// and earlier ones (each object counted once, at its latest version).
    pub total_events_done: u64,
}

/// How one object stands in the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRecord {
    /// The object's name (its identity in the state).
    pub name: String,
    /// Its key.
    pub key: String,
    /// Its version when it was processed.
    pub version: Option<String>,
    /// Its size when it was processed.
    pub size: Option<u64>,
    /// True when done, false when its last attempt failed.
    pub done: bool,
    /// Events decoded.
    pub events_in: u64,
    /// Events delivered to the sinks.
    pub events_out: u64,
    /// The checkpoint that recorded it.
    pub checkpoint: u64,
    /// How many checkpoints have recorded it (attempts that got that far).
    pub attempts: u64,
    /// Why its last attempt failed.
    pub error: Option<String>,
}

/// Counters shared by the store, its filter and its recorder.
#[derive(Default)]
struct Counters {
    checkpoints: AtomicU64,
    done: AtomicU64,
    events_done: AtomicU64,
    failed: AtomicU64,
    skipped_done: AtomicU64,
    redone_changed: AtomicU64,
    retried_failed: AtomicU64,
}

/// The state file of one job. See the [crate docs](crate).
pub struct StateStore {
    path: PathBuf,
    conn: Connection,
    run: i64,
    prior: Prior,
    counters: Arc<Counters>,
    /// The first error the recorder hit, reported by [`StateStore::finish_run`]:
    /// a listener cannot fail the pipeline, but the run must not claim success.
    recorder_error: Arc<Mutex<Option<StateError>>>,
    /// Held (flock) for the store's life, so that two runs never share a
    /// state. A file of its own: closing a descriptor of the database file
    /// would drop SQLite's own POSIX locks on it.
    _lock: std::fs::File,
}

impl StateStore {
    /// Opens the state at `path`, creating it if needed, for the job `binding`
    /// describes, and records the start of a run.
    ///
    /// With `restart`, whatever the state held is forgotten and it is bound to
    /// `binding`. Otherwise a state made for another binding is refused with
    /// [`StateError::Bound`].
    ///
    /// The store holds a lock (`PATH-lock`) until it is dropped: another
    /// store opened on the same file meanwhile fails with [`StateError::Busy`].
    pub fn open(path: &Path, binding: &Binding, restart: bool) -> Result<Self, StateError> {
        let lock = lock(path)?;
        let conn = connect(path)?;
        let app_id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(sql(path, "cannot read the file header"))?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(sql(path, "cannot read the schema"))?;
        if app_id == 0 && tables == 0 {
            let create = format!(
                "BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            );
            conn.execute_batch(&create)
                .map_err(sql(path, "cannot create the state tables"))?;
        } else if app_id != APPLICATION_ID {
            return Err(StateError::NotAState { path: path.into() });
        }
        let version: i32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(path, "cannot read the schema version"))?;
        if version > SCHEMA_VERSION {
            return Err(StateError::NewerSchema {
                path: path.into(),
                found: version,
            });
        }
        // Version 1 is the first schema: nothing older to migrate from yet.

        let tx = conn
            .unchecked_transaction()
            .map_err(sql(path, "cannot start a transaction"))?;
        if restart {
            tx.execute_batch(
                "DELETE FROM objects; DELETE FROM checkpoints; DELETE FROM runs; DELETE FROM meta;",
            )
            .map_err(sql(path, "cannot reset the state"))?;
        }
        let legacy = binding.legacy.as_ref().map(|l| l.parts());
        for (i, (key, what, given)) in binding.parts().into_iter().enumerate() {
            let stored: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(sql(path, "cannot read the binding"))?;
            let old_spelling = |stored: &str| legacy.as_ref().is_some_and(|l| l[i].2 == stored);
            match stored {
                Some(stored) if stored != given && old_spelling(&stored) => {
                    tx.execute("UPDATE meta SET value = ?2 WHERE key = ?1", [key, &given])
                        .map_err(sql(path, "cannot record the binding"))?;
                }
                Some(stored) if stored != given => {
                    return Err(StateError::Bound {
                        path: path.into(),
                        what,
                        stored: shown(&stored),
                        given: shown(&given),
                    });
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                        [key, &given],
                    )
                    .map_err(sql(path, "cannot record the binding"))?;
                }
            }
        }
        let prior = read_prior(&tx).map_err(sql(path, "cannot read the state"))?;
        tx.execute(&format!("INSERT INTO runs (started_at) VALUES ({NOW})"), [])
            .map_err(sql(path, "cannot record the run"))?;
        let run = tx.last_insert_rowid();
        tx.commit().map_err(sql(path, "cannot record the run"))?;
        Ok(StateStore {
            path: path.into(),
            conn,
            run,
            prior,
            counters: Arc::default(),
            recorder_error: Arc::default(),
            _lock: lock,
        })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What earlier runs left in the state (all zero after a restart).
    pub fn prior(&self) -> &Prior {
        &self.prior
    }

    /// True when earlier runs marked objects done: this run continues a job
    /// rather than starting one. Outputs that cannot deduplicate must then be
    /// appended to, since starting them over would lose those objects'
    /// events; before that, starting over loses nothing.
    pub fn is_resume(&self) -> bool {
        self.prior.objects_done > 0
    }

    /// A source filter that passes over objects already done with the same
    /// version and size. It counts what it passes over and what it sends back
    /// for another attempt (see [`RunRecord`]).
    ///
    /// An object whose listing knows no version is compared by size alone.
    /// If the state cannot be read, the object is processed: doing it twice
    /// is safe, skipping it wrongly is not.
    pub fn skip_done(&self) -> Result<SkipDone, StateError> {
        Ok(SkipDone {
            path: self.path.clone(),
            conn: Mutex::new(connect(&self.path)?),
            counters: self.counters.clone(),
        })
    }

    /// A checkpoint listener that records each checkpoint in one transaction.
    pub fn recorder(&self) -> Result<Recorder, StateError> {
        Ok(Recorder {
            path: self.path.clone(),
            conn: connect(&self.path)?,
            run: self.run,
            counters: self.counters.clone(),
            error: self.recorder_error.clone(),
        })
    }

    /// How `name` stands in the state, if it is there.
    pub fn object(&self, name: &str) -> Result<Option<ObjectRecord>, StateError> {
        self.conn
            .query_row(
                "SELECT name, key, version, size, status, events_in, events_out, checkpoint, attempts, error
                 FROM objects WHERE name = ?1",
                [name],
                |r| {
                    Ok(ObjectRecord {
                        name: r.get(0)?,
                        key: r.get(1)?,
                        version: r.get(2)?,
                        size: r.get::<_, Option<i64>>(3)?.map(|s| s as u64),
                        done: r.get::<_, String>(4)? == "done",
                        events_in: r.get::<_, i64>(5)? as u64,
                        events_out: r.get::<_, i64>(6)? as u64,
                        checkpoint: r.get::<_, i64>(7)? as u64,
                        attempts: r.get::<_, i64>(8)? as u64,
                        error: r.get(9)?,
                    })
                },
            )
            .optional()
            .map_err(sql(&self.path, "cannot read an object"))
    }

    /// Records the end of the run (`interrupted` when it was stopped before
    /// listing everything) and returns what the state recorded during it.
    ///
    /// Fails if recording any checkpoint failed: those objects are not marked
    /// done, so the next run does them again, but this run must not pass for
    /// a complete one.
    pub fn finish_run(self, interrupted: bool) -> Result<RunRecord, StateError> {
        if let Some(e) = self
            .recorder_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(e);
        }
        self.conn
            .execute(
                &format!("UPDATE runs SET finished_at = {NOW}, interrupted = ?2 WHERE id = ?1"),
                params![self.run, interrupted],
            )
            .map_err(sql(&self.path, "cannot record the end of the run"))?;
        let after = read_prior(&self.conn).map_err(sql(&self.path, "cannot read the state"))?;
        let c = &self.counters;
        Ok(RunRecord {
            checkpoints: c.checkpoints.load(Ordering::Relaxed),
            objects_done: c.done.load(Ordering::Relaxed),
            events_done: c.events_done.load(Ordering::Relaxed),
            objects_failed: c.failed.load(Ordering::Relaxed),
            skipped_done: c.skipped_done.load(Ordering::Relaxed),
            redone_changed: c.redone_changed.load(Ordering::Relaxed),
            retried_failed: c.retried_failed.load(Ordering::Relaxed),
            total_events_done: after.events_done,
        })
    }
}

/// Passes over objects already done; see [`StateStore::skip_done`].
pub struct SkipDone {
    path: PathBuf,
    // The listing calls the filter from one thread; the lock only makes the
    // connection shareable as the pipeline requires.
    conn: Mutex<Connection>,
    counters: Arc<Counters>,
}

impl SourceFilter for SkipDone {
    fn accept(&self, object: &SourceObject) -> bool {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let found = conn
            .prepare_cached("SELECT status, version, size FROM objects WHERE name = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([&object.name], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                    ))
                })
                .optional()
            });
        let c = &self.counters;
        match found {
            Ok(None) => true,
            Ok(Some((status, version, size))) => {
                if status != "done" {
                    c.retried_failed.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                let same = version == object.version && size.map(|s| s as u64) == object.size;
                if same {
                    c.skipped_done.fetch_add(1, Ordering::Relaxed);
                } else {
                    c.redone_changed.fetch_add(1, Ordering::Relaxed);
                }
                !same
            }
            Err(e) => {
                tracing::warn!(
                    "{}: cannot look up {} ({e}); processing it",
                    self.path.display(),
                    object.name
                );
                true
            }
        }
    }
}

/// Records checkpoints; see [`StateStore::recorder`].
pub struct Recorder {
    path: PathBuf,
    conn: Connection,
    run: i64,
    counters: Arc<Counters>,
    error: Arc<Mutex<Option<StateError>>>,
}

impl Recorder {
    /// Records one checkpoint; returns the objects done, their events, and
    /// the objects failed.
    fn record(&mut self, files: &[FileOutcome]) -> Result<(u64, u64, u64), StateError> {
        let tx = self
            .conn
            .transaction()
            .map_err(sql(&self.path, "cannot start a transaction"))?;
        let done = files.iter().filter(|f| f.result.is_ok()).count() as u64;
        let failed = files.len() as u64 - done;
        tx.execute(
            &format!(
                "INSERT INTO checkpoints (run, at, objects_done, objects_failed) VALUES (?1, {NOW}, ?2, ?3)"
            ),
            params![self.run, done as i64, failed as i64],
        )
        .map_err(sql(&self.path, "cannot record a checkpoint"))?;
        let seq = tx.last_insert_rowid();
        {
            let mut upsert = tx
                .prepare_cached(&format!(
                    "INSERT INTO objects (name, key, version, size, status, events_in, events_out,
                                          checkpoint, attempts, first_seen_at, updated_at, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, {NOW}, {NOW}, ?9)
                     ON CONFLICT (name) DO UPDATE SET
                         key = excluded.key, version = excluded.version, size = excluded.size,
                         status = excluded.status, events_in = excluded.events_in,
                         events_out = excluded.events_out, checkpoint = excluded.checkpoint,
                         attempts = objects.attempts + 1, updated_at = excluded.updated_at,
                         error = excluded.error"
                ))
                .map_err(sql(&self.path, "cannot record objects"))?;
            for f in files {
                let (status, error) = match &f.result {
                    Ok(()) => ("done", None),
                    Err(e) => ("failed", Some(e.kind.to_string())),
                };
                upsert
                    .execute(params![
                        f.object.name,
                        f.object.key,
                        f.object.version,
                        f.object.size.map(|s| s as i64),
                        status,
                        f.events_in as i64,
                        f.events_out as i64,
                        seq,
                        error,
                    ])
                    .map_err(sql(&self.path, "cannot record an object"))?;
            }
        }
        tx.commit()
            .map_err(sql(&self.path, "cannot commit a checkpoint"))?;
        let events = files
            .iter()
            .filter(|f| f.result.is_ok())
            .map(|f| f.events_out)
            .sum();
        Ok((done, events, failed))
    }
}

impl CheckpointListener for Recorder {
    fn checkpoint(&mut self, files: &[FileOutcome]) {
        match self.record(files) {
            Ok((done, events, failed)) => {
                let c = &self.counters;
                c.checkpoints.fetch_add(1, Ordering::Relaxed);
                c.done.fetch_add(done, Ordering::Relaxed);
                c.events_done.fetch_add(events, Ordering::Relaxed);
                c.failed.fetch_add(failed, Ordering::Relaxed);
            }
            Err(e) => {
                // The objects stay as they were (not done), so the next run
                // does them again; the error fails this run at `finish_run`.
                tracing::error!("{e}");
                let mut first = self.error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(e);
            }
        }
    }
}

/// Takes the lock of the state at `path`.
fn lock(path: &Path) -> Result<std::fs::File, StateError> {
    let mut name = path.as_os_str().to_owned();
    name.push("-lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StateError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Busy { path: path.into() }),
        Err(std::fs::TryLockError::Error(source)) => Err(StateError::Lock {
            path: lock_path,
            source,
        }),
    }
}

/// Opens a connection to the state, in WAL mode so that the filter can read
/// while the recorder writes.
fn connect(path: &Path) -> Result<Connection, StateError> {
    let conn = Connection::open(path).map_err(sql(path, "cannot open"))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sql(path, "cannot configure"))?;
    // See the crate docs for why NORMAL (not FULL) is enough.
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(sql(path, "cannot configure (is it an SQLite file?)"))?;
    Ok(conn)
}

fn read_prior(conn: &Connection) -> rusqlite::Result<Prior> {
    let (objects_done, events_done): (i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(events_out), 0) FROM objects WHERE status = 'done'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let objects_failed: i64 = conn.query_row(
        "SELECT count(*) FROM objects WHERE status = 'failed'",
        [],
        |r| r.get(0),
    )?;
    let runs: i64 = conn.query_row("SELECT count(*) FROM runs", [], |r| r.get(0))?;
    let last_run_interrupted: bool = conn
        .query_row(
            "SELECT finished_at IS NULL FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get::<_, Option<bool>>(0),
        )
        .optional()?
        .flatten()
        .unwrap_or(false);
    Ok(Prior {
        runs: runs as u64,
        objects_done: objects_done as u64,
        objects_failed: objects_failed as u64,
        events_done: events_done as u64,
        last_run_interrupted,
    })
}

/// Turns an SQLite error into one naming the state file and what failed.
fn sql(path: &Path, what: &'static str) -> impl FnOnce(rusqlite::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError::Sqlite { path, what, source }
}

/// A binding part as shown in errors: one line, lists comma-separated.
fn shown(part: &str) -> String {
    format!("[{}]", part.replace('\n', ", "))
}

#[cfg(test)]
mod tests;
