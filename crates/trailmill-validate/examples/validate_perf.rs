//! Measures `trailmill validate` on a synthetic trail against the machine's
//! inflate-plus-SHA-256 throughput.
//!
//! ```text
//! cargo run --release -p trailmill-validate --example validate_perf -- DIR [MIB]
//! ```
//!
//! Generates a trail of about MIB MiB uncompressed (default 600) into DIR if
//! DIR does not exist, then reports:
//! - the baseline: every log file read, inflated and hashed with flate2 and
//!   sha2 on all cores (rayon), nothing else;
//! - `validate` on the same files (digests, signatures, chain, logs), and
//!   its throughput as a fraction of the baseline.
//!
//! Run the reference validator on the same DIR to compare (the command is printed).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use trailmill_core::gzip::{WholeInflater, size_hint};
use trailmill_synth::{SynthConfig, generate};
use trailmill_validate::{
    LocalMirror, PublicKeys, Timestamp, TrailArn, ValidateConfig, display_time, validate,
};

fn files(root: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.to_string_lossy().contains("/CloudTrail/") {
            out.push(p);
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: validate_perf DIR [MIB]"));
    let mib: u64 = args.next().map_or(600, |s| s.parse().expect("MIB"));
    let cfg = SynthConfig {
        accounts: 1,
        regions: 2,
        hours: 24,
        logs_per_hour: 12,
        records: ((mib << 20) / (2 * 24 * 12 * 1200)).max(1) as usize,
        seed: 7,
        ..SynthConfig::default()
    };
    if !dir.exists() {
        let t = Instant::now();
        let r = generate(&dir, &cfg).unwrap();
        eprintln!(
            "generated {} log files, {:.0} MiB uncompressed ({:.0} MiB gzip) in {:.1}s",
            r.log_files,
            r.uncompressed_bytes as f64 / 1048576.0,
            r.compressed_bytes as f64 / 1048576.0,
            t.elapsed().as_secs_f64()
        );
    }
    let mut logs = Vec::new();
    files(&dir, &mut logs);

    // Baselines: read + inflate + SHA-256 of every log file, all cores, with
    // nothing else: streaming zlib-rs (flate2), and whole-file libdeflate.
    let streaming = |p: &PathBuf| {
        let gz = std::fs::read(p).unwrap();
        let mut d = flate2::read::GzDecoder::new(&gz[..]);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 128 * 1024];
        let mut n = 0u64;
        loop {
            let k = d.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k as u64;
        }
        std::hint::black_box(h.finalize());
        n
    };
    let t = Instant::now();
    let total: u64 = logs.par_iter().map(streaming).sum();
    let zlib = t.elapsed().as_secs_f64();
    println!(
        "baseline zlib-rs streaming (inflate + SHA-256, {} threads): {:.0} MB/s",
        rayon::current_num_threads(),
        total as f64 / 1e6 / zlib
    );
    let t = Instant::now();
    let whole: u64 = logs
        .par_iter()
        .map_init(
            || (WholeInflater::new(), Vec::new()),
            |(inf, out), p| {
                let gz = std::fs::read(p).unwrap();
                let n = size_hint(&gz).unwrap();
                if out.len() < n {
                    out.resize(n, 0);
                }
                let n = inf.inflate(&gz, &mut out[..n]).unwrap();
                std::hint::black_box(Sha256::digest(&out[..n]));
                n as u64
            },
        )
        .sum();
    assert_eq!(whole, total);
    let base = t.elapsed().as_secs_f64();
    let mb = total as f64 / 1e6;
    println!(
        "baseline libdeflate whole-file (inflate + SHA-256, {} threads): {:.0} MB in {:.2}s = {:.0} MB/s",
        rayon::current_num_threads(),
        mb,
        base,
        mb / base
    );

    // validate, every region of the trail.
    let keys = PublicKeys::load(&dir.join("keys.json")).unwrap();
    let store = LocalMirror::new(&dir)
        .unwrap()
        .with_bucket(cfg.bucket.clone());
    let start = Timestamp::from_second(cfg.start).unwrap();
    let end = Timestamp::from_second(cfg.start + cfg.hours as i64 * 3600 + 60).unwrap();
    let mut vcfg = ValidateConfig::all(start);
    vcfg.end = Some(end);
    vcfg.bucket = Some(cfg.bucket.clone());
    let t = Instant::now();
    let mut files = 0u64;
    let report = validate(&store, &vcfg, &keys, &mut |_| files += 1).unwrap();
    let took = t.elapsed().as_secs_f64();
    let totals = report.totals();
    assert!(report.is_valid(), "{totals:?}");
    println!(
        "validate --all: {} digests, {} logs in {:.2}s = {:.0} MB/s ({:.0}% of baseline)",
        totals.valid_digests,
        totals.valid_logs,
        took,
        mb / took,
        100.0 * base / took
    );

    // One region, as the reference validator runs it.
    // One trail and region (`--trail-arn … --region R`), as the reference validator runs.
    let account = std::fs::read_dir(dir.join("AWSLogs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let arn = TrailArn::parse(&TrailArn::build(
        "us-east-1",
        &account.to_string_lossy(),
        &cfg.trail_name,
    ))
    .unwrap();
    for region in ["us-east-1", "eu-west-1"] {
        let mut one = ValidateConfig::trail(arn.clone(), start);
        one.end = Some(end);
        one.bucket = Some(cfg.bucket.clone());
        one.region = Some(region.to_string());
        let t = Instant::now();
        let report = validate(&store, &one, &keys, &mut |_| {}).unwrap();
        assert!(report.is_valid());
        println!(
            "validate --trail-arn {} --region {region}: {:.2}s",
            arn.arn,
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "reference: $PY scripts/aws-validate-logs.py --root {} --bucket {} --trail-arn ARN --public-keys {}/keys.json --start-time {} --end-time {} --region REGION --cli-seconds FILE (once per region)",
        dir.display(),
        cfg.bucket,
        dir.display(),
        display_time(start),
        display_time(end)
    );
}
