//! `trailmill process s3://…` and `trailmill ls s3://…` against a real S3 API
//! (a moto server, `scripts/moto-server.py`), with and without the
//! fault-injecting proxy of `tests/support/proxy.rs` in between.
//!
//! The trail is a `trailmill synth` organization trail with several accounts
//! and regions under the multi-segment prefix `a/b`, uploaded to a bucket of
//! its own; every S3 run is compared with `process` on the local copy.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use support::proxy::{Faults, Proxy};
use support::s3::{Moto, aws_command, unique_bucket, upload_tree};
use support::{Synth, run_ok};

const ORG: &str = "o-abc";
const ACCOUNTS: usize = 3;
const REGIONS: usize = 2;
const HOURS: usize = 3;

/// A synthetic organization trail, uploaded to moto.
struct Trail {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bucket: String,
    moto: Moto,
}

impl Trail {
    fn new(what: &str) -> Trail {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bucket");
        let bucket = unique_bucket(what);
        Synth {
            accounts: ACCOUNTS,
            regions: REGIONS,
            hours: HOURS,
            logs_per_hour: 3,
            records: 20,
            extra: &["--org-id", ORG, "--prefix", "a/b", "--bucket", &bucket],
        }
        .write(&root);
        let moto = Moto::start(None);
        upload_tree(&moto.endpoint, &bucket, &root);
        Trail {
            _dir: dir,
            root,
            bucket,
            moto,
        }
    }

    fn local(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec!["process", self.root.to_str().unwrap(), "--quiet"];
        args.extend_from_slice(extra);
        lines(&run_ok(&args))
    }

    /// `trailmill process URL EXTRA…` through `endpoint`.
    fn s3(&self, endpoint: &str, url: &str, extra: &[&str]) -> Output {
        aws_command(endpoint)
            .args(["process", url])
            .args(extra)
            .output()
            .unwrap()
    }

    fn s3_ok(&self, endpoint: &str, url: &str, extra: &[&str]) -> (Vec<String>, String) {
        let out = self.s3(endpoint, url, extra);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "process {url} {extra:?} failed:\n{stderr}"
        );
        (lines(&out), stderr)
    }
}

/// The JSON Lines on stdout, sorted (workers finish files in any order).
fn lines(out: &Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// The number after `what` in the S3 summary line (`… 12 retried …`).
fn s3_counter(stderr: &str, what: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("trailmill: s3: "))
        .unwrap_or_else(|| panic!("no S3 summary in:\n{stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| w.trim_end_matches(',') == what)
        .unwrap_or_else(|| panic!("no {what:?} in {line:?}"));
    words[i - 1].parse().unwrap()
}

#[test]
fn process_s3_emits_exactly_what_process_emits_on_the_local_copy() {
    let t = Trail::new("equal");
    let all = t.local(&[]);
    assert_eq!(all.len(), ACCOUNTS * REGIONS * HOURS * 3 * 20);
    let ep = &t.moto.endpoint;
    let url = format!("s3://{}/a/b", t.bucket);

    // Planned listing (the URL names the trail's prefix).
    let (events, stderr) = t.s3_ok(ep, &url, &[]);
    assert_eq!(events, all);
    assert_eq!(s3_counter(&stderr, "retried"), 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} files ok, 0 failed",
            ACCOUNTS * REGIONS * HOURS * 3
        )),
        "{stderr}"
    );

    // The bucket root holds no AWSLogs/ folder of its own: one plain listing,
    // which keeps the same objects.
    let (events, _) = t.s3_ok(ep, &format!("s3://{}", t.bucket), &[]);
    assert_eq!(events, all);

    // A folder inside the AWSLogs/ tree narrows the plan to it.
    let account = first_account(&t.root);
    let (events, _) = t.s3_ok(ep, &format!("{url}/AWSLogs/{ORG}/{account}/"), &[]);
    assert_eq!(events, t.local(&["--account", &account]));
    assert!(!events.is_empty() && events.len() < all.len());
    // With no time range, folders are listed whole: an account's service
    // folder, a region folder inside it, or the regions given.
    let region_url = format!("{url}/AWSLogs/{ORG}/{account}/CloudTrail/us-east-1/");
    let (events, _) = t.s3_ok(ep, &region_url, &[]);
    assert_eq!(
        events,
        t.local(&["--account", &account, "--region", "us-east-1"])
    );
    assert!(!events.is_empty());
    let (events, _) = t.s3_ok(ep, &url, &["--region", "us-east-1"]);
    assert_eq!(events, t.local(&["--region", "us-east-1"]));
    assert!(!events.is_empty() && events.len() < all.len());

    // Selection flags work the same on both sources.
    let flags = [
        "--region",
        "us-east-1",
        "--start",
        "2024-01-01T00:30:00Z",
        "--end",
        "2024-01-01T02:10:00Z",
        "--event-name",
        "Get*",
    ];
    let (events, _) = t.s3_ok(ep, &url, &flags);
    assert_eq!(events, t.local(&flags));
    assert!(!events.is_empty());

    // ls lists the same keys.
    let out = aws_command(ep).args(["ls", &url]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s3_keys: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.rsplit('\t')
                .next()
                .unwrap()
                .trim_start_matches(&format!("s3://{}/", t.bucket))
                .to_owned()
        })
        .collect();
    let out = run_ok(&["ls", t.root.to_str().unwrap()]);
    let root_prefix = format!("{}/", t.root.display());
    let local_keys: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.rsplit('\t')
                .next()
                .unwrap()
                .trim_start_matches(&root_prefix)
                .to_owned()
        })
        .collect();
    assert_eq!(s3_keys, local_keys);
    assert_eq!(s3_keys.len(), ACCOUNTS * REGIONS * HOURS * 3);

    // --shard: the shards of a bucket partition its events, and a shard is
    // the same on the bucket and on its mirror.
    let mut union = Vec::new();
    for i in 0..3 {
        let shard = format!("{i}/3");
        let (events, _) = t.s3_ok(ep, &url, &["--shard", &shard]);
        assert_eq!(events, t.local(&["--shard", &shard]), "shard {shard}");
        assert!(!events.is_empty(), "shard {shard} is empty");
        union.extend(events);
    }
    union.sort();
    assert_eq!(union, all);
}

fn first_account(root: &Path) -> String {
    let org = root.join("a/b/AWSLogs").join(ORG);
    let mut accounts: Vec<String> = std::fs::read_dir(org)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    accounts.sort();
    accounts.remove(0)
}

/// Decodes `%XX` escapes of a query value.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The query parameters of a request line.
fn query(line: &str) -> Vec<(String, String)> {
    let target = line.split_whitespace().nth(1).unwrap_or_default();
    let Some((_, q)) = target.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (unescape(k), unescape(v))
        })
        .collect()
}

#[test]
fn a_one_hour_window_lists_only_that_hours_prefixes() {
    let t = Trail::new("hour");
    let proxy = Proxy::start(&t.moto.addr, Faults::default());
    let url = format!("s3://{}/a/b", t.bucket);
    let window = [
        "--start",
        "2024-01-01T01:00:00Z",
        "--end",
        "2024-01-01T02:00:00Z",
    ];
    let (events, _) = t.s3_ok(&proxy.endpoint, &url, &window);
    let expected = t.local(&window);
    assert_eq!(events, expected);
    assert_eq!(expected.len(), ACCOUNTS * REGIONS * 3 * 20);

    let requests = proxy.requests();
    let mut day_listings = 0;
    let mut discoveries = 0;
    let mut gets = 0;
    for line in &requests {
        let q = query(line);
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if get("list-type") == Some("2") {
            let prefix = get("prefix").unwrap_or_default();
            match get("delimiter") {
                // Discovery: the bucket root, AWSLogs/, the organization and
                // each account's CloudTrail/ folder; never years, months or days.
                Some("/") => {
                    discoveries += 1;
                    let depth = prefix.trim_end_matches('/').split('/').count();
                    assert!(
                        prefix.is_empty()
                            || depth <= "a/b/AWSLogs/o-abc/ACCOUNT/CloudTrail".split('/').count(),
                        "discovery listed {prefix:?}: {line}"
                    );
                    assert!(!prefix.contains("/2024"), "{line}");
                }
                _ => {
                    day_listings += 1;
                    assert!(prefix.ends_with("/2024/01/01/"), "{line}");
                    let start_after =
                        get("start-after").unwrap_or_else(|| panic!("no start-after: {line}"));
                    assert!(start_after.starts_with(prefix), "{line}");
                    assert!(start_after.ends_with("_20240101T0100"), "{line}");
                    assert_eq!(get("continuation-token"), None, "one page per day: {line}");
                }
            }
        } else if line.starts_with("GET ") {
            gets += 1;
            let path = line.split_whitespace().nth(1).unwrap();
            assert!(
                path.contains("_20240101T01"),
                "fetched an object outside the hour: {line}"
            );
        }
    }
    assert_eq!(day_listings, ACCOUNTS * REGIONS, "{requests:#?}");
    // One round trip each for AWSLogs/ (which also tells the layout: the
    // URL's folder itself is not listed), the organization, and each
    // account's regions.
    assert_eq!(discoveries, 2 + ACCOUNTS, "{requests:#?}");
    assert_eq!(gets, ACCOUNTS * REGIONS * 3, "{requests:#?}");
}

#[test]
fn faults_are_retried_until_every_event_is_delivered() {
    let t = Trail::new("faults");
    let all = t.local(&[]);
    let url = format!("s3://{}/a/b", t.bucket);
    let faults = Faults {
        fail: 0.10,
        delay_fraction: 0.03,
        // Longer than the request timeout below: delayed requests time out.
        delay: Duration::from_millis(1500),
        latency: Duration::ZERO,
        seed: 7,
        only_matching: None,
        bucket_region: None,
        ..Faults::default()
    };
    let proxy = Proxy::start(&t.moto.addr, faults);
    let started = Instant::now();
    let (events, stderr) = t.s3_ok(&proxy.endpoint, &url, &["--request-timeout", "1"]);
    let elapsed = started.elapsed();
    assert_eq!(events, all, "{stderr}");
    let retries = s3_counter(&stderr, "retried");
    eprintln!(
        "fault proxy: {} requests, {} failures injected ({} SlowDown, {} resets, {} cut bodies), {} delayed; trailmill retried {retries} times; {} events in {:.2} s",
        proxy.requests().len(),
        proxy.failures(),
        proxy
            .counts
            .slow_downs
            .load(std::sync::atomic::Ordering::Relaxed),
        proxy
            .counts
            .resets
            .load(std::sync::atomic::Ordering::Relaxed),
        proxy
            .counts
            .truncations
            .load(std::sync::atomic::Ordering::Relaxed),
        proxy
            .counts
            .delays
            .load(std::sync::atomic::Ordering::Relaxed),
        events.len(),
        elapsed.as_secs_f64()
    );
    assert!(proxy.failures() > 0);
    // Every injected failure and timeout costs a retry; a failure of the
    // startup HeadBucket (which only picks the region) is not retried.
    assert!(
        retries + 1 >= proxy.failures(),
        "{retries} retries for {} failures",
        proxy.failures()
    );

    // Without retries, the files whose download failed are reported by name
    // and reason, and the run goes on (listings are spared, so that there is
    // a run to go on).
    let proxy = Proxy::start(
        &t.moto.addr,
        Faults {
            fail: 0.3,
            seed: 3,
            only_matching: Some(".json.gz"),
            ..Faults::default()
        },
    );
    let out = t.s3(&proxy.endpoint, &url, &["--max-attempts", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let object_error = format!("error: s3://{}/a/b/AWSLogs/{ORG}/", t.bucket);
    let failed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with(&object_error))
        .collect();
    assert!(!failed.is_empty(), "{stderr}");
    assert!(
        failed.iter().all(|l| l.contains(".json.gz: ")
            && (l.contains("SlowDown")
                || l.contains("error")
                || l.contains("closed")
                || l.contains("bytes"))),
        "{failed:#?}"
    );
    let (_, out_events) = support::events_in_out(&out.stderr);
    assert!(
        out_events > 0 && (out_events as usize) < all.len(),
        "{stderr}"
    );
}

/// The region check (`HeadBucket`) runs alongside the first requests rather
/// than before them: requests sent to the configured region before it
/// answers are redirected by S3 and must be made again in the bucket's region,
/// with nothing lost and nothing reported as failed.
#[test]
fn a_bucket_in_another_region_is_followed_there() {
    let t = Trail::new("region");
    let all = t.local(&[]);
    let proxy = Proxy::start(
        &t.moto.addr,
        Faults {
            bucket_region: Some("eu-west-1"),
            // The HEAD answers only after the first listing was redirected:
            // the listing must wait for it and be made again.
            redirect_others_first: true,
            ..Faults::default()
        },
    );
    // `aws_command` configures us-east-1.
    let url = format!("s3://{}/a/b", t.bucket);
    let (events, stderr) = t.s3_ok(&proxy.endpoint, &url, &[]);
    assert_eq!(events, all);
    assert_eq!(s3_counter(&stderr, "failed"), 0, "{stderr}");
    // The HEAD that finds the region is redirected, and so is the first
    // listing, which waits for the HEAD's answer and is made again; nothing
    // after the switch.
    let redirects = proxy
        .counts
        .redirects
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(redirects, 2, "{:#?}\n{stderr}", proxy.requests());
}

/// Regression (issue 11, item 4): the state bound an `s3://` source through
/// `std::path::absolute`, which put the working directory in front of it, so
/// resuming an S3 backfill from another directory was refused as "bound to
/// another job". The URL is now bound as a URL (`s3://b/p` and `s3://b/p/`
/// alike), and the resumed run skips every object the first one did.
#[test]
fn an_s3_backfill_resumes_from_another_working_directory() {
    let t = Trail::new("resume-cwd");
    let out = tempfile::tempdir().unwrap();
    let (one, two) = (out.path().join("one"), out.path().join("two"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let sink = format!("sqlite:{}", out.path().join("events.db").display());
    let state = out.path().join("events.state");
    let state = state.to_str().unwrap();
    let run_in = |cwd: &Path, url: &str| {
        let out = aws_command(&t.moto.endpoint)
            .current_dir(cwd)
            .args(["process", url, "--sink", &sink, "--state", state])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "process {url} in {cwd:?} failed:\n{stderr}"
        );
        stderr
    };
    let first = run_in(&one, &format!("s3://{}/a/b", t.bucket));
    let done = first
        .split("state ")
        .nth(1)
        .and_then(|s| s.split(": ").nth(1))
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no state line:\n{first}"));
    assert!(done > 0, "{first}");
    let second = run_in(&two, &format!("s3://{}/a/b/", t.bucket));
    assert!(
        second.contains(&format!(
            ": 0 objects done and 0 failed in 1 checkpoints this run; {done} already done were skipped"
        )),
        "{second}"
    );
}
