//! The S3 benchmark: `trailmill validate s3://…` against the real AWS CLI,
//! and `trailmill process s3://…` against a plain parallel downloader, both
//! through a loopback proxy that adds 20 ms to every request (a typical S3
//! first-byte latency), in front of a moto server.
//!
//! `process` is timed on the whole trail, four days by default, so that the
//! figure is its throughput: its fixed start (two listing round trips before
//! the first download, about 0.15 s here) would otherwise weigh much more on
//! a one-day trail (about 1 s of downloads).
//! The AWS CLI is slow enough that one day is plenty to compare with it.
//!
//! Run it with `scripts/bench-s3.sh` (which installs moto and the AWS CLI
//! first). Timings are printed, never asserted. Settings, from the
//! environment: `BENCH_RECORDS` (events per log file, default 800),
//! `BENCH_HOURS` (the trail's length, default 96), `BENCH_VALIDATE_HOURS`
//! (the hours validated, from the start, default 24: 288 log files),
//! `BENCH_LATENCY_MS` (default 20), `BENCH_RUNS`
//! (timed runs of the downloader and of `process`, alternated; default 5),
//! `BENCH_SKIP_VALIDATE=1` (time only the downloader and `process`),
//! `BENCH_HOLD=1` (time nothing: keep the server up and print where it is).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::proxy::{Faults, Proxy};
use support::s3::{Moto, aws_command, client, unique_bucket, upload_tree};
use support::{Synth, repo};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The wall time of `f`, which must succeed.
fn timed(mut f: impl FnMut() -> bool) -> f64 {
    let t = Instant::now();
    assert!(f(), "a timed run failed");
    t.elapsed().as_secs_f64()
}

/// The best wall time of `runs` runs of `f`, which must succeed.
fn best(runs: usize, mut f: impl FnMut() -> bool) -> f64 {
    fastest(&(0..runs).map(|_| timed(&mut f)).collect::<Vec<_>>())
}

/// The smallest of `times`.
fn fastest(times: &[f64]) -> f64 {
    times.iter().copied().fold(f64::INFINITY, f64::min)
}

/// The median of `v` (the upper one of an even count).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench. `cargo test --all-targets` runs bench
    // targets without it, to check that they start: timing S3 and the AWS CLI
    // there would only slow the test suite, so stop after saying how to run it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("s3 benchmark: run it with scripts/bench-s3.sh (cargo bench --bench s3)");
        return;
    }
    let records = env_or("BENCH_RECORDS", 800);
    let hours = env_or("BENCH_HOURS", 96);
    let validate_hours = env_or("BENCH_VALIDATE_HOURS", 24).min(hours);
    let latency = Duration::from_millis(env_or("BENCH_LATENCY_MS", 20));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    let bucket = unique_bucket("bench");
    Synth {
        accounts: 2,
        regions: 2,
        hours: hours as usize,
        logs_per_hour: 3,
        records: records as usize,
        extra: &["--bucket", &bucket],
    }
    .write(&root);
    let keys = root.join("keys.json");
    let moto = Moto::start(Some(&keys));
    let uploaded = upload_tree(&moto.endpoint, &bucket, &root);
    let logs: Vec<String> = uploaded
        .iter()
        .filter(|k| k.contains("/CloudTrail/"))
        .cloned()
        .collect();
    let log_bytes: u64 = logs
        .iter()
        .map(|k| std::fs::metadata(root.join(k)).unwrap().len())
        .sum();
    let proxy = Proxy::start(
        &moto.addr,
        Faults {
            latency,
            ..Faults::default()
        },
    );
    println!(
        "trail: {} log files, {:.1} MB gzip; server: moto behind a proxy adding {} ms per request",
        logs.len(),
        log_bytes as f64 / 1e6,
        latency.as_millis()
    );

    if env_or("BENCH_HOLD", 0) == 1 {
        // For measurements by hand (perf, strace): the server stays up, with
        // the trail's log keys listed in a file, until this process is killed.
        let keys = dir.path().join("log-keys.txt");
        std::fs::write(&keys, logs.join("\n")).unwrap();
        println!(
            "holding: endpoint {} (moto itself at {}), bucket {bucket}, local copy {}, log keys in {}",
            proxy.endpoint,
            moto.endpoint,
            root.display(),
            keys.display()
        );
        loop {
            std::thread::park();
        }
    }
    // (a) validate, one region at a time as the AWS CLI works.
    let account = std::fs::read_dir(root.join("AWSLogs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.chars().all(|c| c.is_ascii_digit()))
        .unwrap();
    let arn = format!("arn:aws:cloudtrail:us-east-1:{account}:trail/synth-trail");
    let regions: Vec<String> = std::fs::read_dir(
        root.join("AWSLogs")
            .join(&account)
            .join("CloudTrail-Digest"),
    )
    .unwrap()
    .map(|e| e.unwrap().file_name().into_string().unwrap())
    .collect();
    let end_after = |hours: u64| {
        jiff::Timestamp::from_second(1_704_067_200 + hours as i64 * 3600)
            .unwrap()
            .to_string()
    };
    let (validate_end, end) = (end_after(validate_hours), end_after(hours));
    let aws = aws_cli();
    let (mut ours, mut theirs) = (0.0, 0.0);
    // BENCH_SKIP_VALIDATE=1 times only `process`, for quicker iterations on it.
    let regions = if env_or("BENCH_SKIP_VALIDATE", 0) == 1 {
        Vec::new()
    } else {
        regions
    };
    for region in &regions {
        let range = [
            "--start-time",
            "2024-01-01T00:00:00Z",
            "--end-time",
            validate_end.as_str(),
        ];
        let t = best(3, || {
            aws_command(&proxy.endpoint)
                .args([
                    "validate",
                    &format!("s3://{bucket}"),
                    "--trail-arn",
                    &arn,
                    "--region",
                    region,
                ])
                .args([
                    "--public-keys",
                    keys.to_str().unwrap(),
                    "--format",
                    "aws-cli",
                ])
                .args(range)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        });
        let o = best(3, || {
            aws_env(&mut Command::new(&aws), &proxy.endpoint)
                .args([
                    "cloudtrail",
                    "validate-logs",
                    "--trail-arn",
                    &arn,
                    "--region",
                    region,
                ])
                .args(["--s3-bucket", &bucket])
                .args(range)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        });
        println!(
            "validate {region}, first {validate_hours} hours: trailmill {t:.2} s, aws cloudtrail validate-logs {o:.2} s: {:.1}x",
            o / t
        );
        ours += t;
        theirs += o;
    }
    if !regions.is_empty() {
        println!(
            "validate, all regions: trailmill {ours:.2} s, AWS CLI {theirs:.2} s: trailmill is {:.1}x faster (target >= 10x)",
            theirs / ours
        );
    }

    // (b) process against a plain parallel downloader of the same log files.
    // `trailmill ARGS` through the proxy, output discarded.
    let run_trailmill = |args: &[&str]| {
        aws_command(&proxy.endpoint)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    let time_trailmill = |args: &[&str]| best(3, || run_trailmill(args));
    let s3_url = format!("s3://{bucket}");
    let null_sink = ["--quiet", "--sink", "jsonl:/dev/null"];
    let process_args = [&["process", s3_url.as_str()][..], &null_sink].concat();
    // moto's speed drifts by 10% and more from one run to the next, so the
    // two alternate, run for run, and the ratio is taken of their medians.
    let runs = env_or("BENCH_RUNS", 5).max(1) as usize;
    let (mut downloads, mut processes) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        downloads.push(timed(|| {
            download_all(&proxy.endpoint, &bucket, &logs, 64) == log_bytes
        }));
        processes.push(timed(|| run_trailmill(&process_args)));
    }
    // Where process's time goes: listing alone (`ls`: `AWSLogs/`, then each
    // account's folder, or each day with a range, each a round trip through
    // the proxy), and decoding alone (the same files, local).
    let list = time_trailmill(&["ls", &s3_url]);
    let local = time_trailmill(
        &[
            &["process", root.to_str().unwrap(), "--no-state"][..],
            &null_sink,
        ]
        .concat(),
    );
    // With the range given, the days are enumerated and listed one by one.
    let range = ["--start", "2024-01-01T00:00:00Z", "--end", end.as_str()];
    let list_range = time_trailmill(&[&["ls", s3_url.as_str()][..], &range].concat());
    let process_range =
        time_trailmill(&[&["process", s3_url.as_str()][..], &null_sink, &range].concat());
    println!(
        "process's parts: listing alone (trailmill ls) {list:.2} s, {list_range:.2} s with --start/--end; \
         decoding the local copy {local:.2} s; process with --start/--end {process_range:.2} s"
    );
    let mbps = |secs: f64| log_bytes as f64 / secs / 1e6;
    let list = |v: &[f64]| {
        v.iter()
            .map(|t| format!("{t:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "runs, alternated: plain downloader (64 concurrent GETs) {} s; trailmill process {} s",
        list(&downloads),
        list(&processes)
    );
    let (download, process) = (median(&downloads), median(&processes));
    println!(
        "download, median of {runs}: plain downloader {download:.2} s = {:.1} MB/s; trailmill process {process:.2} s = {:.1} MB/s: \
         {:.0}% of the downloader (target >= 80%); best against best: {:.0}%",
        mbps(download),
        mbps(process),
        100.0 * download / process,
        100.0 * fastest(&downloads) / fastest(&processes)
    );
}

/// The real AWS CLI (v1) of `.venv/oracle`.
fn aws_cli() -> PathBuf {
    let aws = std::env::var_os("TRAILMILL_ORACLE_PYTHON").map_or_else(
        || repo().join(".venv/oracle/bin/aws"),
        |py| Path::new(&py).with_file_name("aws"),
    );
    assert!(
        aws.exists(),
        "{} is missing: run scripts/setup-oracle.sh",
        aws.display()
    );
    aws
}

/// The AWS CLI's environment: every service at `endpoint`, test credentials,
/// path-style S3.
fn aws_env<'a>(c: &'a mut Command, endpoint: &str) -> &'a mut Command {
    c.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// GETs every key with `concurrency` requests in flight, discarding the
/// bodies; returns the bytes received.
fn download_all(endpoint: &str, bucket: &str, keys: &[String], concurrency: usize) -> u64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let c = client(endpoint);
    let keys = Arc::new(keys.to_vec());
    rt.block_on(async {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (c, keys, next, bucket) =
                (c.clone(), keys.clone(), next.clone(), bucket.to_owned());
            tasks.spawn(async move {
                let mut bytes = 0u64;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(key) = keys.get(i) else { return bytes };
                    let out = c
                        .get_object()
                        .bucket(&bucket)
                        .key(key)
                        .send()
                        .await
                        .unwrap();
                    let mut body = out.body;
                    while let Some(chunk) = body.next().await {
                        bytes += chunk.unwrap().len() as u64;
                    }
                }
            });
        }
        let mut total = 0;
        while let Some(r) = tasks.join_next().await {
            total += r.unwrap();
        }
        total
    })
}
