//! Shared setup for the criterion benches: a small synthetic trail, built once
//! per bench binary with `trailmill_synth::generate` into a temporary directory
//! and read into memory.
//!
//! `TRAILMILL_BENCH_CORPUS=DIR` benches the log files under `DIR` instead (a
//! bucket root such as `scripts/bench-compare.sh` makes), so that each stage
//! is measured on the files whose end-to-end figures are reported.

#![allow(dead_code)] // Each bench binary uses a different part of this module.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use trailmill_synth::{SynthConfig, generate};

/// The trail behind every bench: a synthetic one of about 5 MB of JSON in 8
/// log files, or the log files under `TRAILMILL_BENCH_CORPUS`.
pub struct Corpus {
    /// The bucket root.
    pub root: PathBuf,
    /// The generated trail's directory, deleted when the corpus is dropped.
    generated: Option<TempDir>,
    /// The gzip bytes of every log file (digests and keys excluded), sorted by path.
    pub gz: Vec<Vec<u8>>,
    /// Total uncompressed size of the log files, in bytes.
    pub uncompressed_bytes: u64,
    /// Events in all log files.
    pub events: u64,
}

impl Corpus {
    /// Reads the files under `TRAILMILL_BENCH_CORPUS` if it is set, or else
    /// generates the trail: 1 account, 1 region, 2 hours, 4 logs/hour, 500 records/log.
    pub fn build() -> Corpus {
        if let Some(root) = std::env::var_os("TRAILMILL_BENCH_CORPUS") {
            return Corpus::read(Path::new(&root));
        }
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
            root: dir.path().to_owned(),
            generated: Some(dir),
            gz,
            uncompressed_bytes: report.uncompressed_bytes,
            events: report.events,
        }
    }

    /// The log files under `root`, counted by inflating and decoding them once.
    fn read(root: &Path) -> Corpus {
        let mut paths = Vec::new();
        collect_logs(root, &mut paths);
        paths.sort();
        assert!(!paths.is_empty(), "no log files under {}", root.display());
        let gz: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| std::fs::read(p).expect("read a log file"))
            .collect();
        let mut corpus = Corpus {
            root: root.to_owned(),
            generated: None,
            gz,
            uncompressed_bytes: 0,
            events: 0,
        };
        let mut decoder = trailmill::Decoder::new(trailmill::DecodeOptions::default());
        for json in corpus.inflated() {
            corpus.uncompressed_bytes += json.len() as u64;
            let mut count = |batch: &[trailmill::Event<'_>]| {
                corpus.events += batch.len() as u64;
                Ok(())
            };
            decoder
                .decode(&json, &mut count)
                .expect("decode a log file");
        }
        corpus
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
