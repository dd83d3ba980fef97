//! Helpers shared by the integration tests: a synthetic trail to damage and
//! re-sign, and running trailmill with `--format aws-cli`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use rsa::pkcs1v15::Pkcs1v15Sign;
use serde_json::Value;
use sha2::{Digest as _, Sha256, Sha512};
use trailmill_synth::{
    SigningKey, SynthConfig, SynthReport, generate, sign_digest, signing_string,
};
use trailmill_validate::{
    OutputFormat, Report, Timestamp, ValidateArgs, display_time, run_validate,
};

pub fn iso(secs: i64) -> String {
    display_time(Timestamp::from_second(secs).unwrap())
}

/// A generated trail in a temporary bucket directory, with the means to damage it.
pub struct Trail {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub report: SynthReport,
    pub key: SigningKey,
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

impl Trail {
    pub fn new(cfg: SynthConfig) -> Trail {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bucket");
        let report = generate(&root, &cfg).unwrap();
        let key =
            SigningKey::from_pkcs1_der(&std::fs::read(root.join("synth-signing-key.der")).unwrap())
                .unwrap();
        Trail {
            _dir: dir,
            root,
            report,
            key,
        }
    }

    pub fn small(seed: u64) -> Trail {
        Trail::new(SynthConfig {
            accounts: 1,
            regions: 1,
            hours: 6,
            logs_per_hour: 2,
            records: 3,
            seed,
            ..SynthConfig::default()
        })
    }

    pub fn account(&self) -> &str {
        &self.report.accounts[0]
    }

    pub fn region(&self) -> &str {
        &self.report.regions[0]
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The digest keys of an account and region, oldest first.
    pub fn chain(&self, account: &str, region: &str) -> Vec<String> {
        let mut base = String::new();
        if let Some(p) = &self.report.prefix {
            base.push_str(&format!("{p}/"));
        }
        base.push_str("AWSLogs/");
        if let Some(o) = &self.report.org_id {
            base.push_str(&format!("{o}/"));
        }
        base.push_str(&format!("{account}/CloudTrail-Digest/{region}"));
        let mut keys = Vec::new();
        let mut stack = vec![self.root.join(&base)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "gz") {
                    keys.push(
                        p.strip_prefix(&self.root)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        keys.sort();
        keys
    }

    pub fn digest(&self, key: &str) -> Value {
        serde_json::from_slice(&gunzip(&std::fs::read(self.path(key)).unwrap())).unwrap()
    }

    pub fn digest_body(&self, key: &str) -> Vec<u8> {
        gunzip(&std::fs::read(self.path(key)).unwrap())
    }

    pub fn sig(&self, key: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{key}.sig")))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Writes a digest's JSON without touching its signature.
    pub fn write_unsigned(&self, key: &str, v: &Value) -> Vec<u8> {
        let body = serde_json::to_vec(v).unwrap();
        std::fs::write(self.path(key), gzip(&body)).unwrap();
        body
    }

    pub fn string_to_sign(&self, key: &str, v: &Value, body: &[u8]) -> String {
        signing_string(
            v["digestEndTime"].as_str().unwrap(),
            v["digestS3Bucket"].as_str().unwrap(),
            key,
            body,
            v["previousDigestSignature"].as_str(),
        )
    }

    /// Writes a digest's JSON and re-signs it (SHA256withRSA) with synth's key.
    pub fn resign(&self, key: &str, v: &Value) {
        let body = self.write_unsigned(key, v);
        let sig = sign_digest(&self.key, &self.string_to_sign(key, v, &body));
        std::fs::write(self.path(&format!("{key}.sig")), sig).unwrap();
    }

    /// Re-signs with PKCS#1 v1.5 and SHA-512 (the CLI accepts it, trailmill does not).
    pub fn resign_sha512(&self, key: &str, v: &Value) {
        let body = self.write_unsigned(key, v);
        let msg = self.string_to_sign(key, v, &body);
        let sig = self
            .key
            .rsa()
            .sign(
                Pkcs1v15Sign::new::<Sha512>(),
                &Sha512::digest(msg.as_bytes()),
            )
            .unwrap();
        std::fs::write(self.path(&format!("{key}.sig")), hex::encode(sig)).unwrap();
    }

    /// Re-links and re-signs every digest after `chain[idx]`, so that only
    /// the change made to `chain[idx]` remains.
    pub fn fix_chain_after(&self, chain: &[String], idx: usize) {
        for j in idx + 1..chain.len() {
            let prev = &chain[j - 1];
            let mut v = self.digest(&chain[j]);
            if v["previousDigestS3Object"].as_str() == Some(prev.as_str()) {
                v["previousDigestHashValue"] =
                    Value::from(hex::encode(Sha256::digest(self.digest_body(prev))));
                v["previousDigestSignature"] = Value::from(self.sig(prev));
            }
            self.resign(&chain[j], &v);
        }
    }

    pub fn logs_of(&self, key: &str) -> Vec<String> {
        self.digest(key)["logFiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["s3Object"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.report.bucket)
    }
}

/// Which trail, account and region to validate, and how.
#[derive(Clone, Default)]
pub struct Opts {
    pub account: Option<String>,
    pub region: Option<String>,
    pub verbose: bool,
    pub expect_until: Option<String>,
}

/// What one validator printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Every per-file line (stdout and stderr), e.g. `Log file\ts3://…\tvalid`.
    pub fn verdicts(&self) -> Vec<String> {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| l.contains('\t') || l.starts_with("No log files"))
            .map(str::to_string)
            .collect()
    }

    pub fn by_file(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for l in self.verdicts() {
            let f: Vec<&str> = l.split('\t').collect();
            if let [what, uri, status] = f[..] {
                let old = m.insert(format!("{what} {uri}"), status.to_string());
                assert!(old.is_none(), "{l} twice");
            }
        }
        m
    }
}

pub fn args(t: &Trail, o: &Opts, format: OutputFormat) -> ValidateArgs {
    let r = &t.report;
    ValidateArgs {
        source: t.root.clone(),
        trail_arn: Some(r.trail_arn.clone()),
        start_time: iso(r.start),
        end_time: Some(iso(r.end)),
        bucket: Some(r.bucket.clone()),
        s3_prefix: r.prefix.clone(),
        org_id: r.org_id.clone(),
        account_id: o.account.clone(),
        region: o.region.clone(),
        public_keys: Some(t.root.join("keys.json")),
        verbose: o.verbose,
        format,
        expect_until: o.expect_until.clone(),
        ..ValidateArgs::default()
    }
}

pub fn trailmill_with(a: &ValidateArgs) -> (Run, Report) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let report = run_validate(a, &mut out, &mut err, &mut |_| {}).unwrap();
    let run = Run {
        code: report.exit_code(),
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    };
    (run, report)
}

pub fn trailmill(t: &Trail, o: &Opts) -> Run {
    trailmill_with(&args(t, o, OutputFormat::AwsCli)).0
}

pub fn verbose() -> Opts {
    Opts {
        verbose: true,
        ..Opts::default()
    }
}

/// Lines in `a` that are not in `b` (as a multiset), ignoring blank lines.
pub fn minus(a: &str, b: &str) -> Vec<String> {
    let mut rest: Vec<&str> = b.lines().filter(|l| !l.is_empty()).collect();
    let mut out = Vec::new();
    for l in a.lines().filter(|l| !l.is_empty()) {
        match rest.iter().position(|x| *x == l) {
            Some(i) => {
                rest.remove(i);
            }
            None => out.push(l.to_string()),
        }
    }
    out
}
