//! `trailmill synth`: write a realistic synthetic trail as a bucket root.

use std::path::PathBuf;

use clap::Args;
use trailmill_synth::{SynthConfig, generate};

use crate::args::parse_time;

/// Arguments of `trailmill synth`.
#[derive(Args, Debug)]
pub struct SynthArgs {
    /// The directory to write (must be empty or absent).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// Accounts logging to the bucket.
    #[arg(long, default_value_t = 2)]
    pub accounts: usize,
    /// Regions per account.
    #[arg(long, default_value_t = 2)]
    pub regions: usize,
    /// Hours of logs (one digest per account, region and hour).
    #[arg(long, default_value_t = 3)]
    pub hours: usize,
    /// Log files per account, region and hour.
    #[arg(long, default_value_t = 4)]
    pub logs_per_hour: usize,
    /// Events per log file.
    #[arg(long, default_value_t = 100)]
    pub records: usize,
    /// Make an organization trail with this ID (o-…).
    #[arg(long, value_name = "o-ID")]
    pub org_id: Option<String>,
    /// The trail's key prefix (may have several segments).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Seed for every random choice: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write one log file of about this many MiB uncompressed.
    #[arg(long, value_name = "MIB")]
    pub large_file_mib: Option<u64>,
    /// Start of the first hour (default 2024-01-01T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub start: Option<trailmill_core::time::Timestamp>,
    /// The bucket name digests record.
    #[arg(long, default_value = "trailmill-synth")]
    pub bucket: String,
    /// The trail's name.
    #[arg(long, default_value = "synth-trail")]
    pub trail_name: String,
}

/// Runs `synth` and prints what it wrote.
pub fn run(a: SynthArgs) -> anyhow::Result<bool> {
    let defaults = SynthConfig::default();
    let config = SynthConfig {
        accounts: a.accounts,
        regions: a.regions,
        hours: a.hours,
        logs_per_hour: a.logs_per_hour,
        records: a.records,
        org_id: a.org_id,
        prefix: a.prefix,
        seed: a.seed,
        large_file_mib: a.large_file_mib,
        start: a.start.map_or(defaults.start, |t| t.as_second()),
        bucket: a.bucket,
        trail_name: a.trail_name,
        home_region: None,
    };
    let r = generate(&a.out, &config)?;
    eprintln!(
        "trailmill: wrote {} log files ({} events, {:.1} MB uncompressed, {:.1} MB gzip) and {} digests to {}",
        r.log_files,
        r.events,
        r.uncompressed_bytes as f64 / 1e6,
        r.compressed_bytes as f64 / 1e6,
        r.digest_files,
        a.out.display()
    );
    eprintln!(
        "trailmill: trail {} in bucket {}; public keys in {}",
        r.trail_arn,
        r.bucket,
        a.out.join(trailmill_synth::KEYS_FILE).display()
    );
    Ok(true)
}
