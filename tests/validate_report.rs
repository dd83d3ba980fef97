//! `trailmill validate --report FILE.html`, end to end: a synthetic trail
//! with a deleted digest, a tampered log file and an unattested one, the
//! report rendered by a real headless Chromium (`TRAILMILL_CHROMIUM`, which
//! `scripts/test` installs with `scripts/setup-chromium.sh`), and assertions
//! on the DOM the page's script builds, plus a screenshot.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Synth, files_under, gunzip, run, tamper_log};

/// The browser. A missing browser fails the test: a skipped test would pass
/// without checking anything.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("TRAILMILL_CHROMIUM") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from("/usr/bin/chromium");
    assert!(
        p.exists(),
        "no browser: set TRAILMILL_CHROMIUM or run scripts/setup-chromium.sh (installs /usr/bin/chromium)"
    );
    p
}

/// Runs headless Chromium on `url` with `args`, with its own profile under
/// `tmp`, and returns its stdout.
fn browse(tmp: &Path, args: &[&str], url: &str) -> Vec<u8> {
    let browser = chromium();
    let profile = tmp.join("chromium-profile");
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", browser.display()));
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        browser.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One file's chain: (account, region), from its key.
fn chain_of(key: &str) -> (String, String) {
    let parts: Vec<&str> = key.split('/').collect();
    let at = parts.iter().position(|p| *p == "AWSLogs").unwrap();
    (parts[at + 1].to_owned(), parts[at + 3].to_owned())
}

/// `YYYY-MM-DDTHH` of a log key (`…_YYYYMMDDTHHmmZ_UNIQUE.json.gz`).
fn log_hour(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap();
    let t = name.split('_').nth(3).unwrap();
    format!("{}-{}-{}T{}", &t[0..4], &t[4..6], &t[6..8], &t[9..11])
}

/// The hour a digest without a period is shown in: the one containing 30
/// minutes before the time in its key (`…_YYYYMMDDTHHMMSSZ.json.gz`).
fn digest_hour(key: &str) -> String {
    let t = key.rsplit('_').next().unwrap();
    let secs: i64 = t[9..11].parse::<i64>().unwrap() * 3600
        + t[11..13].parse::<i64>().unwrap() * 60
        + t[13..15].parse::<i64>().unwrap()
        - 1800;
    assert!(secs >= 0, "the test's digests are not at midnight");
    format!("{}-{}-{}T{:02}", &t[0..4], &t[4..6], &t[6..8], secs / 3600)
}

/// The attributes of every start tag in `dom` whose `class` contains
/// `class` (the serialized DOM writes each start tag on its own terms, with
/// `&`, `"`, `<` and `>` escaped in attribute values).
fn tags_with_class(dom: &str, tag: &str, class: &str) -> Vec<BTreeMap<String, String>> {
    let mut found = Vec::new();
    let open = format!("<{tag} ");
    let mut rest = dom;
    while let Some(i) = rest.find(&open) {
        let body = &rest[i + open.len()..];
        let end = body.find('>').unwrap();
        let attrs = parse_attrs(&body[..end]);
        if attrs
            .get("class")
            .is_some_and(|c| c.split(' ').any(|c| c == class))
        {
            found.push(attrs);
        }
        rest = &body[end..];
    }
    found
}

fn parse_attrs(mut s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    loop {
        s = s.trim_start();
        let Some(eq) = s.find("=\"") else { break };
        let name = s[..eq].trim().to_owned();
        let value_start = eq + 2;
        let len = s[value_start..].find('"').unwrap();
        let value = s[value_start..value_start + len]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        out.insert(name, value);
        s = &s[value_start + len + 1..];
    }
    out
}

/// A finding as the page lists it: account, region, hour, kind, key, status.
type Finding = (String, String, String, String, String, String);

fn finding(chain: &(String, String), hour: &str, kind: &str, key: &str, status: &str) -> Finding {
    (
        chain.0.clone(),
        chain.1.clone(),
        hour.to_owned(),
        kind.to_owned(),
        format!("s3://trailmill-synth/{key}"),
        status.to_owned(),
    )
}

#[test]
fn the_report_shows_each_finding_in_its_chain_and_hour() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("trail");
    Synth {
        accounts: 2,
        regions: 2,
        hours: 4,
        logs_per_hour: 2,
        records: 5,
        extra: &[],
    }
    .write(&root);
    let rel = |p: &Path| p.strip_prefix(&root).unwrap().to_str().unwrap().to_owned();
    let files: Vec<String> = files_under(&root).iter().map(|p| rel(p)).collect();
    let digests: Vec<&String> = files
        .iter()
        .filter(|k| k.contains("/CloudTrail-Digest/") && k.ends_with(".json.gz"))
        .collect();
    let logs: Vec<&String> = files
        .iter()
        .filter(|k| k.contains("/CloudTrail/") && k.ends_with(".json.gz"))
        .collect();
    let chains: BTreeSet<(String, String)> = digests.iter().map(|k| chain_of(k)).collect();
    assert_eq!(chains.len(), 4, "2 accounts × 2 regions: {chains:?}");
    let chains: Vec<(String, String)> = chains.into_iter().collect();
    // Three chains are damaged, one in each way; the fourth stays intact.
    let (deleted_in, unattested_in, tampered_in) = (&chains[0], &chains[1], &chains[3]);
    let in_chain = |files: &[&String], chain: &(String, String)| -> Vec<String> {
        let mut v: Vec<String> = files
            .iter()
            .filter(|k| chain_of(k) == *chain)
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    };
    let mut want = BTreeSet::new();

    // 1. Delete a digest in the middle of a chain (and its signature): it is
    // missing, and the log files it listed are no longer attested.
    let chain_digests = in_chain(&digests, deleted_in);
    assert_eq!(chain_digests.len(), 4);
    let deleted = &chain_digests[1];
    let listed: serde_json::Value = serde_json::from_str(&gunzip(&root.join(deleted))).unwrap();
    std::fs::remove_file(root.join(deleted)).unwrap();
    let _ = std::fs::remove_file(root.join(format!("{deleted}.sig")));
    want.insert(finding(
        deleted_in,
        &digest_hour(deleted),
        "digest/not_found",
        deleted,
        "missing",
    ));
    let orphans: Vec<String> = listed["logFiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["s3Object"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(orphans.len(), 2, "2 log files per hour");
    for key in &orphans {
        want.insert(finding(
            deleted_in,
            &log_hour(key),
            "log/unattested",
            key,
            "unattested",
        ));
    }

    // 2. Tamper with a log file of hour 02.
    let tampered = in_chain(&logs, tampered_in)
        .into_iter()
        .find(|k| log_hour(k) == "2024-01-01T02")
        .unwrap();
    tamper_log(&root.join(&tampered));
    want.insert(finding(
        tampered_in,
        "2024-01-01T02",
        "log/hash_mismatch",
        &tampered,
        "invalid",
    ));

    // 3. A log file no digest lists: a copy under a new valid key in the
    // same day folder, at 02:45 with another unique suffix.
    let original = in_chain(&logs, unattested_in)
        .into_iter()
        .find(|k| log_hour(k) == "2024-01-01T02")
        .unwrap();
    let (dir, name) = original.rsplit_once('/').unwrap();
    let parts: Vec<&str> = name.split('_').collect();
    let copy = format!(
        "{dir}/{}_{}_{}_20240101T0245Z_Qx7RepCopy2Zk9Lm.json.gz",
        parts[0], parts[1], parts[2]
    );
    std::fs::copy(root.join(&original), root.join(&copy)).unwrap();
    want.insert(finding(
        unattested_in,
        "2024-01-01T02",
        "log/unattested",
        &copy,
        "unattested",
    ));

    // Validate, with the report.
    let report = tmp.path().join("report.html");
    let root_s = root.to_str().unwrap();
    let keys = root.join("keys.json");
    let out = run(&[
        "validate",
        root_s,
        "--all",
        "--start-time",
        "2024-01-01T00:00:00Z",
        "--end-time",
        "2024-01-01T04:00:00Z",
        "--bucket",
        "trailmill-synth",
        "--public-keys",
        keys.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "invalid, not an error:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&report).expect("the report is written for an invalid run");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("<link"),
        "the report must not fetch anything"
    );

    // The DOM the page's script builds, with every chain's day open.
    let url = format!("file://{}#open=2024-01-01", report.display());
    let dom = String::from_utf8(browse(tmp.path(), &["--dump-dom"], &url)).unwrap();
    assert!(
        dom.contains("data-rendered=\"js\""),
        "the script did not run"
    );
    // The <noscript> copy of the findings is text while scripts run, but it
    // is serialized as written: leave it out.
    let dom = match (dom.find("<noscript>"), dom.find("</noscript>")) {
        (Some(a), Some(b)) => format!("{}{}", &dom[..a], &dom[b..]),
        _ => dom,
    };
    assert!(dom.contains("data-verdict=\"INVALID\""));

    let rows = tags_with_class(&dom, "tr", "finding");
    let shown: Vec<Finding> = rows
        .iter()
        .map(|a| {
            let get = |k: &str| a.get(k).cloned().unwrap_or_default();
            (
                get("data-account"),
                get("data-region"),
                get("data-hour"),
                get("data-kind"),
                get("data-key"),
                get("data-status"),
            )
        })
        .collect();
    assert_eq!(shown.len(), want.len(), "one row per finding: {shown:#?}");
    let shown: BTreeSet<Finding> = shown.into_iter().collect();
    assert_eq!(shown, want);

    // Hour cells: 4 chains × 24 hours, each with its status.
    let cells = tags_with_class(&dom, "span", "hour");
    let status: BTreeMap<(String, String, String), String> = cells
        .iter()
        .map(|a| {
            (
                (
                    a["data-account"].clone(),
                    a["data-region"].clone(),
                    a["data-hour"].clone(),
                ),
                a["data-status"].clone(),
            )
        })
        .collect();
    assert_eq!(cells.len(), 96);
    assert_eq!(status.len(), 96);
    let mut expected_cells = BTreeMap::new();
    for chain in &chains {
        for h in 0..24 {
            let hour = format!("2024-01-01T{h:02}");
            let s = if h < 4 { "valid" } else { "none" };
            expected_cells.insert((chain.0.clone(), chain.1.clone(), hour), s.to_owned());
        }
    }
    // The worst finding of each damaged hour wins: the missing digest over
    // its orphaned log files.
    let cell = |c: &(String, String), hour: String| (c.0.clone(), c.1.clone(), hour);
    expected_cells.insert(cell(deleted_in, digest_hour(deleted)), "missing".into());
    expected_cells.insert(cell(tampered_in, "2024-01-01T02".into()), "invalid".into());
    expected_cells.insert(
        cell(unattested_in, "2024-01-01T02".into()),
        "unattested".into(),
    );
    assert_eq!(status, expected_cells);

    // Day cells: the worst hour of each chain's day.
    let days: BTreeMap<(String, String), String> = tags_with_class(&dom, "button", "day")
        .iter()
        .map(|a| {
            assert_eq!(a["data-day"], "2024-01-01");
            (
                (a["data-account"].clone(), a["data-region"].clone()),
                a["data-status"].clone(),
            )
        })
        .collect();
    let want_days: BTreeMap<(String, String), String> = [
        (deleted_in, "missing"),
        (unattested_in, "unattested"),
        (&chains[2], "valid"),
        (tampered_in, "invalid"),
    ]
    .into_iter()
    .map(|(c, s)| (c.clone(), s.to_owned()))
    .collect();
    assert_eq!(days, want_days);

    // A screenshot of the page with the days open: a PNG of the window's size.
    let shot = tmp.path().join("report.png");
    browse(
        tmp.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1100",
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.len() > 10_000, "{} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1400, 1100));
}
