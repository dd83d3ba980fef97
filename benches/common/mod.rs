//! Shared setup for the criterion benches: a small synthetic trail, built once
//! per bench binary with `trailmill_synth::generate` into a temporary directory
//! and read into memory.

#![allow(dead_code)] // Each bench binary uses a different part of this module.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use trailmill_synth::{SynthConfig, generate};

/// The synthetic trail behind every bench: about 5 MB of JSON in 8 log files.
pub struct Corpus {
    /// The bucket root; deleted when the corpus is dropped.
    pub dir: TempDir,
    /// The gzip bytes of every log file (digests and keys excluded), sorted by path.
    pub gz: Vec<Vec<u8>>,
    /// Total uncompressed size of the log files, in bytes.
    pub uncompressed_bytes: u64,
    /// Events in all log files.
    pub events: u64,
}

impl Corpus {
    /// Generates the trail: 1 account, 1 region, 2 hours, 4 logs/hour, 500 records/log.
    pub fn build() -> Corpus {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let cfg = SynthConfig {
            accounts: 1,
            regions: 1,
            hours: 2,
            logs_per_hour: 4,
            records: 500,
            seed: 42,
            ..SynthConfig::default()
        };
        let report = generate(dir.path(), &cfg).expect("generate the synthetic trail");
        let mut paths = Vec::new();
        collect_logs(dir.path(), &mut paths);
        paths.sort();
        assert_eq!(paths.len(), report.log_files, "every log file found");
        let gz: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| std::fs::read(p).expect("read a log file"))
            .collect();
        Corpus {
            dir,
            gz,
            uncompressed_bytes: report.uncompressed_bytes,
            events: report.events,
        }
    }

    /// The log files inflated, in the same order as [`Corpus::gz`].
    pub fn inflated(&self) -> Vec<Vec<u8>> {
        self.gz
            .iter()
            .map(|z| {
                let mut out = Vec::new();
                trailmill::core::gzip::inflate_into(z, &mut out, u64::MAX).expect("inflate");
                out
            })
            .collect()
    }
}

/// Log files (`*.json.gz` under a `CloudTrail` folder, so not digests) below `dir`.
fn collect_logs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a directory") {
        let path = entry.expect("read a directory entry").path();
        if path.is_dir() {
            collect_logs(&path, out);
        } else if path.to_string_lossy().ends_with(".json.gz")
            && path.components().any(|c| c.as_os_str() == "CloudTrail")
        {
            out.push(path);
        }
    }
}
