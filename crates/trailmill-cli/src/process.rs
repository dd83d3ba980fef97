//! `trailmill process`: read log files, filter events, deliver them to sinks.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trailmill_aws::{S3Client, S3Source, S3Store, S3Url};
use trailmill_core::DecodeOptions;
use trailmill_pipeline::{CheckpointPolicy, VerifyMode};
use trailmill_pipeline::{
    FileError, FileOutcome, LocalSource, Pipeline, ProgressReporter, RunSummary, Sink, Source,
};
use trailmill_sinks::{Resumed, SinkSpec};
use trailmill_state::{Binding, Prior, RunRecord, StateError, StateStore};
use trailmill_validate::{LocalMirror, ObjectStore, PublicKeys, ValidateConfig};

use crate::args::{FilterArgs, S3Args, SelectionArgs, SinkArgs, Sources, print_s3_counters};

/// Arguments of `trailmill process`.
#[derive(Args, Debug)]
pub struct ProcessArgs {
    /// Files or directories to read (a bucket root, any tree of CloudTrail
    /// files, or single files), or s3://BUCKET[/PREFIX] URLs.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    #[command(flatten)]
    pub sinks: SinkArgs,
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
    /// Write the names of failed files to this file, one per line. Without
    /// a state, a sink that fails at the end fails every file but names
    /// none (the run does not keep them); with one, each is named.
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
    #[command(flatten)]
    pub resume: ResumeArgs,
}

/// Checkpoints and resuming.
#[derive(Args, Debug)]
#[command(next_help_heading = "Checkpoints and resume")]
pub struct ResumeArgs {
    /// The state file that records which objects are done, so that a re-run
    /// skips them. Default: beside the first sink that is a file (SQLite
    /// `PATH.state`, JSON Lines `PATH.state`); none for stdout only.
    #[arg(long, value_name = "PATH", conflicts_with = "no_state")]
    pub state: Option<PathBuf>,
    /// Keep no state: process every object, as if for the first time.
    #[arg(long)]
    pub no_state: bool,
    /// Forget what the state recorded and process every object again; JSON
    /// Lines files start over.
    #[arg(long, conflicts_with = "no_state")]
    pub restart: bool,
    /// Seconds between checkpoints (each commits every sink, then records the
    /// objects finished before it as done).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub checkpoint_interval: Duration,
    /// Objects between checkpoints.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_files: u64,
}

/// Parses a number of seconds, fractions allowed.
fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("{s:?} is not a number of seconds"))
}

/// Whether to keep a state, and where.
enum StateChoice {
    /// No `--state`: beside the first file sink, if any.
    Default,
    /// `--state PATH`.
    At(PathBuf),
    /// `--no-state`.
    Off,
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
    lake: trailmill_lake::s3_parquet::LakeSettings,
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
    state: StateChoice,
    restart: bool,
    checkpoints: CheckpointPolicy,
    /// The flag that stops the run; `None` installs the SIGINT/SIGTERM
    /// handlers that raise one.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
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
            lake: a.sinks.lake_settings(),
            sinks: a.sinks.sinks,
            threads: a.threads,
            fail_fast: a.fail_fast,
            failed_list: a.failed_list,
            show_progress: !a.quiet && std::io::stderr().is_terminal(),
            show_summary: !a.quiet,
            s3: a.s3,
            state: match (a.resume.state, a.resume.no_state) {
                (Some(path), _) => StateChoice::At(path),
                (None, true) => StateChoice::Off,
                (None, false) => StateChoice::Default,
            },
            restart: a.resume.restart,
            checkpoints: CheckpointPolicy {
                max_files: usize::try_from(a.resume.checkpoint_files).unwrap_or(usize::MAX),
                interval: a.resume.checkpoint_interval,
                when_idle: false,
            },
            stop: None,
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

/// Runs `process`; its outcome says whether every file and sink succeeded.
pub fn run(config: ProcessConfig) -> anyhow::Result<crate::ProcessOutcome> {
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
    let state = open_state(&config)?;
    let mut sources = sources;
    if let Some(state) = &state {
        // Objects are known to the state by name: absolute paths name them
        // the same from any directory (S3 objects are named by URL already).
        if let Sources::Local(paths) = &mut sources {
            *paths = paths
                .iter()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
                .collect();
        }
        builder = builder
            .source_filter(state.skip_done()?)
            .on_checkpoint(state.recorder()?)
            .checkpoint_policy(config.checkpoints.clone());
    }
    let resume = state.as_ref().is_some_and(StateStore::is_resume);
    let opened = check_outputs(&config, state.as_ref()).and_then(|()| open_sinks(&config, resume));
    let OpenedSinks {
        sinks,
        resumed: resumed_sinks,
    } = match opened {
        Ok(opened) => opened,
        Err(e) => {
            // The run ends before it began: record that it ended, so the
            // next run does not take it for an interrupted one.
            if let Some(state) = state {
                let _ = state.finish_run(false);
            }
            return Err(e);
        }
    };
    for sink in sinks {
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
        .stop_flag(match &config.stop {
            Some(stop) => stop.clone(),
            None => crate::signals::stop_flag()?,
        })
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
    let mut state_ok = true;
    let state_report = match state {
        None => None,
        Some(state) => {
            let path = state.path().to_owned();
            let prior = state.prior().clone();
            match state.finish_run(summary.interrupted) {
                Ok(record) => Some(StateReport {
                    path,
                    prior,
                    record,
                    resumed_sinks,
                }),
                Err(e) => {
                    eprintln!("error: state {e}");
                    state_ok = false;
                    None
                }
            }
        }
    };
    if config.show_summary {
        // Sinks are named by their spec, as written.
        let at_least_once: Vec<String> = config
            .sinks
            .iter()
            .filter(|s| !s.deduplicates())
            .map(ToString::to_string)
            .collect();
        print_summary(&summary, &at_least_once, state_report.as_ref());
        if let Some(client) = &client {
            print_s3_counters(client);
        }
    }
    let ok = summary.is_success() && !summary.interrupted && state_ok;
    Ok(crate::ProcessOutcome { summary, ok })
}

/// Refuses to resume into an output that was deleted since: skipping the
/// done objects would leave the new, empty output without their events.
fn check_outputs(config: &ProcessConfig, state: Option<&StateStore>) -> anyhow::Result<()> {
    let Some(state) = state.filter(|s| s.prior().objects_done > 0) else {
        return Ok(());
    };
    for spec in &config.sinks {
        if let Some(path) = spec.local_path().filter(|p| !p.exists()) {
            anyhow::bail!(
                "cannot resume: {} records {} objects done, but {} does not exist any more\n  (--restart processes everything again)",
                state.path().display(),
                state.prior().objects_done,
                path.display()
            );
        }
    }
    Ok(())
}

/// A sink's name, and what it kept of the file it resumes.
type ResumedSink = (String, Resumed);

/// The sinks of a run, and those that resumed a file.
struct OpenedSinks {
    sinks: Vec<Box<dyn Sink>>,
    resumed: Vec<ResumedSink>,
}

/// Opens every sink; when `resume`, outputs that cannot deduplicate are
/// appended to instead of started over.
fn open_sinks(config: &ProcessConfig, resume: bool) -> anyhow::Result<OpenedSinks> {
    let mut sinks = Vec::new();
    let mut resumed_sinks = Vec::new();
    for (spec, opened) in trailmill_lake::open_sinks(&config.sinks, &config.lake, resume) {
        let (sink, resumed) =
            opened.map_err(|e| anyhow::anyhow!("cannot open sink {spec}: {e}"))?;
        if let Some(r) = resumed {
            resumed_sinks.push((sink.name(), r));
        }
        sinks.push(sink);
    }
    Ok(OpenedSinks {
        sinks,
        resumed: resumed_sinks,
    })
}

/// Opens the state the configuration asks for, if any.
fn open_state(config: &ProcessConfig) -> anyhow::Result<Option<StateStore>> {
    let path = match &config.state {
        StateChoice::Off => return Ok(None),
        StateChoice::At(path) => path.clone(),
        StateChoice::Default => {
            let Some(path) = config.sinks.iter().find_map(SinkSpec::default_state_path) else {
                return Ok(None);
            };
            // A default state may live inside an output directory (a Parquet
            // lake) that the sink has not created yet.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
            path
        }
    };
    let absolute =
        |p: &PathBuf| std::path::absolute(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()));
    let state_file = absolute(&path)?;
    for spec in &config.sinks {
        if let Some(out) = spec.local_path()
            && absolute(&out.to_path_buf())? == state_file
        {
            anyhow::bail!(
                "--state {} is the output of --sink {spec}: the state needs a file of its own",
                path.display()
            );
        }
    }
    let sinks = config
        .sinks
        .iter()
        .map(|s| {
            s.with_absolute_path()
                .map(|s| s.to_string())
                .map_err(|e| anyhow::anyhow!("{s}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let binding = Binding {
        sources: config
            .sources
            .iter()
            .map(|p| binding_source(p))
            .collect::<anyhow::Result<_>>()?,
        sinks: sinks.clone(),
        // The filter, and the selection where it applies to events (files
        // without a CloudTrail key), decide which of an object's events the
        // sinks received: objects done under others must not be skipped.
        event_filter: config.filter.binding_text(&config.selection),
        // Before the binding text was versioned, trailmill bound states to
        // `format!("{:?}", filter)` and made `s3://` sources into paths below
        // the working directory. Such a state is accepted once (from the
        // directory it was made in, where the old text matches) and rebound.
        legacy: Some(Box::new(Binding {
            sources: config
                .sources
                .iter()
                .map(|p| absolute(p).map(|p| p.display().to_string()))
                .collect::<anyhow::Result<_>>()?,
            sinks,
            event_filter: legacy_filter_text(&config.filter),
            legacy: None,
        })),
    };
    match StateStore::open(&path, &binding, config.restart) {
        Ok(state) => Ok(Some(state)),
        Err(e @ StateError::Bound { .. }) => Err(anyhow::anyhow!(
            "cannot resume: {e}\n  (--restart resets the state for this run; --state PATH uses another state file)"
        )),
        Err(e) => Err(anyhow::anyhow!("cannot open the state: {e}")),
    }
}
/// How the state names a source: an `s3://` URL as the URL (normalised:
/// `s3://b/p` and `s3://b/p/` are one source), a local path made absolute, so
/// that a run from any directory names it the same way.
fn binding_source(p: &Path) -> anyhow::Result<String> {
    if let Some(text) = p.to_str().filter(|t| S3Url::is_s3_url(t)) {
        return S3Url::parse(text)
            .map(|u| u.to_string())
            .ok_or_else(|| anyhow::anyhow!("{text:?} is not an s3://BUCKET[/PREFIX] URL"));
    }
    std::path::absolute(p)
        .map(|p| p.display().to_string())
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

/// The event filter's text in the state bindings of trailmill before the
/// versioned binding text: `format!("{:?}", filter)` of the filter type of
/// then, reproduced field for field (times were whole seconds, as text).
fn legacy_filter_text(f: &trailmill_core::EventFilter) -> String {
    /// The filter type of then; only its `Debug` text is used.
    #[derive(Debug)]
    #[allow(dead_code)] // read through `Debug` only
    struct EventFilter {
        event_sources: Vec<String>,
        event_names: Vec<String>,
        accounts: Vec<String>,
        regions: Vec<String>,
        user_arns: Vec<String>,
        error_codes: Vec<String>,
        errors_only: bool,
        read_only: Option<bool>,
        event_categories: Vec<String>,
        event_time_start: Option<String>,
        event_time_end: Option<String>,
    }
    let text = |t: trailmill_core::time::Timestamp| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    format!(
        "{:?}",
        EventFilter {
            event_sources: f.event_sources.clone(),
            event_names: f.event_names.clone(),
            accounts: f.accounts.clone(),
            regions: f.regions.clone(),
            user_arns: f.user_arns.clone(),
            error_codes: f.error_codes.clone(),
            errors_only: f.errors_only,
            read_only: f.read_only,
            event_categories: f.event_categories.clone(),
            event_time_start: f.event_time_start.map(text),
            event_time_end: f.event_time_end.map(text),
        }
    )
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

/// What the state saw and recorded, for the summary.
struct StateReport {
    path: PathBuf,
    prior: Prior,
    record: RunRecord,
    resumed_sinks: Vec<ResumedSink>,
}

/// The summary's words for files named like CloudTrail files whose names do
/// not parse (each was warned about as it was listed); empty when there are none.
pub(crate) fn misnamed_note(misnamed: u64) -> String {
    if misnamed == 0 {
        String::new()
    } else {
        format!(
            "; {misnamed} file(s) named like CloudTrail files but not in CloudTrail's key grammar (see the warnings)"
        )
    }
}

/// The summary's words for records emitted without any core field (each was
/// warned about with its file and index); `None` when there are none.
pub(crate) fn odd_records_note(records: u64) -> Option<String> {
    (records > 0).then(|| {
        format!("{records} record(s) have none of eventVersion, eventTime and eventName; they were emitted (see the warnings)")
    })
}

fn print_summary(s: &RunSummary, at_least_once: &[String], state: Option<&StateReport>) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let mut err = std::io::stderr().lock();
    let l = &s.listing;
    let _ = writeln!(
        err,
        "trailmill: {} files ok, {} failed{}; skipped {} digests, {} insights, {} unselected, {} other{}{}{}",
        s.files_ok,
        s.files_failed,
        if s.stopped_early {
            " (stopped early: --fail-fast)"
        } else if s.interrupted {
            " (interrupted by a signal: the files in flight were finished, the rest left for the next run)"
        } else {
            ""
        },
        l.skipped_digests,
        l.skipped_insights,
        l.skipped_unselected,
        l.skipped_other,
        if l.skipped_other_shards > 0 {
            format!(", {} in other shards", l.skipped_other_shards)
        } else {
            String::new()
        },
        match state {
            Some(st) => format!(", {} already done", st.record.skipped_done),
            None => String::new(),
        },
        misnamed_note(l.misnamed),
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
    if let Some(note) = odd_records_note(s.records_without_core_fields) {
        let _ = writeln!(err, "trailmill: {note}");
    }
    for (name, stats) in &s.sinks {
        let _ = writeln!(
            err,
            "trailmill: sink {name}: {} written, {} duplicates collapsed{}",
            stats.events_written,
            stats.duplicates,
            if at_least_once.contains(name) {
                " (at-least-once, so a redone object's events are written again)"
            } else {
                ""
            }
        );
    }
    let Some(st) = state else { return };
    let (p, r) = (&st.prior, &st.record);
    let _ = writeln!(
        err,
        "trailmill: state {}: {} objects done and {} failed in {} checkpoints this run; {} already done were skipped, {} changed since and were redone, {} failed before and were retried{}",
        st.path.display(),
        r.objects_done,
        r.objects_failed,
        r.checkpoints,
        r.skipped_done,
        r.redone_changed,
        r.retried_failed,
        if p.last_run_interrupted {
            "; the previous run was interrupted, and the objects it had in flight were redone"
        } else {
            ""
        },
    );
    for (name, resumed) in &st.resumed_sinks {
        // The file holds one copy of each done object's events, plus the
        // events written again for objects that were redone (in flight at an
        // interruption, failed, or changed), plus those of objects not done
        // yet. The excess over the done objects' events is known exactly.
        let written = s
            .sinks
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, stats)| stats.events_written);
        let extra = (resumed.lines_kept + written).saturating_sub(r.total_events_done);
        let _ = writeln!(
            err,
            "trailmill: sink {name}: appended after {} lines kept{}; it now holds {extra} lines more than one copy of each done object's events (duplicates from redone objects: at-least-once)",
            resumed.lines_kept,
            if resumed.bytes_dropped > 0 {
                format!(
                    " (a torn tail of {} bytes was cut off)",
                    resumed.bytes_dropped
                )
            } else {
                String::new()
            },
        );
    }
}
