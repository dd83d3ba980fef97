//! [`IcebergSink`]: events appended to an Apache Iceberg table, each source
//! object exactly once.
//!
//! # How a checkpoint commits
//!
//! Events are buffered and encoded as in the Parquet lake (the
//! [`PartitionedWriter`] engine: per-partition Arrow buffers, encoder
//! threads, bounded memory), but each encoder writes Iceberg data files
//! through the `iceberg` crate into the table's location. At
//! [`Sink::commit`]:
//!
//! 1. the encoders close their files, giving Iceberg `DataFile`s;
//! 2. the sink loads the table and its [ledger](crate::ledger), and looks up
//!    the objects of the window;
//! 3. if none is there, it writes their ledger segments and a new root, and
//!    commits one transaction: the append of the data files (with
//!    `trailmill.*` keys in the snapshot summary) and the table property
//!    that names the new root, through a [`Pinned`] catalog view so that the
//!    catalog's compare-and-swap binds the commit to the version checked;
//! 4. on a conflict (another writer committed first) it goes back to 2, up
//!    to [`IcebergOptions::commit_attempts`] times;
//! 5. if another writer committed any of the window's objects meanwhile
//!    (a race on one SQS message, or a redelivery), it gives up the whole
//!    window: the data files are deleted and the commit fails, so the
//!    window's objects are redone. On the redo, the objects the ledger holds
//!    are skipped (their events count as duplicates) and the rest are
//!    written again.
//!
//! Before it concludes anything from a failed attempt, the sink looks for
//! its commit ID in the table: a commit that landed although the catalog
//! answered with an error or a conflict (Glue's answer to the SDK's retry of
//! an `UpdateTable` whose reply was lost) is kept. When a commit's outcome
//! cannot be known (the table does not show it, or cannot be reached to
//! check), the window fails but its files stay: deleting them could break a
//! table that holds them. The redo settles it through the ledger.
//!
//! The ledger records whole objects, so a commit must hold whole objects:
//! the pipeline never commits between two batches of one object, the sink
//! refuses a commit while an object is half-written, and an object that
//! fails midway ([`Sink::file_failed`]) makes the next commit give up the
//! window, whose objects are then redone whole.
//!
//! Objects the ledger already held when they arrived are skipped at once,
//! so a redelivered message costs a decode, not a commit.
//!
//! A window whose objects hold no event at all commits nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::{DataFileWriter, DataFileWriterBuilder};
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, ErrorKind, NamespaceIdent, TableCreation, TableIdent};
use trailmill_core::Event;
use trailmill_pipeline::{Sink, SinkError, SinkStats, SourceObject};
use trailmill_sinks::parquet::{ParquetOptions, PartitionWriter, PartitionedWriter};

use crate::catalog::{self, CatalogKind, Pinned, WarehouseRole, message};
use crate::ledger::{LEDGER_PROPERTY, Ledger, LedgerEntry, Staged};
use crate::table::{RowMapping, partition_spec, schema, schema_without_zones};

/// What an Iceberg sink writes to, and how.
#[derive(Clone, Debug)]
pub struct IcebergOptions {
    /// `NAMESPACE.TABLE` (the namespace may itself have dots: the last part
    /// is the table).
    pub table: String,
    /// `--iceberg-catalog`: `sqlite:PATH`, `postgres://…`, `glue`, an S3
    /// Tables bucket ARN (`arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME`), or
    /// a REST catalog's `http(s)://` base URI.
    pub catalog: String,
    /// `--iceberg-warehouse`: where new tables go, `s3://bucket/prefix` or a
    /// local directory; empty for S3 Tables, which chooses; for a REST
    /// catalog, the server's warehouse, by its name or location (optional).
    pub warehouse: String,
    /// `--iceberg-property KEY=VALUE` pairs, for the catalog and its storage;
    /// they override what the AWS environment gives.
    pub properties: Vec<(String, String)>,
    /// Buffering, encoding and file sizes, as for the Parquet lake.
    pub parquet: ParquetOptions,
    /// Commit attempts when other writers keep committing first.
    pub commit_attempts: u32,
    /// Who writes, for the snapshot summaries (`trailmill.writer`); by
    /// default the host name and process id.
    pub writer: Option<String>,
}

impl IcebergOptions {
    /// Options for `table` in `catalog`, new tables going to `warehouse`.
    pub fn new(table: &str, catalog: &str, warehouse: &str) -> IcebergOptions {
        IcebergOptions {
            table: table.to_owned(),
            catalog: catalog.to_owned(),
            warehouse: warehouse.to_owned(),
            properties: Vec::new(),
            parquet: ParquetOptions::default(),
            commit_attempts: 20,
            writer: None,
        }
    }
}

/// Appends events to an Iceberg table. See the [module docs](self).
pub struct IcebergSink {
    name: String,
    runtime: Arc<tokio::runtime::Runtime>,
    catalog: Arc<dyn Catalog>,
    ident: TableIdent,
    table: Table,
    ledger: Ledger,
    inner: PartitionedWriter<TableFiles>,
    /// The objects whose events are in the open window.
    window: Vec<LedgerEntry>,
    window_ids: HashSet<u128>,
    /// The last object seen, and whether the ledger already holds it.
    last: Option<(String, bool)>,
    writer: String,
    attempts: u32,
    skipped_events: u64,
    commits: u64,
    /// Objects with batches received but neither `file_done` nor
    /// `file_failed` yet: the ledger records whole objects, so a commit
    /// cannot hold part of one.
    delivering: HashSet<String>,
    /// An object of the window that failed after some of its events were
    /// written: the window cannot be committed (the ledger would hold a
    /// part of it, and the redo would skip the rest).
    broken: Option<String>,
    /// False where the storage refuses deletes (S3 Tables): files no commit
    /// uses are then left to the service's unreferenced-file removal.
    can_delete_files: bool,
}

impl IcebergSink {
    /// Opens the catalog, creates the namespace and the table if they do not
    /// exist (or checks that the existing table can take trailmill's rows),
    /// and starts the encoders.
    pub fn open(options: &IcebergOptions) -> Result<IcebergSink, SinkError> {
        let name = format!("iceberg:{}", options.table);
        let fail = |what: String| SinkError::new(format!("{name}: {what}"));
        let (namespace, table_name) = match options.table.rsplit_once('.') {
            Some((ns, t)) if !ns.is_empty() && !t.is_empty() => (ns, t),
            _ => return Err(fail(format!("{:?} is not NAMESPACE.TABLE", options.table))),
        };
        let kind = CatalogKind::parse(&options.catalog).map_err(&fail)?;
        kind.check_names(namespace, table_name).map_err(&fail)?;
        let warehouse = match kind.warehouse_role() {
            WarehouseRole::Refused if !options.warehouse.is_empty() => {
                return Err(fail(format!(
                    "an S3 Tables bucket chooses where each table goes: drop --iceberg-warehouse {}",
                    options.warehouse
                )));
            }
            WarehouseRole::Refused => String::new(),
            WarehouseRole::ServerWarehouse => options.warehouse.clone(),
            WarehouseRole::Location if options.warehouse.is_empty() => {
                return Err(fail(
                    "no warehouse: give --iceberg-warehouse s3://bucket/prefix or a directory"
                        .into(),
                ));
            }
            WarehouseRole::Location => local_warehouse(&options.warehouse).map_err(&fail)?,
        };
        let mut props = catalog::environment_properties();
        props.extend(kind.implied_properties());
        props.extend(options.properties.iter().cloned());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trailmill-iceberg")
            .enable_all()
            .build()
            .map_err(|e| {
                SinkError::with_source(format!("{name}: cannot start the async runtime"), e)
            })?;
        let namespace =
            NamespaceIdent::from_strs(namespace.split('.')).map_err(|e| fail(message(&e)))?;
        let ident = TableIdent::new(namespace.clone(), table_name.to_owned());
        let (catalog, table) = runtime
            .block_on(async {
                let catalog = catalog::open(&kind, &warehouse, props).await?;
                let zones = kind != CatalogKind::Glue;
                let table =
                    ensure_table(&*catalog, &namespace, &ident, zones, kind.creation_wait())
                        .await?;
                Ok::<_, String>((catalog, table))
            })
            .map_err(&fail)?;
        let mapping = RowMapping::new(table.metadata().current_schema()).map_err(&fail)?;
        let writer = options.writer.clone().unwrap_or_else(default_writer);
        let mut ledger = Ledger::new(table.file_io().clone(), table.metadata().location());
        runtime
            .block_on(ledger.load(table.properties_ledger()))
            .map_err(&fail)?;
        // A table holds every column (its schema is fixed at creation), so
        // the column choices of the Parquet lake do not apply.
        let mut parquet_options = options.parquet.clone();
        parquet_options.json_columns = true;
        parquet_options.raw_column = true;
        // A data file in object storage also holds its upload's pending
        // part (opendal's S3 writer sends parts of 5 MiB or more), so fewer
        // files stay open there. With 16 open files an Iceberg table on S3
        // took an organisation trail written 36 partitions at a time to
        // 278-290 MB peak RSS, 64 MB more than on the local disk; with 4 (and
        // 8 MiB of buffered records), 219-231 MB, for 56-60 data files
        // instead of 36 (a partition whose file was closed to open another
        // starts a new one).
        if is_remote(table.metadata().location()) {
            parquet_options.max_open_files = parquet_options.max_open_files.min(REMOTE_OPEN_FILES);
        }
        // The iceberg crate's writers cannot write a row group out early, as
        // the Parquet lake's do to keep `max_open_bytes`; so the row groups
        // are sized to fit that budget when every open file holds one. With
        // 8 MiB row groups, 36 partitions peaked at 520 MiB RSS, with 1 MiB
        // (the defaults' share) at 205-213 MiB; 4 partitions went from 272
        // to 186 MiB, for 7% more time.
        parquet_options.row_group_bytes = parquet_options.row_group_bytes.min(
            (parquet_options.max_open_bytes / parquet_options.max_open_files.max(1)).max(1 << 20),
        );
        let props = trailmill_sinks::parquet::writer_properties(&parquet_options)?;
        let run = uuid::Uuid::new_v4().simple().to_string();
        let threads = parquet_options.encoder_threads.max(1);
        let max_open = (parquet_options.max_open_files / threads).max(1);
        let target = options.parquet.target_file_bytes.max(1) as usize;
        let meta = table.metadata();
        let location = DefaultLocationGenerator::new(meta).map_err(|e| fail(message(&e)))?;
        let spec = meta.default_partition_spec().clone();
        let table_schema = meta.current_schema().clone();
        let handle = runtime.handle().clone();
        let file_io = table.file_io().clone();
        let mut failed = None;
        let inner = PartitionedWriter::start(name.clone(), parquet_options, |i| {
            let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(
                table_schema.clone(),
                spec.clone(),
            );
            let splitter = match splitter {
                Ok(s) => Some(s),
                Err(e) => {
                    failed.get_or_insert(message(&e));
                    None
                }
            };
            let parquet = ParquetWriterBuilder::new(props.clone(), table_schema.clone());
            let names =
                DefaultFileNameGenerator::new(format!("{run}-{i}"), None, DataFileFormat::Parquet);
            let rolling = RollingFileWriterBuilder::new(
                parquet,
                target,
                file_io.clone(),
                location.clone(),
                names,
            );
            TableFiles {
                handle: handle.clone(),
                mapping: mapping.clone(),
                splitter,
                builder: DataFileWriterBuilder::new(rolling),
                open: HashMap::new(),
                closed: Vec::new(),
                max_open,
                tick: 0,
                file_io: file_io.clone(),
                can_delete_files: kind.can_delete_files(),
            }
        })?;
        if let Some(e) = failed {
            return Err(fail(format!("cannot partition by the table's spec: {e}")));
        }
        tracing::info!(sink = %name, location = table.metadata().location(), "table ready");
        Ok(IcebergSink {
            name,
            runtime: Arc::new(runtime),
            catalog,
            ident,
            table,
            ledger,
            inner,
            window: Vec::new(),
            window_ids: HashSet::new(),
            last: None,
            writer,
            attempts: options.commit_attempts.max(1),
            skipped_events: 0,
            commits: 0,
            delivering: HashSet::new(),
            broken: None,
            can_delete_files: kind.can_delete_files(),
        })
    }

    /// The table as of the last commit (or open).
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// True when the ledger (as of the last commit) holds `object`.
    fn already_held(&mut self, object: &SourceObject) -> Result<bool, SinkError> {
        if let Some((name, held)) = &self.last
            && *name == object.name
        {
            return Ok(*held);
        }
        let entry = LedgerEntry::of(object);
        let held = if self.window_ids.contains(&entry.id) {
            false
        } else {
            let ledger = &mut self.ledger;
            !self
                .runtime
                .block_on(ledger.held(std::slice::from_ref(&entry)))
                .map_err(|e| SinkError::new(format!("{}: {e}", self.name)))?
                .is_empty()
        };
        if !held && self.window_ids.insert(entry.id) {
            self.window.push(entry);
        }
        self.last = Some((object.name.clone(), held));
        Ok(held)
    }

    /// Gives up the window: its files are deleted, and its objects will be
    /// redone.
    fn abort(&mut self, files: &[DataFile], staged: &[String]) {
        self.inner.abort();
        let paths: Vec<String> = files
            .iter()
            .map(|f| f.file_path().to_owned())
            .chain(staged.iter().cloned())
            .collect();
        self.delete_unused(paths);
        self.window.clear();
        self.window_ids.clear();
        self.last = None;
        self.broken = None;
    }

    /// Deletes files no snapshot or ledger root refers to; a failure only
    /// leaves an orphan, so it is logged.
    fn delete_unused(&self, paths: Vec<String>) {
        if !self.can_delete_files {
            tracing::debug!(sink = %self.name, files = paths.len(), "leaving unused files to the storage's own removal");
            return;
        }
        let io = self.table.file_io().clone();
        self.runtime.block_on(async {
            for p in paths {
                if let Err(e) = io.delete(&p).await {
                    tracing::warn!(file = %p, error = %message(&e), "cannot delete a file of an abandoned commit");
                }
            }
        });
    }

    /// Commits `files` and the window's objects, as the module docs say.
    /// `staged_out` receives the ledger files of every attempt; on success,
    /// the ones the commit does not use (of attempts that met a conflict),
    /// on failure all of them.
    async fn commit_window(
        catalog: &Arc<dyn Catalog>,
        ident: &TableIdent,
        ledger: &mut Ledger,
        (window, files): (&[LedgerEntry], &[DataFile]),
        writer: &str,
        attempts: u32,
        staged_out: &mut Vec<String>,
    ) -> Result<Table, CommitFailure> {
        let commit_id = uuid::Uuid::new_v4();
        let mut last_conflict = String::new();
        // The ledger files of each attempt: all but the one that lands are
        // unused, and their tags keep their names apart.
        let mut attempts_staged: Vec<Staged> = Vec::new();
        for attempt in 1..=attempts {
            let base = catalog.load_table(ident).await.map_err(|e| {
                CommitFailure::Error(format!("cannot load the table: {}", message(&e)))
            })?;
            // An earlier attempt may have landed although the catalog said
            // it conflicted (real Glue's answer to the SDK's retry of a
            // request whose reply was lost): its objects are then in the
            // ledger, by our own hand, and taking that for another writer's
            // commit would delete the files the new snapshot holds.
            if attempt > 1 && committed_by(&base, &commit_id) {
                tracing::info!(attempt, "a commit reported as conflicting had landed");
                let landed = ledger_of_commit(&base, &commit_id);
                *staged_out = unused_ledger_files(attempts_staged, landed.as_deref());
                return Ok(base);
            }
            ledger
                .load(base.properties_ledger())
                .await
                .map_err(CommitFailure::Error)?;
            let held = ledger.held(window).await.map_err(CommitFailure::Error)?;
            if !held.is_empty() {
                return Err(CommitFailure::Overlap(held.len()));
            }
            let tag = format!("{}-{attempt}", commit_id.simple());
            let staged = ledger
                .stage(window, &tag)
                .await
                .map_err(CommitFailure::Error)?;
            staged_out.extend(staged.written.iter().cloned());
            let root_path = staged.root_path.clone();
            attempts_staged.push(staged);
            let summary = HashMap::from([
                ("trailmill.commit-id".to_owned(), commit_id.to_string()),
                ("trailmill.objects".to_owned(), window.len().to_string()),
                ("trailmill.writer".to_owned(), writer.to_owned()),
                (LEDGER_PROPERTY.to_owned(), root_path.clone()),
            ]);
            let tx = Transaction::new(&base);
            let tx = tx
                .update_table_properties()
                .set(LEDGER_PROPERTY.to_owned(), root_path.clone())
                .apply(tx)
                .and_then(|tx| {
                    tx.fast_append()
                        .with_check_duplicate(false)
                        .set_commit_uuid(uuid::Uuid::new_v4())
                        .set_snapshot_properties(summary)
                        .add_data_files(files.to_vec())
                        .apply(tx)
                })
                .map_err(|e| {
                    CommitFailure::Error(format!("cannot build the commit: {}", message(&e)))
                })?;
            let pinned = Pinned {
                inner: catalog.clone(),
                table: base.clone(),
            };
            match tx.commit(&pinned).await {
                Ok(_) => {
                    // Confirm: a catalog may report success for a write it
                    // did not make (the SQL catalog ignores the result of
                    // its COMMIT).
                    let now = catalog.load_table(ident).await.map_err(|e| {
                        CommitFailure::Unknown(format!(
                            "the commit may or may not have happened: cannot reload the table: {}",
                            message(&e)
                        ))
                    })?;
                    if now.properties_ledger() == Some(root_path.as_str())
                        || committed_by(&now, &commit_id)
                    {
                        *staged_out = unused_ledger_files(attempts_staged, Some(&root_path));
                        return Ok(now);
                    }
                    return Err(CommitFailure::Error(
                        "the catalog accepted the commit, but the table does not show it".into(),
                    ));
                }
                Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts => {
                    last_conflict = message(&e);
                    tracing::debug!(attempt, reason = %last_conflict, "commit conflict; reloading");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    // The outcome is unknown (a timeout, a lost reply): look.
                    // A table that does not show the commit yet may still
                    // get it (a request the catalog has not applied yet), so
                    // its files stay: at worst they are orphans, whereas
                    // deleting them could break the table.
                    let reason = message(&e);
                    return match catalog.load_table(ident).await {
                        Ok(now) if committed_by(&now, &commit_id) => {
                            tracing::info!(
                                attempt,
                                %reason,
                                "a commit answered with an error had landed"
                            );
                            let landed = ledger_of_commit(&now, &commit_id);
                            *staged_out = unused_ledger_files(attempts_staged, landed.as_deref());
                            Ok(now)
                        }
                        Ok(_) => Err(CommitFailure::Unknown(format!("commit failed: {reason}"))),
                        Err(_) => Err(CommitFailure::Unknown(format!(
                            "commit failed, and the table cannot be reloaded to see whether it happened: {reason}"
                        ))),
                    };
                }
            }
        }
        Err(CommitFailure::Error(format!(
            "{attempts} commit attempts met conflicts with other writers; last: {last_conflict}"
        )))
    }
}

/// Why a window could not be committed.
enum CommitFailure {
    /// Another writer committed this many of the window's objects.
    Overlap(usize),
    /// Anything else, known not to have committed.
    Error(String),
    /// The commit may have happened: its files must stay.
    Unknown(String),
}

/// The backoff before attempt `attempt + 1`: jittered, growing to 2 s.
fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let ceiling = 50u64.saturating_mul(1 << attempt.min(6)).min(2_000);
    let jitter = RandomState::new().hash_one(attempt) % ceiling.max(1);
    Duration::from_millis(jitter)
}

/// The summary properties of the snapshot of commit `commit_id`, if
/// `table` has it.
fn commit_summary<'t>(
    table: &'t Table,
    commit_id: &uuid::Uuid,
) -> Option<&'t HashMap<String, String>> {
    let id = commit_id.to_string();
    table
        .metadata()
        .snapshots()
        .map(|s| &s.summary().additional_properties)
        .find(|p| p.get("trailmill.commit-id") == Some(&id))
}

/// True when a snapshot of `table` carries `commit_id`.
fn committed_by(table: &Table, commit_id: &uuid::Uuid) -> bool {
    commit_summary(table, commit_id).is_some()
}

/// The ledger root that the snapshot of commit `commit_id` set.
fn ledger_of_commit(table: &Table, commit_id: &uuid::Uuid) -> Option<String> {
    commit_summary(table, commit_id).and_then(|p| p.get(LEDGER_PROPERTY).cloned())
}

/// The files of the attempts whose root is not `landed`: staged for
/// commits that met a conflict and never landed. When the landed root is
/// unknown, none: deleting a file the table uses would break it, whereas an
/// orphan costs only its bytes.
fn unused_ledger_files(attempts: Vec<Staged>, landed: Option<&str>) -> Vec<String> {
    let Some(landed) = landed else {
        return Vec::new();
    };
    if !attempts.iter().any(|a| a.root_path == landed) {
        return Vec::new();
    }
    attempts
        .into_iter()
        .filter(|a| a.root_path != landed)
        .flat_map(|a| a.written)
        .collect()
}

/// The ledger root a table names.
trait LedgerProperty {
    fn properties_ledger(&self) -> Option<&str>;
}

impl LedgerProperty for Table {
    fn properties_ledger(&self) -> Option<&str> {
        self.metadata()
            .properties()
            .get(LEDGER_PROPERTY)
            .map(String::as_str)
    }
}

/// Creates the namespace and the table when missing (with `timestamptz`
/// times when `zones`, else `timestamp`); checks an existing one. A table
/// that is listed but cannot be loaded is tried again for `creation_wait`.
async fn ensure_table(
    catalog: &dyn Catalog,
    namespace: &NamespaceIdent,
    ident: &TableIdent,
    zones: bool,
    creation_wait: Duration,
) -> Result<Table, String> {
    let exists = catalog
        .namespace_exists(namespace)
        .await
        .map_err(|e| format!("cannot reach the catalog: {}", message(&e)))?;
    if !exists && let Err(e) = catalog.create_namespace(namespace, HashMap::new()).await {
        // Another writer may have created it first.
        if !catalog.namespace_exists(namespace).await.unwrap_or(false) {
            return Err(format!("cannot create the namespace: {}", message(&e)));
        }
    }
    if catalog
        .table_exists(ident)
        .await
        .map_err(|e| format!("cannot reach the catalog: {}", message(&e)))?
    {
        return load_created(catalog, ident, creation_wait)
            .await
            .map_err(|e| format!("cannot load the table: {e}"));
    }
    let schema = if zones {
        schema()?
    } else {
        schema_without_zones()?
    };
    let creation = TableCreation::builder()
        .name(ident.name().to_owned())
        .partition_spec(partition_spec(&schema)?)
        .schema(schema)
        .properties([
            ("write.format.default".to_owned(), "parquet".to_owned()),
            (
                "write.parquet.compression-codec".to_owned(),
                "zstd".to_owned(),
            ),
        ])
        .build();
    match catalog.create_table(namespace, creation).await {
        Ok(t) => Ok(t),
        // Another writer may have created it first.
        Err(e) => match catalog.table_exists(ident).await {
            Ok(true) => load_created(catalog, ident, creation_wait)
                .await
                .map_err(|l| format!("cannot create the table: {}; nor load it: {l}", message(&e))),
            _ => Err(format!("cannot create the table: {}", message(&e))),
        },
    }
}

/// Loads a table the catalog lists, waiting up to `creation_wait` for one
/// that another writer is still creating: S3 Tables lists a table from
/// `CreateTable` on, before its creator has written the first metadata and
/// set its location. (The other catalogs list a table only with its
/// metadata, so they wait for nothing.)
async fn load_created(
    catalog: &dyn Catalog,
    ident: &TableIdent,
    creation_wait: Duration,
) -> Result<Table, String> {
    let mut wait = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    loop {
        match catalog.load_table(ident).await {
            Ok(t) => return Ok(t),
            Err(e) if creation_wait.is_zero() => return Err(message(&e)),
            Err(e) if waited >= creation_wait => {
                return Err(format!(
                    "{} (still so after {} s: if the writer that created it stopped before its \
                     first metadata was written, drop the table)",
                    message(&e),
                    waited.as_secs()
                ));
            }
            Err(_) => {
                tokio::time::sleep(wait).await;
                waited += wait;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Data files a table in object storage keeps open at once, over all
/// encoder threads: each holds a pending upload part (5 MiB or more)
/// besides its row group.
const REMOTE_OPEN_FILES: usize = 4;

/// True for a table location in object storage (`s3://…`), false for the
/// local disk (`file://…`).
fn is_remote(location: &str) -> bool {
    location.contains("://") && !location.starts_with("file://")
}

/// A local warehouse as an absolute path, created; an `s3://` one as is.
fn local_warehouse(warehouse: &str) -> Result<String, String> {
    if warehouse.contains("://") && !warehouse.starts_with("file://") {
        return Ok(warehouse.trim_end_matches('/').to_owned());
    }
    let path = std::path::Path::new(warehouse.strip_prefix("file://").unwrap_or(warehouse));
    std::fs::create_dir_all(path)
        .map_err(|e| format!("cannot create the warehouse {}: {e}", path.display()))?;
    let abs = std::path::absolute(path)
        .map_err(|e| format!("cannot resolve the warehouse {}: {e}", path.display()))?;
    Ok(format!("file://{}", abs.display()))
}

fn default_writer() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    format!("{host}:{}", std::process::id())
}

impl Sink for IcebergSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write_batch(&mut self, file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        if !self.delivering.contains(&file.name) {
            self.delivering.insert(file.name.clone());
        }
        if self.already_held(file)? {
            let stats = self.inner.stats_mut();
            stats.events_received += events.len() as u64;
            stats.duplicates += events.len() as u64;
            self.skipped_events += events.len() as u64;
            return Ok(());
        }
        self.inner.write_batch(file, events)
    }

    fn file_done(&mut self, file: &SourceObject) -> Result<(), SinkError> {
        self.delivering.remove(&file.name);
        Ok(())
    }

    fn file_failed(&mut self, file: &SourceObject) {
        self.delivering.remove(&file.name);
        if self.window_ids.contains(&LedgerEntry::of(file).id) {
            self.broken.get_or_insert_with(|| file.name.clone());
        }
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        if let Some(object) = self.delivering.iter().next() {
            // The pipeline never does this (a checkpoint waits for the
            // objects being delivered); a program driving the sink itself
            // must finish an object before it commits.
            return Err(SinkError::new(format!(
                "{}: cannot commit while {} is only partly written ({} objects in all): the table's ledger records whole objects",
                self.name,
                object,
                self.delivering.len()
            )));
        }
        if let Some(object) = self.broken.take() {
            let objects = self.window.len();
            self.abort(&[], &[]);
            return Err(SinkError::new(format!(
                "{}: {object} failed after some of its events were written; the commit of its {objects} objects is given up so that each is redone whole",
                self.name
            )));
        }
        let files: Vec<DataFile> = match self.inner.commit() {
            Ok(per_encoder) => per_encoder.into_iter().flatten().collect(),
            Err(e) => {
                self.abort(&[], &[]);
                return Err(e);
            }
        };
        if files.is_empty() {
            // Nothing to add: objects without events need no record, a redo
            // adds nothing either.
            self.inner.window_committed();
            self.window.clear();
            self.window_ids.clear();
            self.last = None;
            return Ok(());
        }
        let mut staged = Vec::new();
        let result = self.runtime.clone().block_on(Self::commit_window(
            &self.catalog,
            &self.ident,
            &mut self.ledger,
            (&self.window, &files),
            &self.writer,
            self.attempts,
            &mut staged,
        ));
        match result {
            Ok(table) => {
                self.inner.window_committed();
                if !staged.is_empty() {
                    tracing::debug!(sink = %self.name, files = staged.len(), "deleting the ledger files of attempts that met a conflict");
                    self.delete_unused(staged);
                }
                let bytes: u64 = files.iter().map(|f| f.file_size_in_bytes()).sum();
                self.inner.stats_mut().bytes_written += bytes;
                self.commits += 1;
                tracing::debug!(sink = %self.name, files = files.len(), objects = self.window.len(), "committed");
                self.table = table;
                self.window.clear();
                self.window_ids.clear();
                self.last = None;
                Ok(())
            }
            Err(CommitFailure::Overlap(n)) => {
                let objects = self.window.len();
                self.abort(&files, &staged);
                Err(SinkError::new(format!(
                    "{}: {n} of the {objects} objects in this commit were committed by another writer meanwhile; the commit is given up and its objects are redone (the redo skips what the table holds)",
                    self.name
                )))
            }
            Err(CommitFailure::Error(e)) => {
                self.abort(&files, &staged);
                Err(SinkError::new(format!("{}: {e}", self.name)))
            }
            Err(CommitFailure::Unknown(e)) => {
                // Deleting the files could break a table that holds them;
                // leave them. The redo finds out: the ledger skips the
                // objects if the commit happened, and orphans stay otherwise.
                self.abort(&[], &[]);
                Err(SinkError::new(format!("{}: {e}", self.name)))
            }
        }
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        let result = self.commit();
        self.inner.close();
        result.map(|()| self.inner.stats().clone())
    }
}

/// The [`PartitionWriter`] of [`IcebergSink`]: Iceberg data files, one
/// rolling writer per table partition, at most `max_open` open at once.
struct TableFiles {
    handle: tokio::runtime::Handle,
    mapping: RowMapping,
    splitter: Option<RecordBatchPartitionSplitter>,
    builder: DataFileWriterBuilder<
        ParquetWriterBuilder,
        DefaultLocationGenerator,
        DefaultFileNameGenerator,
    >,
    open: HashMap<
        String,
        (
            DataFileWriter<
                ParquetWriterBuilder,
                DefaultLocationGenerator,
                DefaultFileNameGenerator,
            >,
            u64,
        ),
    >,
    closed: Vec<DataFile>,
    max_open: usize,
    tick: u64,
    file_io: FileIO,
    /// As [`IcebergSink`]'s: whether `abort` may delete the files it closed.
    can_delete_files: bool,
}

impl TableFiles {
    fn close(&mut self, key: &str) -> Result<(), String> {
        let Some((mut w, _)) = self.open.remove(key) else {
            return Ok(());
        };
        let files = self.handle.block_on(w.close()).map_err(|e| {
            format!(
                "cannot close a data file of partition {key}: {}",
                message(&e)
            )
        })?;
        self.closed.extend(files);
        Ok(())
    }
}

impl PartitionWriter for TableFiles {
    type Committed = Vec<DataFile>;

    fn write(&mut self, _partition: &Arc<str>, batch: &RecordBatch) -> Result<(), String> {
        let rows = self.mapping.apply(batch)?;
        let Some(splitter) = &self.splitter else {
            return Err("no partition splitter".into());
        };
        let parts = splitter
            .split(&rows)
            .map_err(|e| format!("cannot partition a batch: {}", message(&e)))?;
        for (key, part) in parts {
            self.tick += 1;
            let path = key.to_path();
            if !self.open.contains_key(&path) {
                if self.open.len() >= self.max_open
                    && let Some(lru) = self
                        .open
                        .iter()
                        .min_by_key(|(_, (_, used))| *used)
                        .map(|(k, _)| k.clone())
                {
                    self.close(&lru)?;
                }
                let w = self
                    .handle
                    .block_on(self.builder.build(Some(key)))
                    .map_err(|e| format!("cannot start a data file: {}", message(&e)))?;
                self.open.insert(path.clone(), (w, self.tick));
            }
            let tick = self.tick;
            let Some((w, used)) = self.open.get_mut(&path) else {
                continue;
            };
            *used = tick;
            if let Err(e) = self.handle.block_on(w.write(part)) {
                self.open.remove(&path);
                return Err(format!("cannot write partition {path}: {}", message(&e)));
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<Vec<DataFile>, String> {
        let keys: Vec<String> = self.open.keys().cloned().collect();
        let mut error = None;
        for k in keys {
            if let Err(e) = self.close(&k) {
                error.get_or_insert(e);
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(std::mem::take(&mut self.closed)),
        }
    }

    fn abort(&mut self) {
        let keys: Vec<String> = self.open.keys().cloned().collect();
        for k in keys {
            let _ = self.close(&k);
        }
        let io = self.file_io.clone();
        let files = std::mem::take(&mut self.closed);
        if !self.can_delete_files {
            return;
        }
        self.handle.block_on(async {
            for f in files {
                let _ = io.delete(f.file_path()).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trailmill_core::{DecodeOptions, Decoder};

    /// Tables in object storage get the smaller open-file budget; a local
    /// warehouse (always `file://` once opened) keeps the Parquet lake's.
    #[test]
    fn object_storage_locations_are_remote() {
        for remote in ["s3://bucket/wh/ns/t", "s3a://bucket/t", "gs://bucket/t"] {
            assert!(is_remote(remote), "{remote}");
        }
        for local in ["file:///tmp/wh/ns/t", "/tmp/wh/ns/t"] {
            assert!(!is_remote(local), "{local}");
        }
    }

    /// A log file's text with `n` events whose IDs are `{prefix}-{i}`.
    fn log(prefix: &str, n: usize) -> String {
        let records: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"eventVersion":"1.08","eventID":"{prefix}-{i}","eventTime":"2024-01-01T00:00:00Z","eventName":"GetObject","awsRegion":"us-east-1","recipientAccountId":"111122223333"}}"#
                )
            })
            .collect();
        format!(r#"{{"Records":[{}]}}"#, records.join(","))
    }

    /// Decodes `text` in batches of `batch` events and hands each to `f`.
    fn batches(text: &str, batch: usize, f: &mut dyn FnMut(&[Event<'_>])) {
        Decoder::new(DecodeOptions {
            batch_size: batch,
            ..DecodeOptions::default()
        })
        .decode(text.as_bytes(), &mut |events| {
            f(events);
            Ok(())
        })
        .unwrap();
    }

    fn sink(dir: &std::path::Path) -> IcebergSink {
        let catalog = format!("sqlite:{}", dir.join("catalog.db").display());
        let warehouse = dir.join("warehouse").display().to_string();
        IcebergSink::open(&IcebergOptions::new("ct.events", &catalog, &warehouse)).unwrap()
    }

    /// `total-records` of the table's current snapshot (0 without one).
    fn total_records(sink: &IcebergSink) -> u64 {
        sink.table()
            .metadata()
            .current_snapshot()
            .and_then(|s| {
                s.summary()
                    .additional_properties
                    .get("total-records")
                    .cloned()
            })
            .map_or(0, |n| n.parse().unwrap())
    }

    /// Writes every event of `text` as `object`, then `file_done`.
    fn write_whole(sink: &mut IcebergSink, object: &SourceObject, text: &str) {
        batches(text, 10, &mut |events| {
            sink.write_batch(object, events).unwrap()
        });
        sink.file_done(object).unwrap();
    }

    #[test]
    fn an_object_that_failed_midway_gives_up_its_window_and_is_redone_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path());
        let (x, y) = (
            SourceObject::new("x.json", "x.json"),
            SourceObject::new("y.json", "y.json"),
        );
        let (x_log, y_log) = (log("x", 30), log("y", 5));
        // x's first 10 events, then x fails; y is whole.
        let mut first = true;
        batches(&x_log, 10, &mut |events| {
            if std::mem::take(&mut first) {
                sink.write_batch(&x, events).unwrap();
            }
        });
        sink.file_failed(&x);
        write_whole(&mut sink, &y, &y_log);
        let err = sink.commit().unwrap_err().to_string();
        assert!(
            err.contains("x.json failed after some of its events were written"),
            "{err}"
        );
        assert_eq!(total_records(&sink), 0);
        // The redo of both objects stores each event once.
        write_whole(&mut sink, &x, &x_log);
        write_whole(&mut sink, &y, &y_log);
        sink.commit().unwrap();
        assert_eq!(total_records(&sink), 35);
        assert_eq!(sink.finish().unwrap().events_written, 35);
    }

    #[test]
    fn a_commit_refuses_an_object_still_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(dir.path());
        let x = SourceObject::new("x.json", "x.json");
        let mut parts = Vec::new();
        batches(&log("x", 20), 10, &mut |events| {
            // Each batch is written as it comes; the commit is tried after the first.
            sink.write_batch(&x, events).unwrap();
            if parts.is_empty() {
                parts.push(sink.commit().map_err(|e| e.to_string()));
            }
        });
        let err = parts[0].as_ref().unwrap_err();
        assert!(
            err.contains("cannot commit while x.json is only partly written"),
            "{err}"
        );
        sink.file_done(&x).unwrap();
        sink.commit().unwrap();
        assert_eq!(total_records(&sink), 20);
    }
}
