//! CloudTrail public keys over the real AWS API, served by a local moto
//! server (`scripts/moto-server.py`, which answers ListPublicKeys from a keys
//! file because moto does not implement it): `trailmill keys fetch`, and
//! `trailmill validate` fetching its keys online when no keys file is given.

mod support;

use std::net::TcpListener;
use std::process::Command;

use support::repo;
use support::s3::{Moto, aws_command};

#[test]
fn keys_fetch_and_online_validation_use_cloudtrail_list_public_keys() {
    let fixture_keys = repo().join("fixtures/trail/keys.json");
    let moto = Moto::start(Some(&fixture_keys));

    let out = aws_command(&moto.endpoint)
        .args([
            "keys",
            "fetch",
            "--region",
            "us-east-1",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fetched: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fixture_keys).unwrap()).unwrap();
    let key = |v: &serde_json::Value| {
        (
            v["PublicKeyList"][0]["Fingerprint"].clone(),
            v["PublicKeyList"][0]["Value"].clone(),
        )
    };
    assert_eq!(key(&fetched), key(&expected));
    assert_eq!(
        fetched["PublicKeyList"][0]["ValidityStartTime"].as_f64(),
        expected["PublicKeyList"][0]["ValidityStartTime"].as_f64()
    );

    // A mirror without keys.json: validate fetches the keys online.
    let tmp = tempfile::tempdir().unwrap();
    let copy = Command::new("cp")
        .arg("-r")
        .arg(repo().join("fixtures/trail"))
        .arg(tmp.path().join("m"))
        .status()
        .unwrap();
    assert!(copy.success());
    let mirror = tmp.path().join("m");
    std::fs::remove_file(mirror.join("keys.json")).unwrap();
    let arn = "arn:aws:cloudtrail:us-east-1:462237097298:trail/synth-trail";
    let out = aws_command(&moto.endpoint)
        .args([
            "validate",
            mirror.to_str().unwrap(),
            "--trail-arn",
            arn,
            "--format",
            "aws-cli",
        ])
        .args([
            "--start-time",
            "2024-01-01T00:00:00Z",
            "--end-time",
            "2024-01-01T05:00:00Z",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2/2 digest files valid") && stdout.contains("4/4 log files valid"),
        "{stdout}"
    );
}

#[test]
fn an_unreachable_endpoint_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = aws_command(&format!("http://127.0.0.1:{port}"))
        .env("AWS_MAX_ATTEMPTS", "1")
        .args([
            "keys",
            "fetch",
            "--region",
            "us-east-1",
            "--start",
            "2024-01-01",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ListPublicKeys in us-east-1"), "{stderr}");
}
