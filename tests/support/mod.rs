//! Helpers shared by the end-to-end tests.
#![allow(dead_code)] // each test crate uses a different subset

pub mod crash;
pub mod moto;
pub mod proxy;
pub mod rest_catalog;
pub mod s3;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// `fixtures/real`: the real CloudTrail datasets bundled with the repository
/// (`invictus-ir/CloudTrail`, `stratus-red-team`; provenance and quirks in its
/// README).
pub fn datasets() -> PathBuf {
    let dir = repo().join("fixtures/real");
    assert!(
        dir.is_dir(),
        "{} is missing: the repository's real-data fixtures are incomplete",
        dir.display()
    );
    dir
}

/// Every file under `dir`, at any depth, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// A `trailmill` command.
pub fn trailmill() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trailmill"));
    c.env_remove("TRAILMILL_LOG");
    c
}

/// Runs `trailmill ARGS`, returning its output.
pub fn run(args: &[&str]) -> Output {
    trailmill().args(args).output().expect("run trailmill")
}

/// Runs `trailmill ARGS` and asserts it succeeded.
pub fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "trailmill {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A `trailmill synth` trail: its shape, and any further options.
#[derive(Clone, Copy, Debug)]
pub struct Synth<'a> {
    /// `--accounts`.
    pub accounts: usize,
    /// `--regions`.
    pub regions: usize,
    /// `--hours`.
    pub hours: usize,
    /// `--logs-per-hour`.
    pub logs_per_hour: usize,
    /// `--records` (events per log file).
    pub records: usize,
    /// Further options, such as `["--org-id", "o-abc", "--bucket", name]`.
    pub extra: &'a [&'a str],
}

impl Synth<'_> {
    /// Writes the trail (logs, digests and `keys.json`) under `root`.
    pub fn write(&self, root: &Path) {
        let numbers = [
            ("--accounts", self.accounts),
            ("--regions", self.regions),
            ("--hours", self.hours),
            ("--logs-per-hour", self.logs_per_hour),
            ("--records", self.records),
        ]
        .map(|(name, n)| (name, n.to_string()));
        let mut args = vec!["synth", root.to_str().expect("a UTF-8 path")];
        for (name, n) in &numbers {
            args.extend([*name, n.as_str()]);
        }
        args.extend_from_slice(self.extra);
        run_ok(&args);
    }
}

/// The largest peak resident memory of this test process's finished
/// children so far, in bytes (`getrusage(RUSAGE_CHILDREN)`).
pub fn children_peak_rss() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0);
    usage.ru_maxrss as u64 * 1024
}

/// A synth trail of 150,000 events, about 195 MB of records: more than the
/// 256 MB bound once a store holds what it buffers of each record.
pub fn large_trail(dir: &Path) -> PathBuf {
    let trail = dir.join("trail");
    Synth {
        accounts: 1,
        regions: 1,
        hours: 1,
        logs_per_hour: 50,
        records: 3000,
        extra: &["--seed", "3"],
    }
    .write(&trail);
    trail
}

/// Asserts that no child process so far went over the 256 MB bound: the
/// largest child is `process`, as synth and psql stay far smaller.
pub fn assert_within_the_memory_bound(what: &str) {
    let peak = children_peak_rss();
    assert!(
        peak <= 256_000_000,
        "process into {what} peaked at {} MB",
        peak / 1_000_000
    );
}

/// The summary's "N events in, M out" numbers.
pub fn events_in_out(stderr: &[u8]) -> (u64, u64) {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .find(|l| l.contains(" events in, "))
        .unwrap_or_else(|| panic!("no summary in:\n{text}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// A temporary copy of `fixtures/trail`, and its us-east-1 log files of
/// 2024-01-01 for account 462237097298, sorted.
pub fn trail_copy() -> (tempfile::TempDir, Vec<PathBuf>) {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("fixtures/trail"), tmp.path());
    let day = tmp
        .path()
        .join("AWSLogs/462237097298/CloudTrail/us-east-1/2024/01/01");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    (tmp, logs)
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The uncompressed text of a gzip file.
pub fn gunzip(path: &Path) -> String {
    use std::io::Read;
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// The strings of a JSON array (panics on anything else: test data).
pub fn strings<C: FromIterator<String>>(array: &serde_json::Value) -> C {
    array
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The eventIDs of the gzip log file at `path`, in file order.
pub fn log_event_ids<C: FromIterator<String>>(path: &Path) -> C {
    let log: serde_json::Value = serde_json::from_str(&gunzip(path)).unwrap();
    log["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["eventID"].as_str().unwrap().to_owned())
        .collect()
}

/// Writes `text` to `path`, gzip-compressed.
pub fn gzip_to(path: &Path, text: &str) {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

/// Rewrites a log with a changed event name: still valid gzip and JSON, but
/// no longer what its digest attests.
pub fn tamper_log(path: &Path) {
    gzip_to(
        path,
        &gunzip(path).replacen("\"eventName\":\"", "\"eventName\":\"X", 1),
    );
}

/// The summary's "sink NAME: N written, M duplicates collapsed" numbers.
pub fn sink_counts(stderr: &[u8], prefix: &str) -> (u64, u64) {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("trailmill: sink {prefix}")))
        .unwrap_or_else(|| panic!("no summary line for {prefix} in:\n{text}"));
    let tail = line.rsplit_once(": ").unwrap().1;
    let nums: Vec<u64> = tail
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// Runs the Python `program` with pyarrow (`TRAILMILL_PYREADER_PYTHON`, which
/// `scripts/test` installs) on the lake at `dir`, and parses the JSON it
/// prints. Missing pyarrow is a failure, not a skip.
pub fn pyarrow_json<T: serde::de::DeserializeOwned>(program: &str, dir: &Path) -> T {
    let python = std::env::var("TRAILMILL_PYREADER_PYTHON").expect(
        "TRAILMILL_PYREADER_PYTHON is not set: run scripts/test, which installs pyarrow \
         (scripts/setup-pyreader.sh)",
    );
    let out = Command::new(&python)
        .args(["-c", program, dir.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "pyarrow failed to read {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
