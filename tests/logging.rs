//! What trailmill prints on stderr besides its own messages.

mod support;

use std::process::{Command, Output};

use support::trailmill;

/// `trailmill validate s3://…` with no region configured anywhere, against
/// an S3 endpoint and an instance metadata endpoint on 127.0.0.1 where nothing
/// listens (port 9, discard: refused at once).
fn validate_without_a_region(log: Option<&str>) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut c: Command = trailmill();
    c.args([
        "validate",
        "s3://tm-no-such-bucket/AWSLogs",
        "--all",
        "--start-time",
        "2024-01-01",
        "--max-attempts",
        "1",
    ])
    .env("HOME", home.path())
    .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")
    .env("AWS_ACCESS_KEY_ID", "test")
    .env("AWS_SECRET_ACCESS_KEY", "test")
    .env("AWS_CONFIG_FILE", "/dev/null")
    .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    .env_remove("AWS_REGION")
    .env_remove("AWS_DEFAULT_REGION")
    .env_remove("AWS_PROFILE")
    .env_remove("AWS_ENDPOINT_URL_S3")
    .env_remove("AWS_EC2_METADATA_DISABLED");
    if let Some(log) = log {
        c.env("TRAILMILL_LOG", log);
    }
    c.output().unwrap()
}

/// Regression (issue 11, item 7): with no region configured, the AWS SDK's
/// two `WARN failed to load region from IMDS` lines, each a page of `Debug`
/// output, reached the user. Dependencies' warnings are silent by default
/// (trailmill recovers, and what fails is reported as trailmill's error),
/// and `TRAILMILL_LOG=debug` still shows them.
#[test]
fn no_region_gives_no_sdk_warnings_unless_asked_for() {
    let out = validate_without_a_region(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nothing listens there:\n{stderr}");
    assert!(!stderr.contains("IMDS"), "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
    for line in stderr.lines() {
        assert!(
            line.len() < 400 && !line.contains("DispatchFailure"),
            "a Debug dump on stderr: {line}"
        );
    }
    // What is left is trailmill's own word on what failed.
    assert!(
        !stderr.trim().is_empty() && stderr.lines().all(|l| l.starts_with("error: ")),
        "{stderr}"
    );

    // The same run with the SDK's logs asked for shows the warning: the
    // setup above does reach the code that warns.
    let out = validate_without_a_region(Some("debug"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("IMDS"), "{stderr}");
}
