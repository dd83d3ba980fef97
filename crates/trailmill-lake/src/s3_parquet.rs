//! `parquet:s3://BUCKET/PREFIX`: the Parquet lake in S3, and [`open_sink`],
//! which opens any `--sink` spec.
//!
//! Files are written under a private local staging directory (removed when
//! the sink closes) and, at each commit, uploaded whole to
//! `s3://BUCKET/PREFIX/account=…/region=…/date=…/part-RUN-SEQ.parquet`:
//! a single `PutObject` up to 64 MiB, else a multipart upload completed only
//! after its last part. A crash leaves no object visible; an interrupted
//! multipart upload is invisible and is aborted by the next sink that opens
//! the prefix once it is an hour old (writers still running keep theirs).
//! File names carry a random run id, so any number of processes can share a
//! prefix.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use trailmill_aws::{S3Client, S3Options, S3Uploader, S3Url};
use trailmill_core::Event;
use trailmill_pipeline::{Sink, SinkError, SinkStats, SourceObject};
use trailmill_sinks::parquet::{ParquetOptions, ParquetSink, Publisher};
use trailmill_sinks::{Resumed, SinkSpec};

use crate::iceberg_sink::{IcebergOptions, IcebergSink};

/// Multipart uploads older than this under the lake's prefix are taken for
/// leftovers of crashed writers and aborted when a sink opens.
pub const STALE_UPLOAD_AGE: Duration = Duration::from_secs(3600);

/// The Parquet lake in S3. See the [module docs](self).
pub struct S3Lake {
    sink: ParquetSink,
    // Dropped after the sink, whose encoders write into it.
    _staging: tempfile::TempDir,
}

struct S3Publisher {
    uploader: S3Uploader,
    bucket: String,
    prefix: String,
}

impl Publisher for S3Publisher {
    fn publish(&self, local: &Path, relative: &str) -> Result<(), String> {
        self.uploader
            .put_file(local, &self.bucket, &format!("{}{relative}", self.prefix))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl S3Lake {
    /// Opens the lake at `url` (`s3://bucket/prefix`) with the standard AWS
    /// configuration, and aborts stale multipart uploads under its prefix
    /// (which also proves early that the bucket can be reached).
    pub fn open(url: &str, opts: ParquetOptions) -> Result<S3Lake, SinkError> {
        let name = format!("parquet:{url}");
        let s3 = S3Url::parse(url)
            .ok_or_else(|| SinkError::new(format!("{name}: not an s3://BUCKET/PREFIX URL")))?;
        let client = S3Client::connect(S3Options::default(), Some(&s3.bucket))
            .map_err(|e| SinkError::with_source(format!("{name}: cannot set up S3"), e))?;
        let uploader = S3Uploader::new(client);
        let aborted = uploader
            .abort_stale_uploads(&s3.bucket, &s3.prefix, STALE_UPLOAD_AGE)
            .map_err(|e| SinkError::with_source(format!("{name}: cannot open the lake"), e))?;
        if aborted > 0 {
            tracing::info!(sink = %name, aborted, "aborted unfinished uploads of crashed writers");
        }
        let staging = tempfile::Builder::new()
            .prefix("trailmill-s3-lake-")
            .tempdir()
            .map_err(|e| {
                SinkError::with_source(format!("{name}: cannot create a staging directory"), e)
            })?;
        let publisher = Arc::new(S3Publisher {
            uploader,
            bucket: s3.bucket,
            prefix: s3.prefix,
        });
        let sink = ParquetSink::publishing(name, staging.path(), publisher, opts)?;
        Ok(S3Lake {
            sink,
            _staging: staging,
        })
    }
}

impl Sink for S3Lake {
    fn name(&self) -> String {
        self.sink.name()
    }

    fn write_batch(&mut self, file: &SourceObject, events: &[Event<'_>]) -> Result<(), SinkError> {
        self.sink.write_batch(file, events)
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.sink.commit()
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        self.sink.finish()
    }
}

/// What the lake sinks need beyond their spec: the Iceberg catalog settings
/// (`table` is ignored; the spec names it) and the Parquet tuning.
#[derive(Clone, Debug)]
pub struct LakeSettings {
    /// Catalog, warehouse and properties for `iceberg:` sinks.
    pub iceberg: IcebergOptions,
}

impl Default for LakeSettings {
    fn default() -> Self {
        LakeSettings {
            iceberg: IcebergOptions::new("", "", ""),
        }
    }
}

/// A sink [`open_sink`] opened, and what it kept of an output it resumes.
pub type OpenedSink = Result<(Box<dyn Sink>, Option<Resumed>), SinkError>;

/// Opens the sinks of one run, in order, each as [`open_sink`] does. The
/// run's stores ([`SinkSpec::is_store`]) share the memory bound, so each
/// opens with its share of the buffers; counting them here keeps every
/// command that opens sinks on the same rule.
pub fn open_sinks<'a>(
    specs: &'a [SinkSpec],
    lake: &'a LakeSettings,
    resume: bool,
) -> impl Iterator<Item = (&'a SinkSpec, OpenedSink)> + 'a {
    let stores = specs.iter().filter(|s| s.is_store()).count();
    specs
        .iter()
        .map(move |spec| (spec, open_sink(spec, lake, resume, stores)))
}

/// Opens the sink `spec` names, the lake sinks included; when `resume`, as
/// [`SinkSpec::open_resuming`] does. `stores` is how many stores the run
/// opens ([`SinkSpec::is_store`]): they share the memory bound, so each
/// takes its share of the buffers ([`trailmill_sinks::memory_share`]).
pub fn open_sink(spec: &SinkSpec, lake: &LakeSettings, resume: bool, stores: usize) -> OpenedSink {
    let parquet = lake.iceberg.parquet.clone().shared(stores);
    Ok(match spec {
        SinkSpec::ParquetS3(url) => (Box::new(S3Lake::open(url, parquet)?), None),
        SinkSpec::Iceberg(table) => {
            let mut options = lake.iceberg.clone();
            options.table = table.clone();
            options.parquet = parquet;
            if options.catalog.is_empty() {
                return Err(SinkError::new(format!(
                    "iceberg:{table}: no catalog: give --iceberg-catalog sqlite:PATH, postgres://…, glue or an S3 Tables bucket ARN"
                )));
            }
            (Box::new(IcebergSink::open(&options)?), None)
        }
        SinkSpec::Parquet(dir) => (Box::new(ParquetSink::with_options(dir, parquet)?), None),
        SinkSpec::JsonLines(_) if resume => spec.open_resuming()?,
        other => (other.open_shared(stores)?, None),
    })
}
