//! Generates a synthetic trail and prints the report and the speed.
//!
//! `cargo run --release -p trailmill-synth --example synth -- OUT [ACCOUNTS REGIONS HOURS LOGS_PER_HOUR RECORDS [LARGE_MIB]]`

use std::time::Instant;

use trailmill_synth::{SynthConfig, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        return Err(
            "usage: synth OUT [ACCOUNTS REGIONS HOURS LOGS_PER_HOUR RECORDS [LARGE_MIB]]".into(),
        );
    };
    let num = |i: usize, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        Ok(args
            .get(i)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let d = SynthConfig::default();
    let cfg = SynthConfig {
        accounts: num(1, d.accounts)?,
        regions: num(2, d.regions)?,
        hours: num(3, d.hours)?,
        logs_per_hour: num(4, d.logs_per_hour)?,
        records: num(5, d.records)?,
        large_file_mib: args.get(6).map(|s| s.parse()).transpose()?,
        ..d
    };
    let started = Instant::now();
    let report = generate(out.as_ref(), &cfg)?;
    let secs = started.elapsed().as_secs_f64();
    println!("{report:#?}");
    let mb = report.uncompressed_bytes as f64 / 1e6;
    println!(
        "{mb:.1} MB uncompressed ({:.1} MB gzip, ratio {:.2}, {:.0} B/event) in {secs:.2}s: {:.0} MB/s",
        report.compressed_bytes as f64 / 1e6,
        report.uncompressed_bytes as f64 / report.compressed_bytes as f64,
        report.uncompressed_bytes as f64 / report.events as f64,
        mb / secs
    );
    Ok(())
}
