//! `trailmill process`: read log files, filter events, deliver them to sinks.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trailmill_aws::{S3Client, S3Source, S3Store};
use trailmill_core::DecodeOptions;
use trailmill_pipeline::VerifyMode;
use trailmill_pipeline::{
    FileError, FileOutcome, LocalSource, Pipeline, ProgressReporter, RunSummary, Source,
};
use trailmill_sinks::SinkSpec;
use trailmill_validate::{LocalMirror, ObjectStore, PublicKeys, ValidateConfig};

use crate::args::{FilterArgs, S3Args, SelectionArgs, Sources, print_s3_counters};

/// Arguments of `trailmill process`.
#[derive(Args, Debug)]
pub struct ProcessArgs {
    /// Files or directories to read (a bucket root, any tree of CloudTrail
    /// files, or single files), or s3://BUCKET[/PREFIX] URLs.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// Where events go: jsonl:- (stdout), jsonl:PATH (.gz/.zst compress), sqlite:PATH. Repeatable.
    #[arg(long = "sink", value_name = "SPEC", default_value = "jsonl:-")]
    pub sinks: Vec<SinkSpec>,
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Most events per sink call (CPL's maxEventsPerEmit).
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
    /// Largest uncompressed size accepted for one file, in MiB (guards against gzip bombs).
    #[arg(long, default_value_t = 8192, value_name = "MIB")]
    pub max_uncompressed_mib: u64,
    /// Stop at the first failed file.
    #[arg(long)]
    pub fail_fast: bool,
    /// Write the names of failed files to this file, one per line.
    #[arg(long, value_name = "FILE")]
    pub failed_list: Option<PathBuf>,
    /// No progress bar and no summary; errors are still reported.
    #[arg(long, short)]
    pub quiet: bool,
    /// Emit only events of log files whose SHA-256 matches a digest whose
    /// signature and chain verified (SOURCE must be one bucket root).
    /// `--verify=warn` emits the others too, with a warning.
    #[arg(long, value_name = "MODE", num_args = 0..=1, default_missing_value = "enforce", value_parser = ["enforce", "warn"])]
    pub verify: Option<String>,
    /// With --verify: the output of `aws cloudtrail list-public-keys` (default SOURCE/keys.json).
    #[arg(long, value_name = "FILE", requires = "verify")]
    pub public_keys: Option<PathBuf>,
    /// With --verify: the bucket name the digests record, which SOURCE mirrors.
    #[arg(long, value_name = "NAME", requires = "verify")]
    pub bucket: Option<String>,
    #[command(flatten)]
    pub s3: S3Args,
}

/// `--verify` settings.
pub struct VerifyConfig {
    mode: VerifyMode,
    public_keys: Option<PathBuf>,
    bucket: Option<String>,
}

/// The plain configuration `process` runs with, built from its arguments.
pub struct ProcessConfig {
    sources: Vec<PathBuf>,
    sinks: Vec<SinkSpec>,
    threads: Option<usize>,
    decode: DecodeOptions,
    selection: trailmill_core::Selection,
    filter: trailmill_core::EventFilter,
    fail_fast: bool,
    failed_list: Option<PathBuf>,
    show_progress: bool,
    show_summary: bool,
    verify: Option<VerifyConfig>,
    s3: S3Args,
}

impl From<ProcessArgs> for ProcessConfig {
    fn from(a: ProcessArgs) -> Self {
        ProcessConfig {
            decode: DecodeOptions {
                max_decompressed_bytes: a.max_uncompressed_mib.saturating_mul(1 << 20),
                batch_size: a.batch_size.max(1),
                ..DecodeOptions::default()
            },
            selection: a.selection.to_selection(),
            filter: a.filters.to_filter(),
            sources: a.sources,
            sinks: a.sinks,
            threads: a.threads,
            fail_fast: a.fail_fast,
            failed_list: a.failed_list,
            show_progress: !a.quiet && std::io::stderr().is_terminal(),
            show_summary: !a.quiet,
            s3: a.s3,
            verify: a.verify.map(|mode| VerifyConfig {
                mode: if mode == "warn" {
                    VerifyMode::Warn
                } else {
                    VerifyMode::Enforce
                },
                public_keys: a.public_keys,
                bucket: a.bucket,
            }),
        }
    }
}

/// Runs `process`; true when every file and sink succeeded.
pub fn run(config: ProcessConfig) -> anyhow::Result<bool> {
    let sources = Sources::of(&config.sources)?;
    let client = match &sources {
        Sources::S3(urls) => Some(config.s3.connect(urls.first().map(|u| u.bucket.as_str()))?),
        Sources::Local(_) => None,
    };
    let mut builder = Pipeline::builder()
        .decode_options(config.decode.clone())
        .selection(config.selection.clone())
        .event_filter(config.filter.clone())
        .fail_fast(config.fail_fast);
    if let Some(n) = config.threads {
        builder = builder.threads(n);
    }
    if let Some(v) = &config.verify {
        let attested = attest(&config, &sources, client.as_ref(), v)?;
        builder = builder.verify(attested, v.mode);
    }
    for spec in &config.sinks {
        let sink = spec
            .open()
            .map_err(|e| anyhow::anyhow!("cannot open sink {spec:?}: {e}"))?;
        builder = builder.boxed_sink(sink);
    }
    let bar = if config.show_progress {
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} files  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let reporter = BarReporter {
        bar: bar.clone(),
        started: Instant::now(),
        events: 0,
        bytes: 0,
    };
    let errors_bar = bar.clone();
    let failed_names = failed.clone();
    let pipeline = builder
        .progress(reporter)
        .error_handler(move |e: &FileError| {
            errors_bar.suspend(|| eprintln!("error: {e}"));
            failed_names
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.name.clone());
        })
        .build();
    let source: Box<dyn Source> = match (&sources, &client) {
        (Sources::S3(urls), Some(client)) => Box::new(S3Source::new(client.clone(), urls.clone())),
        (Sources::Local(paths), _) => Box::new(LocalSource::new(paths.iter().cloned())),
        (Sources::S3(_), None) => unreachable!("an S3 client is made for S3 sources"),
    };
    let summary = pipeline.run(source.as_ref());
    bar.finish_and_clear();
    if let Some(path) = &config.failed_list {
        let names = failed.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = names.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("cannot write the failed list {}: {e}", path.display()))?;
    }
    for (name, e) in &summary.sink_errors {
        eprintln!("error: sink {name}: {e}");
    }
    if config.show_summary {
        print_summary(&summary);
        if let Some(client) = &client {
            print_s3_counters(client);
        }
    }
    Ok(summary.is_success())
}

/// Validates the digest chains of the source (a mirror's bucket root, or one
/// `s3://` URL) for the selected time range and returns the attested log
/// files, reporting what did not verify.
fn attest(
    config: &ProcessConfig,
    sources: &Sources,
    client: Option<&S3Client>,
    v: &VerifyConfig,
) -> anyhow::Result<HashMap<String, [u8; 32]>> {
    let time = |secs: i64| trailmill_validate::Timestamp::from_second(secs);
    let mut cfg = ValidateConfig::all(time(config.selection.start.unwrap_or(0))?);
    cfg.end = config.selection.end.map(time).transpose()?;
    cfg.bucket = v.bucket.clone();
    let (store, keys_path): (Box<dyn ObjectStore>, PathBuf) = match (sources, client) {
        (Sources::S3(urls), Some(client)) => {
            let [url] = urls.as_slice() else {
                anyhow::bail!("--verify needs exactly one SOURCE");
            };
            cfg.bucket.get_or_insert_with(|| url.bucket.clone());
            cfg.s3_prefix =
                Some(url.prefix.trim_end_matches('/').to_owned()).filter(|p| !p.is_empty());
            let keys = v.public_keys.clone().ok_or_else(|| {
                anyhow::anyhow!("--verify with an s3:// source needs --public-keys (trailmill keys fetch saves them)")
            })?;
            (Box::new(S3Store::new(client.clone())), keys)
        }
        _ => {
            let [root] = config.sources.as_slice() else {
                anyhow::bail!("--verify needs exactly one SOURCE: the bucket root of a mirror");
            };
            if !root.is_dir() {
                anyhow::bail!(
                    "--verify needs SOURCE to be a bucket root directory: {}",
                    root.display()
                );
            }
            let mut store = LocalMirror::new(root)?;
            if let Some(b) = &v.bucket {
                store = store.with_bucket(b.clone());
            }
            let keys = v
                .public_keys
                .clone()
                .unwrap_or_else(|| root.join("keys.json"));
            (Box::new(store), keys)
        }
    };
    let keys = PublicKeys::load(&keys_path)?;
    let attested = trailmill_validate::attest(store.as_ref(), &cfg, &keys)?;
    for problem in &attested.problems {
        let why = problem
            .problem()
            .map_or_else(|| "cannot be validated".to_owned(), |p| p.describe());
        eprintln!(
            "verify: {} {}: {why}",
            problem.subject.as_str(),
            problem.uri()
        );
    }
    tracing::info!(
        verified = attested.verified.len(),
        problems = attested.problems.len(),
        "digest validation done"
    );
    Ok(attested.verified)
}

/// Feeds the progress bar: files, events/s and MB/s.
struct BarReporter {
    bar: ProgressBar,
    started: Instant,
    events: u64,
    bytes: u64,
}

impl ProgressReporter for BarReporter {
    fn listed(&mut self, total_listed: u64) {
        self.bar.set_length(total_listed);
    }

    fn finished(&mut self, outcome: &FileOutcome) {
        self.events += outcome.events_in;
        self.bytes += outcome.bytes_uncompressed;
        self.bar.inc(1);
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "{:.0} files/s  {:.0} events/s  {:.0} MB/s",
            self.bar.position() as f64 / secs,
            self.events as f64 / secs,
            self.bytes as f64 / secs / 1e6
        ));
    }
}

fn print_summary(s: &RunSummary) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let mut err = std::io::stderr().lock();
    let l = &s.listing;
    let _ = writeln!(
        err,
        "trailmill: {} files ok, {} failed{}; skipped {} digests, {} insights, {} unselected, {} other{}",
        s.files_ok,
        s.files_failed,
        if s.stopped_early {
            " (stopped early: --fail-fast)"
        } else {
            ""
        },
        l.skipped_digests,
        l.skipped_insights,
        l.skipped_unselected + l.skipped_by_filter,
        l.skipped_other,
        if l.skipped_other_shards > 0 {
            format!(", {} in other shards", l.skipped_other_shards)
        } else {
            String::new()
        },
    );
    let _ = writeln!(
        err,
        "trailmill: {} events in, {} out; {:.1} MB read, {:.1} MB uncompressed in {:.2} s ({:.0} MB/s, {:.0} events/s)",
        s.events_in,
        s.events_out,
        s.bytes_read as f64 / 1e6,
        s.bytes_uncompressed as f64 / 1e6,
        secs,
        s.bytes_uncompressed as f64 / secs / 1e6,
        s.events_in as f64 / secs,
    );
    for (name, stats) in &s.sinks {
        let _ = writeln!(
            err,
            "trailmill: sink {name}: {} written, {} duplicates collapsed",
            stats.events_written, stats.duplicates
        );
    }
}
