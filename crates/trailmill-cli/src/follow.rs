//! `trailmill validate --follow`: the integrity monitor's loop around
//! [`trailmill_validate::Follower`]: poll, deliver the alerts, mark them
//! delivered, rewrite the report, wait, until SIGTERM or SIGINT.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use trailmill_validate::{
    Alert, FollowConfig, Follower, HtmlReport, ObjectStore, ReportMeta, Timestamp,
    ValidateArgs as Request,
};

/// What the monitor needs besides the one-shot arguments.
pub struct FollowOptions {
    /// `--state`.
    pub state: PathBuf,
    /// `--poll-interval`.
    pub poll_interval: Duration,
    /// `--alerts`: a file, `sns:TOPIC_ARN`, or stdout when `None`.
    pub alerts: Option<PathBuf>,
    /// `--unattested-grace`, seconds.
    pub unattested_grace: i64,
    /// `--overdue-grace`, seconds.
    pub overdue_grace: i64,
    /// `--report`.
    pub report: Option<PathBuf>,
    /// What the report says is validated.
    pub what: String,
}

/// Where alerts go. An alerts file is read back at start so that alerts a
/// crash left undelivered in the state, but which reached the file, are
/// not written twice. SNS cannot be read back: after a crash an alert may
/// be published again, with the same `id` attribute (and, on a FIFO topic,
/// the same deduplication ID, so that SNS drops it).
enum AlertOut {
    Stdout,
    Sns(trailmill_aws::SnsPublisher),
    File {
        file: File,
        path: PathBuf,
        written: HashSet<String>,
    },
}

impl AlertOut {
    fn open(path: Option<&PathBuf>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(AlertOut::Stdout);
        };
        if let Some(arn) = path.to_str().and_then(|p| p.strip_prefix("sns:")) {
            return Ok(AlertOut::Sns(trailmill_aws::SnsPublisher::connect(arn)?));
        }
        let mut written = HashSet::new();
        if let Ok(f) = File::open(path) {
            for line in BufReader::new(f).lines() {
                let line = line.with_context(|| format!("cannot read {}", path.display()))?;
                if let Ok(a) = serde_json::from_str::<Alert>(&line) {
                    written.insert(a.id);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the alerts file {}", path.display()))?;
        Ok(AlertOut::File {
            file,
            path: path.clone(),
            written,
        })
    }

    /// Writes the alerts durably (an alerts file is synced), then a human
    /// line each to stderr.
    fn deliver(&mut self, alerts: &[Alert]) -> anyhow::Result<()> {
        match self {
            AlertOut::Stdout => {
                let mut out = std::io::stdout().lock();
                for a in alerts {
                    writeln!(out, "{}", a.json_line())?;
                }
                out.flush()?;
            }
            AlertOut::Sns(topic) => {
                for a in alerts {
                    let subject = format!(
                        "trailmill: {} in {}/{}",
                        a.kind.as_str(),
                        a.account,
                        a.region
                    );
                    let message = a.json_line();
                    topic.publish(&trailmill_aws::SnsMessage {
                        message: &message,
                        subject: &subject,
                        attributes: &[("kind", a.kind.as_str()), ("id", &a.id)],
                        deduplication_id: Some(&a.id),
                    })?;
                }
            }
            AlertOut::File {
                file,
                path,
                written,
            } => {
                let fresh: Vec<&Alert> =
                    alerts.iter().filter(|a| !written.contains(&a.id)).collect();
                let mut text = String::new();
                for a in &fresh {
                    text.push_str(&a.json_line());
                    text.push('\n');
                }
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_data())
                    .with_context(|| format!("cannot write alerts to {}", path.display()))?;
                // Only what reached the disk counts as written: a failed
                // write is tried again.
                written.extend(fresh.into_iter().map(|a| a.id.clone()));
            }
        }
        let mut err = std::io::stderr().lock();
        for a in alerts {
            let _ = writeln!(err, "{}", a.human_line());
        }
        Ok(())
    }
}

/// Runs the monitor until a signal; returns the exit code (0 after a
/// graceful stop, 255 when it cannot start).
pub fn run(store: &dyn ObjectStore, request: &Request, opts: &FollowOptions) -> u8 {
    match follow(store, request, opts) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            trailmill_validate::EXIT_ERROR as u8
        }
    }
}

fn follow(store: &dyn ObjectStore, request: &Request, opts: &FollowOptions) -> anyhow::Result<()> {
    let stop = crate::signals::stop_flag()?;
    let (validate, keys) = request.config()?;
    let meta_base = crate::validate::report_meta(opts.what.clone(), &validate, &keys);
    let mut cfg = FollowConfig::new(validate);
    cfg.unattested_grace_secs = opts.unattested_grace;
    cfg.overdue_grace_secs = opts.overdue_grace;
    let mut follower = Follower::open(store, &keys, cfg, &opts.state)?;
    // The report's data is committed with each poll, so that a restarted
    // monitor's report still covers everything validated before.
    let mut committed: Option<Vec<u8>> = follower.kept().map(<[u8]>::to_vec);
    let restore = |bytes: &Option<Vec<u8>>| -> HtmlReport {
        bytes
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    };
    let mut report: Option<HtmlReport> = opts.report.as_ref().map(|_| restore(&committed));
    let mut out = AlertOut::open(opts.alerts.as_ref())?;
    deliver_pending(&mut follower, &mut out)?;
    tracing::info!(state = %opts.state.display(), chains = follower.chains(), "monitor started");
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let now = Timestamp::now();
        let mut backlog = false;
        let mut staged: Option<Vec<u8>> = None;
        let result = follower.poll(now, &mut |poll| {
            let r = report.as_mut()?;
            for event in &poll.events {
                r.record(event);
            }
            staged = serde_json::to_vec(r).ok();
            staged.clone()
        });
        match result {
            Ok(poll) => {
                if staged.is_some() {
                    committed = staged;
                }
                tracing::debug!(
                    chains = poll.chains,
                    requests = poll.requests,
                    digests = poll.digests,
                    logs = poll.logs,
                    alerts = poll.alerts.len(),
                    backlog = poll.backlog,
                    ms = started.elapsed().as_millis() as u64,
                    "poll"
                );
                backlog = poll.backlog;
                if let (Some(path), Some(report)) = (&opts.report, &report) {
                    write_report(report, &meta_base, now, path)?;
                }
            }
            // The store may be briefly unreachable: the state is unchanged,
            // so the next poll simply tries again (and the report forgets
            // what this poll recorded).
            Err(e) => {
                tracing::warn!("poll failed, retrying after the interval: {e}");
                if report.is_some() {
                    report = Some(restore(&committed));
                }
            }
        }
        deliver_pending(&mut follower, &mut out)?;
        if backlog {
            continue;
        }
        let deadline = Instant::now() + opts.poll_interval;
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100).min(opts.poll_interval));
        }
    }
    tracing::info!("monitor stopped");
    Ok(())
}

/// Delivers the alerts the state holds undelivered: this poll's, and any
/// that a crash or a failed delivery left. A failed delivery (SNS
/// unreachable, say) is retried after the next poll; only the state failing
/// stops the monitor.
fn deliver_pending(follower: &mut Follower<'_>, out: &mut AlertOut) -> anyhow::Result<()> {
    let pending = follower.undelivered()?;
    if pending.is_empty() {
        return Ok(());
    }
    match out.deliver(&pending) {
        Ok(()) => follower.delivered(&pending)?,
        Err(e) => tracing::warn!(
            "cannot deliver {} alerts, retrying after the next poll: {e:#}",
            pending.len()
        ),
    }
    Ok(())
}

fn write_report(
    report: &HtmlReport,
    base: &ReportMeta,
    now: Timestamp,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let mut meta = base.clone();
    meta.end = now;
    meta.generated = now;
    meta.follow = true;
    report
        .write(&meta, path)
        .with_context(|| format!("cannot write the report {}", path.display()))
}
