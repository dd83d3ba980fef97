//! trailmill's lake sinks: where a backfill or a fleet of workers puts what
//! it reads so that Athena, Trino, Spark and DuckDB can query it.
//!
//! - [`IcebergSink`] (`--sink iceberg:NAMESPACE.TABLE`): an Apache Iceberg
//!   table in an SQL (SQLite, PostgreSQL), Glue, S3 Tables or REST catalog
//!   ([`catalog`]), on S3 or a local directory. Each checkpoint is one atomic append, and each source object's
//!   events land exactly once, whoever redoes it, through the table's
//!   [object ledger](ledger).
//! - [`S3Lake`] (`--sink parquet:s3://BUCKET/PREFIX`): the Parquet lake's
//!   Hive layout in S3. Files are staged on the local disk and published at
//!   each commit as whole objects ([`trailmill_aws::S3Uploader`]).
//!
//! Both reuse the Parquet lake's engine
//! ([`trailmill_sinks::parquet::PartitionedWriter`]): per-partition Arrow
//! buffers, encoder threads, bounded memory, the same columns.
//! [`open_sink`] opens any `--sink` spec, these included, and [`open_sinks`]
//! all of a run's, which share the memory bound.

pub mod catalog;
pub mod iceberg_sink;
pub mod ledger;
pub mod s3_parquet;
pub mod table;

pub use iceberg_sink::{IcebergOptions, IcebergSink};
pub use s3_parquet::{OpenedSink, S3Lake, open_sink, open_sinks};
