//! `trailmill validate --follow`: a synthetic trail is delivered hour by hour
//! while the monitor runs, on a local mirror and on moto S3. A tampered log
//! file, a deleted digest (with its hour's log files), a log file no digest
//! lists, and a chain that stops each raise exactly one alert of the right
//! kind; healthy hours raise none; a SIGKILL and a restart lose and repeat
//! nothing; and the findings are the ones a one-shot `validate` over the
//! same range reports.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::crash::{terminate, wait_for};
use support::{files_under, run, tamper_log, trailmill};
use trailmill_core::key::{FileKind, ObjectKey};

const HOURS: i64 = 7;
/// Hours 0 to `CAUGHT_UP` are there when the monitor starts; it catches up
/// on them. The second region's chain stops after that hour; the first
/// region's later hours are delivered one by one while the monitor runs.
const CAUGHT_UP: i64 = 3;
/// How long after the trail is made the stopped chain falls overdue: long
/// enough for the first poll to see every chain's newest digest in time.
const OVERDUE_IN_SECS: i64 = 60;

/// A synthetic trail staged outside the watched place, damaged, and split
/// into the pieces CloudTrail would deliver hour by hour.
struct Trail {
    staging: tempfile::TempDir,
    /// The bucket the digests record.
    bucket: String,
    start: i64,
    /// Keys (with their `.sig` sidecars for digests) per hour.
    pieces: Vec<Vec<String>>,
    /// What the monitor must report: (kind, key).
    expected: BTreeSet<(String, String)>,
    /// The end of the stopped chain's last digest (Unix seconds).
    stopped_end: i64,
    /// When the trail was made (Unix seconds).
    made: i64,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Region and hour of a staged key, and whether it is a digest.
fn place(key: &str, start: i64) -> (String, i64, bool) {
    let k = ObjectKey::parse(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    let digest = matches!(k.file.kind, FileKind::Digest { .. });
    let t = k.file.time.unix_seconds();
    // Digests end a few seconds after their hour.
    let hour = if digest {
        (t - 60 - start) / 3600
    } else {
        (t - start) / 3600
    };
    (k.file.region.to_string(), hour, digest)
}

fn make_trail(bucket: &str) -> Trail {
    let staging = tempfile::tempdir().unwrap();
    // Six hours ending with the current one, so that the monitor's deadlines
    // are about now.
    let start = now() / 3600 * 3600 - (HOURS - 1) * 3600;
    let root = staging.path();
    let start_arg = start.to_string();
    let out = run(&[
        "synth",
        root.to_str().unwrap(),
        "--accounts",
        "1",
        "--regions",
        "2",
        "--hours",
        &HOURS.to_string(),
        "--logs-per-hour",
        "2",
        "--records",
        "5",
        "--seed",
        "7",
        "--start",
        &start_arg,
        "--bucket",
        bucket,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut keys: Vec<String> = files_under(root)
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().to_str().unwrap().to_string())
        .filter(|k| k.starts_with("AWSLogs/") && !k.ends_with(".sig"))
        .collect();
    keys.sort();
    let regions: BTreeSet<String> = keys.iter().map(|k| place(k, start).0).collect();
    let regions: Vec<String> = regions.into_iter().collect();
    assert_eq!(regions.len(), 2);
    let (a, b) = (&regions[0], &regions[1]);
    let logs_of = |region: &str, hour: i64| -> Vec<String> {
        keys.iter()
            .filter(|k| place(k, start) == (region.to_string(), hour, false))
            .cloned()
            .collect()
    };
    let digest_of = |region: &str, hour: i64| -> String {
        keys.iter()
            .find(|k| place(k, start) == (region.to_string(), hour, true))
            .cloned()
            .unwrap()
    };
    // What is damaged, chosen before anything changes. All of it is in the
    // first region's hours that arrive while the monitor runs.
    let tampered = [logs_of(a, 5)[0].clone(), logs_of(a, 6)[0].clone()];
    let deleted = digest_of(a, 4);
    let mut removed: BTreeSet<String> = logs_of(a, 4).into_iter().collect();
    let model = removed.iter().next().unwrap().clone();
    removed.insert(deleted.clone());
    let stopped_digest = digest_of(b, CAUGHT_UP);
    let mut expected = BTreeSet::new();

    // Hours 5 and 6: a log file edited after delivery (hour 6 arrives while
    // the monitor is down).
    for k in tampered {
        tamper_log(&root.join(&k));
        expected.insert(("invalid_log".to_string(), k));
    }

    // Hour 4: a log file no digest lists (the bytes of one of that hour's,
    // under a new name).
    let (stem, _) = model.rsplit_once('_').unwrap();
    let planted = format!("{stem}_PLANTEDPLANTED00.json.gz");
    std::fs::copy(root.join(&model), root.join(&planted)).unwrap();
    keys.push(planted.clone());
    expected.insert(("unattested_log".to_string(), planted));

    // Hour 4: the digest and the hour's log files deleted (an attacker
    // removing an hour of activity).
    for k in &removed {
        std::fs::remove_file(root.join(k)).unwrap();
        let _ = std::fs::remove_file(root.join(format!("{k}.sig")));
    }
    keys.retain(|k| !removed.contains(k));
    expected.insert(("missing_digest".to_string(), deleted));

    // The second region stops after the hours the monitor catches up on.
    expected.insert(("chain_overdue".to_string(), stopped_digest.clone()));
    let stopped_end = ObjectKey::parse(&stopped_digest)
        .unwrap()
        .file
        .time
        .unix_seconds();

    // Within an hour, log files first and digests last, as CloudTrail
    // delivers them: a poll between the two must not see a digest whose log
    // files are not there yet (that would be a real finding).
    let mut pieces = vec![Vec::new(); HOURS as usize];
    let mut digests = vec![Vec::new(); HOURS as usize];
    for k in keys {
        let (region, hour, digest) = place(&k, start);
        if region == *b && hour > CAUGHT_UP {
            continue;
        }
        if digest {
            // The signature before the digest, so that the digest is never
            // seen without it.
            digests[hour as usize].push(format!("{k}.sig"));
            digests[hour as usize].push(k);
        } else {
            pieces[hour as usize].push(k);
        }
    }
    for (piece, digests) in pieces.iter_mut().zip(digests) {
        piece.extend(digests);
    }
    Trail {
        staging,
        bucket: bucket.to_string(),
        start,
        pieces,
        expected,
        stopped_end,
        made: now(),
    }
}

impl Trail {
    fn keys_json(&self) -> PathBuf {
        self.staging.path().join("keys.json")
    }

    /// Copies piece `hour` into the mirror at `root`.
    /// Each file appears whole (copied beside, then renamed), as an S3
    /// object does: a poll never reads half a file.
    fn deliver_local(&self, hour: usize, root: &Path) {
        let incoming = self.staging.path().join("incoming");
        for k in &self.pieces[hour] {
            let to = root.join(k);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(self.staging.path().join(k), &incoming).unwrap();
            std::fs::rename(&incoming, &to).unwrap();
        }
    }

    /// Uploads piece `hour` to moto, digests with their signature metadata.
    fn deliver_s3(&self, hour: usize, endpoint: &str) {
        let keys: Vec<String> = self.pieces[hour]
            .iter()
            .filter(|k| !k.ends_with(".sig"))
            .cloned()
            .collect();
        support::s3::upload_files(endpoint, &self.bucket, self.staging.path(), &keys);
    }

    /// The overdue grace that puts the stopped chain's deadline
    /// [`OVERDUE_IN_SECS`] after the trail was made.
    fn overdue_grace(&self) -> i64 {
        self.made + OVERDUE_IN_SECS - self.stopped_end - 3600
    }

    /// Delivers the hours the monitor starts with.
    fn deliver_first_hours(&self, deliver: impl Fn(usize)) {
        for hour in 0..=CAUGHT_UP as usize {
            deliver(hour);
        }
    }
}

/// The arguments of a monitor of the whole trail that polls every 0.3 s
/// and reports unattested log files as soon as digests have moved past them.
fn follow_args(
    source: &str,
    trail: &Trail,
    state: &Path,
    alerts: &str,
    overdue_grace: i64,
) -> Vec<String> {
    [
        "validate",
        source,
        "--all",
        "--start-time",
        &trail.start.to_string(),
        "--bucket",
        &trail.bucket,
        "--public-keys",
        trail.keys_json().to_str().unwrap(),
        "--follow",
        "--state",
        state.to_str().unwrap(),
        "--alerts",
        alerts,
        "--poll-interval",
        "0.3",
        "--unattested-grace",
        "0",
        "--overdue-grace",
        &overdue_grace.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `trailmill`, pointed at moto when `endpoint` is given.
fn command(endpoint: Option<&str>) -> Command {
    endpoint.map_or_else(trailmill, support::s3::aws_command)
}

/// Starts the monitor on `source`, alerts to `alerts`.
fn monitor(
    source: &str,
    trail: &Trail,
    state: &Path,
    alerts: &Path,
    overdue_grace: i64,
    endpoint: Option<&str>,
) -> Child {
    let mut cmd = command(endpoint);
    cmd.args(follow_args(
        source,
        trail,
        state,
        alerts.to_str().unwrap(),
        overdue_grace,
    ))
    .args(["--report", alerts.with_extension("html").to_str().unwrap()])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd.spawn().expect("start the monitor")
}

/// The alerts written so far: (kind, key) with how often each was written.
fn alerts_in(path: &Path, bucket: &str) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("alert {line:?}: {e}"));
        for field in [
            "id", "trail", "account", "region", "time", "reason", "detected",
        ] {
            assert!(v[field].is_string(), "{field} missing in {line}");
        }
        assert_eq!(v["bucket"], bucket, "{line}");
        let key = (
            v["kind"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

const PATIENCE: Duration = Duration::from_secs(60);

fn stop(mut child: Child) -> String {
    terminate(&child);
    let out = std::mem::take(&mut child.stderr);
    let status = child.wait().unwrap();
    let mut text = String::new();
    if let Some(mut e) = out {
        use std::io::Read;
        e.read_to_string(&mut text).unwrap();
    }
    assert!(status.success(), "the monitor exited with {status}: {text}");
    text
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The findings of a one-shot run over the range the monitor covered, as
/// (alert kind, key): what the monitor must have found too.
fn one_shot(source: &str, trail: &Trail, endpoint: Option<&str>) -> BTreeSet<(String, String)> {
    let out = command(endpoint)
        .args([
            "validate",
            source,
            "--all",
            "--start-time",
            &trail.start.to_string(),
            "--end-time",
            &(trail.start + HOURS * 3600).to_string(),
            "--bucket",
            &trail.bucket,
            "--public-keys",
            trail.keys_json().to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] != "file" || v["status"] != "invalid" {
            continue;
        }
        let kind = match (v["file"].as_str().unwrap(), v["problem"].as_str().unwrap()) {
            ("digest", "not_found" | "missing_inferred") => "missing_digest",
            ("digest", _) => "invalid_digest",
            ("log", "unattested") => "unattested_log",
            ("log", "not_found") => "missing_log",
            ("log", _) => "invalid_log",
            other => panic!("unexpected finding {other:?} in {line}"),
        };
        found.insert((kind.to_string(), v["key"].as_str().unwrap().to_string()));
    }
    found
}

/// The report the monitor rewrites after each poll shows every finding,
/// including those found before a restart.
fn assert_report_shows_findings(alerts: &Path, trail: &Trail) {
    let html = std::fs::read_to_string(alerts.with_extension("html")).unwrap();
    assert!(html.contains("INVALID"), "the report's verdict");
    for (kind, key) in &trail.expected {
        assert!(
            html.contains(key.as_str()),
            "{kind} {key} is not in the report"
        );
    }
}

fn assert_exactly_expected(alerts: &Path, trail: &Trail) {
    let got = alerts_in(alerts, &trail.bucket);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "alerts written more than once: {twice:?}");
    let got: BTreeSet<(String, String)> = got.into_keys().collect();
    assert_eq!(got, trail.expected, "the monitor's alerts");
}

fn assert_agrees_with_one_shot(alerts: &Path, trail: &Trail, source: &str, endpoint: Option<&str>) {
    let files: BTreeSet<(String, String)> = alerts_in(alerts, &trail.bucket)
        .into_keys()
        .filter(|(kind, _)| !kind.starts_with("chain_"))
        .collect();
    assert_eq!(
        one_shot(source, trail, endpoint),
        files,
        "--follow and a one-shot run disagree"
    );
}

#[test]
fn a_monitor_on_a_local_mirror_alerts_once_per_finding_across_a_sigkill() {
    let trail = make_trail("trailmill-synth");
    let mirror = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (state, alerts) = (
        work.path().join("follow.db"),
        work.path().join("alerts.jsonl"),
    );
    let source = mirror.path().to_str().unwrap();
    let grace = trail.overdue_grace();
    let deliver = |hour: usize| trail.deliver_local(hour, mirror.path());

    trail.deliver_first_hours(deliver);
    let child = monitor(source, &trail, &state, &alerts, grace, None);
    // Catching up on good hours raises nothing.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(alerts_in(&alerts, &trail.bucket).is_empty());
    for hour in 4..=5 {
        deliver(hour);
        std::thread::sleep(Duration::from_millis(700));
    }
    wait_for("the alerts of hours 4 and 5", PATIENCE, || {
        alerts_in(&alerts, &trail.bucket).len() >= 3
    });

    // Killed without warning; hour 6 arrives while it is down.
    kill(child);
    deliver(6);
    let child = monitor(source, &trail, &state, &alerts, grace, None);
    wait_for("every finding's alert", PATIENCE * 2, || {
        alerts_in(&alerts, &trail.bucket).len() >= trail.expected.len()
    });
    // A few more polls must not repeat anything.
    std::thread::sleep(Duration::from_secs(2));
    let stderr = stop(child);
    assert!(stderr.contains("ALERT chain_overdue"), "{stderr}");
    assert_exactly_expected(&alerts, &trail);
    assert_report_shows_findings(&alerts, &trail);
    assert_agrees_with_one_shot(&alerts, &trail, source, None);

    // Restarted once more, on a finished trail, it finds nothing new.
    let child = monitor(source, &trail, &state, &alerts, grace, None);
    std::thread::sleep(Duration::from_secs(2));
    stop(child);
    assert_exactly_expected(&alerts, &trail);
}

#[test]
fn a_monitor_on_s3_alerts_once_per_finding() {
    let moto = support::s3::Moto::start(None);
    let bucket = support::s3::unique_bucket("follow");
    let trail = make_trail(&bucket);
    support::s3::create_bucket(&moto.endpoint, &bucket);
    let work = tempfile::tempdir().unwrap();
    let (state, alerts) = (
        work.path().join("follow.db"),
        work.path().join("alerts.jsonl"),
    );
    let source = format!("s3://{bucket}");
    let endpoint = Some(moto.endpoint.as_str());
    let deliver = |hour: usize| trail.deliver_s3(hour, &moto.endpoint);

    trail.deliver_first_hours(deliver);
    let child = monitor(
        &source,
        &trail,
        &state,
        &alerts,
        trail.overdue_grace(),
        endpoint,
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(alerts_in(&alerts, &trail.bucket).is_empty());
    for hour in 4..HOURS as usize {
        deliver(hour);
        std::thread::sleep(Duration::from_millis(700));
    }
    wait_for("every finding's alert", PATIENCE * 2, || {
        alerts_in(&alerts, &trail.bucket).len() >= trail.expected.len()
    });
    std::thread::sleep(Duration::from_secs(2));
    stop(child);
    assert_exactly_expected(&alerts, &trail);
    assert_agrees_with_one_shot(&alerts, &trail, &source, endpoint);
}

#[test]
fn a_state_made_for_another_selection_is_refused() {
    let trail = make_trail("trailmill-synth");
    let mirror = tempfile::tempdir().unwrap();
    trail.deliver_local(0, mirror.path());
    let work = tempfile::tempdir().unwrap();
    let (state, alerts) = (
        work.path().join("follow.db"),
        work.path().join("alerts.jsonl"),
    );
    let source = mirror.path().to_str().unwrap();
    let child = monitor(source, &trail, &state, &alerts, 86_400, None);
    wait_for("the state", PATIENCE, || state.exists());
    std::thread::sleep(Duration::from_millis(500));
    stop(child);
    let out = run(&[
        "validate",
        source,
        "--trail-arn",
        "arn:aws:cloudtrail:us-east-1:123456789012:trail/other",
        "--start-time",
        &trail.start.to_string(),
        "--public-keys",
        trail.keys_json().to_str().unwrap(),
        "--follow",
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(255));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(state.to_str().unwrap()) && stderr.contains("another selection"),
        "{stderr}"
    );
}

#[test]
fn alerts_reach_an_sns_topic_with_their_kind_and_id_as_attributes() {
    let moto = support::moto::Moto::start();
    let queue = moto.create_queue(&support::moto::unique("alerts"));
    let topic = moto.admin(
        "topic_to_queue",
        serde_json::json!({ "topic": support::moto::unique("alerts"), "url": queue }),
    )["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let trail = make_trail("trailmill-synth");
    let mirror = tempfile::tempdir().unwrap();
    for hour in 0..HOURS as usize {
        trail.deliver_local(hour, mirror.path());
    }
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("follow.db");
    // The stopped chain is not this test's concern.
    let args = follow_args(
        mirror.path().to_str().unwrap(),
        &trail,
        &state,
        &format!("sns:{topic}"),
        86_400,
    );
    let mut child = moto
        .trailmill()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let expected: BTreeSet<(String, String)> = trail
        .expected
        .iter()
        .filter(|(kind, _)| kind != "chain_overdue")
        .cloned()
        .collect();
    let mut got: Vec<(String, String)> = Vec::new();
    wait_for("the alerts on the topic's queue", PATIENCE, || {
        let taken = moto.admin("receive_all", serde_json::json!({ "url": queue }));
        for m in taken["messages"].as_array().unwrap() {
            let alert: serde_json::Value =
                serde_json::from_str(m["message"].as_str().unwrap()).unwrap();
            assert_eq!(m["attributes"]["kind"], alert["kind"], "{m}");
            assert_eq!(m["attributes"]["id"], alert["id"], "{m}");
            assert!(
                m["subject"].as_str().unwrap().starts_with("trailmill: "),
                "{m}"
            );
            got.push((
                alert["kind"].as_str().unwrap().to_owned(),
                alert["key"].as_str().unwrap().to_owned(),
            ));
        }
        got.len() >= expected.len()
    });
    std::thread::sleep(Duration::from_secs(1));
    terminate(&child);
    assert!(child.wait().unwrap().success());
    let more = moto.admin("receive_all", serde_json::json!({ "url": queue }));
    assert_eq!(more["messages"].as_array().unwrap().len(), 0, "{more}");
    let set: BTreeSet<(String, String)> = got.iter().cloned().collect();
    assert_eq!(
        set.len(),
        got.len(),
        "an alert was published twice: {got:?}"
    );
    assert_eq!(set, expected);
}
