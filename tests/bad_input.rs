//! Bad input: each file in `fixtures/bad` fails with a clear error naming it,
//! while the good file beside them is still processed.

mod support;

use support::{repo, run};

const BAD: &[(&str, &str)] = &[
    ("truncatedgzip001", "truncated gzip"),
    ("invalidjson00001", "invalid JSON"),
    ("digestinsteadof1", "digest file, not a log file"),
    ("emptyfile0000001", "the file is empty"),
    ("notcloudtrail001", "not CloudTrail log data"),
    ("hugefield0000001", "a record exceeds the limit"),
];

#[test]
fn each_bad_file_is_named_with_its_reason_and_the_good_file_is_processed() {
    let fixtures = repo().join("fixtures/bad");
    let tmp = tempfile::tempdir().unwrap();
    let failed_list = tmp.path().join("failed.txt");
    let out = run(&[
        "process",
        fixtures.to_str().unwrap(),
        "--failed-list",
        failed_list.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a run with failed files exits 1"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, reason) in BAD {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error: ") && l.contains(name))
            .unwrap_or_else(|| panic!("no error line names {name}:\n{stderr}"));
        assert!(
            line.to_lowercase().contains(&reason.to_lowercase()),
            "{name}: {line}"
        );
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        3,
        "the good file's three events are still emitted"
    );
    assert!(stderr.contains("1 files ok, 6 failed"), "{stderr}");
    let failed = std::fs::read_to_string(&failed_list).unwrap();
    let mut names: Vec<&str> = failed.lines().collect();
    names.sort();
    assert_eq!(names.len(), BAD.len());
    for (name, _) in BAD {
        assert!(
            names
                .iter()
                .any(|n| n.contains(name) && std::path::Path::new(n).exists()),
            "{name} not in {failed}"
        );
    }
}

#[test]
fn fail_fast_stops_the_run() {
    let fixtures = repo().join("fixtures/bad");
    let out = run(&[
        "process",
        fixtures.to_str().unwrap(),
        "--fail-fast",
        "--threads",
        "1",
        "--sink",
        "jsonl:/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped early"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_gzip_bomb_hits_the_uncompressed_cap() {
    let fixtures = repo().join("fixtures/bad");
    let out = run(&[
        "process",
        fixtures.to_str().unwrap(),
        "--max-uncompressed-mib",
        "1",
        "--sink",
        "jsonl:/dev/null",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.contains("hugefield")).unwrap();
    assert!(
        line.contains("exceeds the limit of 1048576 bytes"),
        "{line}"
    );
}
