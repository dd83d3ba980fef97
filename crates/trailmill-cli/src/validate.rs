//! `trailmill validate`: prove with CloudTrail's digest files that no log file
//! was changed, deleted or forged, like `aws cloudtrail validate-logs`: on a
//! local mirror (offline), or on S3 (`s3://BUCKET[/PREFIX]`, digest
//! signatures from object metadata).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trailmill_aws::{S3Store, S3Url};
use trailmill_validate::{
    EXIT_ERROR, Event, HtmlReport, OutputFormat, ReportMeta, ValidateArgs as Request, run_validate,
    run_validate_in,
};

use crate::args::{S3Args, print_s3_counters};
use crate::follow::FollowOptions;

/// Arguments of `trailmill validate`.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["trail_arn", "all"]))]
pub struct ValidateArgs {
    /// The bucket root of a local mirror (object K is the file SOURCE/K; a digest's
    /// signature is the hex text in the sidecar K.sig when present), or
    /// s3://BUCKET[/PREFIX] (the prefix is the trail's, as --s3-prefix).
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,
    /// The trail to validate.
    #[arg(long, value_name = "ARN")]
    pub trail_arn: Option<String>,
    /// Validate every organization, account, region and trail found under the prefix.
    #[arg(long)]
    pub all: bool,
    /// Start of the range: RFC 3339, a date, or Unix seconds.
    #[arg(long, value_name = "T")]
    pub start_time: String,
    /// End of the range (default: now).
    #[arg(long, value_name = "T")]
    pub end_time: Option<String>,
    /// The bucket name the digests record, which SOURCE mirrors.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The trail's key prefix.
    #[arg(long, value_name = "P")]
    pub s3_prefix: Option<String>,
    /// The organization of an organization trail.
    #[arg(long, value_name = "o-ID")]
    pub org_id: Option<String>,
    /// The member account to validate, for organization trails.
    #[arg(long, value_name = "ID")]
    pub account_id: Option<String>,
    /// The region whose digests are validated (default: the ARN's).
    #[arg(long)]
    pub region: Option<String>,
    /// The output of `aws cloudtrail list-public-keys` (default: SOURCE/keys.json,
    /// else fetched online with CloudTrail ListPublicKeys).
    #[arg(long, value_name = "FILE")]
    pub public_keys: Option<PathBuf>,
    /// Also print every valid file.
    #[arg(long)]
    pub verbose: bool,
    /// aws-cli (the AWS CLI's text, byte for byte), json, or human.
    #[arg(long, default_value = "human")]
    pub format: OutputFormat,
    /// Report a chain whose newest digest ends more than an hour before T (a deleted newest digest).
    #[arg(long, value_name = "T")]
    pub expect_until: Option<String>,
    /// Also write an auditor's report to FILE (HTML, self-contained): the
    /// summary, a timeline per chain, day by day and hour by hour, coloured by
    /// status, and every finding. Written whether the run is valid or not.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Keep validating as CloudTrail delivers: catch up from --start-time (or
    /// from where --state left off), then poll for new digests and log files,
    /// and alert once per finding. Runs until SIGTERM or SIGINT.
    #[arg(long, requires = "state", conflicts_with_all = ["end_time", "expect_until"])]
    pub follow: bool,
    /// With --follow: the state file (SQLite) that lets a restarted monitor
    /// resume without re-validating, missing or repeating anything.
    #[arg(long, value_name = "FILE", requires = "follow")]
    pub state: Option<PathBuf>,
    /// With --follow: seconds between polls.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, requires = "follow")]
    pub poll_interval: f64,
    /// With --follow: where alerts go, one JSON object per line: a file,
    /// sns:TOPIC_ARN (one message per alert), or stdout by default. A human
    /// line goes to stderr as well.
    #[arg(long, value_name = "FILE|sns:ARN", requires = "follow")]
    pub alerts: Option<PathBuf>,
    /// With --follow: seconds after its delivery time before a log file that no
    /// digest lists is reported (CloudTrail sometimes delivers late).
    #[arg(long, value_name = "SECS", default_value_t = 7200, requires = "follow")]
    pub unattested_grace: i64,
    /// With --follow: seconds of grace, beyond the hour after a chain's newest
    /// digest ends, before the chain is reported overdue.
    #[arg(long, value_name = "SECS", default_value_t = 1800, requires = "follow")]
    pub overdue_grace: i64,
    #[command(flatten)]
    pub s3: S3Args,
}

/// Fetches the keys online (CloudTrail `ListPublicKeys`) when neither
/// `--public-keys` nor `SOURCE/keys.json` gives them, for the region being
/// validated and a day either side of the range; returns the file they were
/// saved to, which lives as long as the returned guard.
fn online_keys(a: &ValidateArgs) -> anyhow::Result<Option<(PathBuf, tempfile::TempDir)>> {
    if a.public_keys.is_some() || a.source.join("keys.json").is_file() {
        return Ok(None);
    }
    let region = match (&a.region, &a.trail_arn) {
        (Some(r), _) => r.clone(),
        (None, Some(arn)) => arn.split(':').nth(3).unwrap_or_default().to_owned(),
        (None, None) => anyhow::bail!("online keys need --region (or give --public-keys)"),
    };
    let start = trailmill_validate::parse_time(&a.start_time)?.as_second() - 86_400;
    let end = match &a.end_time {
        Some(t) => trailmill_validate::parse_time(t)?.as_second(),
        None => jiff::Timestamp::now().as_second(),
    } + 86_400;
    let keys = trailmill_aws::fetch_public_keys(&region, start, end)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keys.json");
    std::fs::write(&path, serde_json::to_vec(&keys)?)?;
    Ok(Some((path, dir)))
}

/// Runs `validate`; the exit code is the AWS CLI's: 0 all valid, 1 anything invalid, 255 on errors.
pub fn run(mut a: ValidateArgs) -> u8 {
    let url = match a.source.to_str() {
        Some(text) if S3Url::is_s3_url(text) => match S3Url::parse(text) {
            Some(u) => Some(u),
            None => {
                eprintln!("error: {text:?} is not an s3://BUCKET[/PREFIX] URL");
                return EXIT_ERROR as u8;
            }
        },
        _ => None,
    };
    if let Some(url) = &url {
        // The URL names the bucket and the trail's prefix unless the flags do.
        a.bucket.get_or_insert_with(|| url.bucket.clone());
        if a.s3_prefix.is_none() && !url.prefix.is_empty() {
            a.s3_prefix = Some(url.prefix.trim_end_matches('/').to_owned());
        }
    }
    let store = match &url {
        Some(url) => match a.s3.connect(Some(&url.bucket)) {
            Ok(client) => Some(S3Store::new(client)),
            Err(e) => {
                eprintln!("error: {e:#}");
                return EXIT_ERROR as u8;
            }
        },
        None => None,
    };
    let _keys_dir = match online_keys(&a) {
        Ok(Some((path, dir))) => {
            a.public_keys = Some(path);
            Some(dir)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("error: cannot fetch CloudTrail public keys: {e:#}");
            return EXIT_ERROR as u8;
        }
    };
    let human = a.format == OutputFormat::Human;
    let report_path = a.report.clone();
    let what = report_what(&a, url.is_some());
    let follow = a.follow.then(|| FollowOptions {
        state: a.state.clone().unwrap_or_default(),
        poll_interval: Duration::from_secs_f64(a.poll_interval.max(0.01)),
        alerts: a.alerts.clone(),
        unattested_grace: a.unattested_grace,
        overdue_grace: a.overdue_grace,
        report: report_path.clone(),
        what: what.clone(),
    });
    let request = Request {
        source: a.source,
        trail_arn: a.trail_arn,
        all: a.all,
        start_time: a.start_time,
        end_time: a.end_time,
        bucket: a.bucket,
        s3_prefix: a.s3_prefix,
        org_id: a.org_id,
        account_id: a.account_id,
        region: a.region,
        public_keys: a.public_keys,
        verbose: a.verbose,
        format: a.format,
        expect_until: a.expect_until,
        color: human && std::io::stdout().is_terminal(),
    };
    if let Some(opts) = follow {
        return match &store {
            Some(store) => crate::follow::run(store, &request, &opts),
            None => match request.resolve() {
                Ok((mirror, _, _)) => crate::follow::run(&mirror, &request, &opts),
                Err(e) => {
                    eprintln!("error: {e}");
                    EXIT_ERROR as u8
                }
            },
        };
    }
    let bar = if human && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} digests {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut html = report_path.as_ref().map(|_| HtmlReport::new());
    let mut progress = |event: &Event| {
        if let Some(html) = html.as_mut() {
            html.record(event);
        }
        match event {
            Event::Planned { digests, .. } => bar.set_length(*digests as u64),
            Event::Verdict(v) if v.subject.is_digest() => bar.inc(1),
            _ => {}
        }
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    let result = match &store {
        Some(store) => run_validate_in(store, &request, &mut stdout, &mut stderr, &mut progress),
        None => run_validate(&request, &mut stdout, &mut stderr, &mut progress),
    };
    bar.finish_and_clear();
    if let Some(store) = &store
        && human
    {
        print_s3_counters(store.client());
    }
    let _ = stdout.flush();
    match result {
        Ok(report) => {
            if let (Some(path), Some(html)) = (&report_path, &html)
                && let Err(e) = write_report(html, &request, what, path)
            {
                let _ = writeln!(
                    stderr,
                    "error: cannot write the report {}: {e:#}",
                    path.display()
                );
                return EXIT_ERROR as u8;
            }
            report.exit_code() as u8
        }
        Err(e) => {
            let _ = writeln!(stderr, "error: {e}");
            EXIT_ERROR as u8
        }
    }
}

/// What the report says was validated: the trail ARN, or `--all` and the
/// place, with the flags that narrow either down.
pub(crate) fn report_what(a: &ValidateArgs, on_s3: bool) -> String {
    let mut what = match &a.trail_arn {
        Some(arn) => arn.clone(),
        None => {
            let bucket = a.bucket.as_deref().unwrap_or("BUCKET");
            let prefix = a
                .s3_prefix
                .as_deref()
                .map(|p| format!("/{p}"))
                .unwrap_or_default();
            let mut w = format!("--all under s3://{bucket}{prefix}");
            if !on_s3 {
                w.push_str(&format!(" (mirror {})", a.source.display()));
            }
            w
        }
    };
    for (flag, value) in [
        ("--org-id", &a.org_id),
        ("--account-id", &a.account_id),
        ("--region", &a.region),
    ] {
        if let Some(v) = value {
            what.push_str(&format!(" {flag} {v}"));
        }
    }
    what
}

/// The report's summary: `what`, the range and the keys of the run.
pub(crate) fn report_meta(
    what: String,
    cfg: &trailmill_validate::ValidateConfig,
    keys: &trailmill_validate::PublicKeys,
) -> ReportMeta {
    let mut key_fingerprints: Vec<String> = keys.iter().map(|k| k.fingerprint.clone()).collect();
    key_fingerprints.sort();
    ReportMeta {
        what,
        start: cfg.start,
        end: cfg.end_or_now(),
        key_fingerprints,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        generated: jiff::Timestamp::now(),
        follow: false,
    }
}

/// Writes `--report`. The range and keys come from the request as the run
/// resolved them: `config()` is the one place keys are loaded, and it
/// succeeded for the run, so it succeeds again.
fn write_report(
    html: &HtmlReport,
    request: &Request,
    what: String,
    path: &Path,
) -> anyhow::Result<()> {
    let (cfg, keys) = request.config()?;
    html.write(&report_meta(what, &cfg, &keys), path)?;
    Ok(())
}
