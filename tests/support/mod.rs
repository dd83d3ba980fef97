//! Helpers shared by the end-to-end tests.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// `../shared/datasets` beside the repository, where CI provides real CloudTrail data.
pub fn datasets() -> PathBuf {
    let dir = repo().join("../shared/datasets");
    assert!(
        dir.is_dir(),
        "{} is missing: the tests need ../shared/datasets beside the repository",
        dir.display()
    );
    dir
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
